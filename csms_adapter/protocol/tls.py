"""TLS for OCPP security profiles 2 and 3 (docs/ocpp-conformance.md, TLS).

Profile 2: the CSMS is a TLS ≥ 1.2 server. The cipher suites a CSMS SHALL support (1.6 A00.FR.317, 2.0.1
A00.FR.318) are TLS_ECDHE_ECDSA_WITH_AES_{128,256}_GCM_SHA{256,384} and TLS_RSA_WITH_AES_{128,256}_GCM_SHA{256,384}:
the first two need an ECDSA certificate, the last two an RSA one, so the server loads both chains
(``tls.cert_file``/``key_file`` and ``tls.rsa_cert_file``/``rsa_key_file``) on one context and OpenSSL picks the
chain that fits the suite the charger offers. The TLS_RSA suites (no forward secrecy) are enabled only because OCPP
requires them; ECDHE_RSA and TLS 1.3 are preferred when the charger offers them.

Profile 3 adds mutual TLS: the charger must present a certificate that chains to ``tls.ca_file`` (checked by
OpenSSL during the TLS handshake, so a charger without one never reaches HTTP), and its subject CN must equal the identity in the URL
(checked in ``server.check_handshake``, before the websocket opens).
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from optimizer.domain import TlsSettings
from optimizer.errors import DepotError

log = logging.getLogger("depotctl.tls")

# TLS 1.2 suites in order of preference (OpenSSL names). The OCPP-required ones are the ECDHE-ECDSA pair and the
# two plain-RSA ones; ECDHE-RSA gives an RSA-only charger forward secrecy when it can. TLS 1.3 suites are
# OpenSSL's defaults (all AEAD) and unaffected by this list.
TLS12_CIPHERS = ":".join((
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
))


class TlsConfigError(DepotError):
    """The site's TLS files cannot be loaded."""


def server_context(tls: TlsSettings, security_profile: int) -> ssl.SSLContext | None:
    """The server's SSLContext for profile 2/3, None for 0/1. Raises ``TlsConfigError`` when a file is missing
    or does not match its key."""
    if security_profile < 2:
        return None
    if tls.cert_file is None or tls.key_file is None:
        raise TlsConfigError(f"security_profile {security_profile} needs ocpp.tls.cert_file and key_file")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # 2.0.1 A00.FR.3xx forbids older versions
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.set_ciphers(TLS12_CIPHERS)
    pairs = [(tls.cert_file, tls.key_file)]
    if tls.rsa_cert_file is not None and tls.rsa_key_file is not None:
        pairs.append((tls.rsa_cert_file, tls.rsa_key_file))
    kinds = [certificate_kind(cert, key) for cert, key in pairs]
    if len(kinds) == 2 and kinds[0] == kinds[1]:
        raise TlsConfigError(f"ocpp.tls cert_file and rsa_cert_file are both {kinds[0]}: one ECDSA and one RSA "
                             "certificate are needed for the cipher suites OCPP requires")
    for missing in sorted({"ECDSA", "RSA"} - set(kinds)):
        suites = "TLS_RSA_*" if missing == "RSA" else "TLS_ECDHE_ECDSA_*"
        log.warning("TLS: no %s certificate, so a charger offering only the %s suites OCPP requires cannot connect; "
                    "`depotctl certs server` makes both (ocpp.tls.cert_file and rsa_cert_file)", missing, suites)
    try:
        for cert, key in pairs:
            context.load_cert_chain(cert, key)
        if security_profile >= 3:
            if tls.ca_file is None:
                raise TlsConfigError("security_profile 3 needs ocpp.tls.ca_file")
            context.load_verify_locations(cafile=tls.ca_file)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"cannot load TLS files: {exc}") from exc
    return context


def certificate_kind(cert_file: str, key_file: str | None = None) -> str:
    """"ECDSA" or "RSA": the key type of the (first) certificate in a PEM file. With ``key_file``, also that the
    key is this certificate's (OpenSSL would file a wrong key under its own type and fail only at handshake).
    Raises ``TlsConfigError``."""
    try:
        with open(cert_file, "rb") as handle:
            cert = x509.load_pem_x509_certificate(handle.read())
        private = None
        if key_file is not None:
            with open(key_file, "rb") as handle:
                private = serialization.load_pem_private_key(handle.read(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise TlsConfigError(f"cannot load TLS files: {cert_file}, {key_file}: {exc}") from exc
    key = cert.public_key()
    if private is not None and private.public_key() != key:
        raise TlsConfigError(f"{key_file} is not the key of {cert_file}")
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ECDSA"
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA"
    raise TlsConfigError(f"{cert_file}: a {type(key).__name__} certificate; OCPP needs ECDSA and RSA")


def peer_common_name(transport: Any) -> str | None:
    """The subject CN of the verified client certificate on ``transport``, or None (no TLS, no certificate)."""
    if transport is None:
        return None
    cert = transport.get_extra_info("peercert")
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for name, value in rdn:
            if name == "commonName":
                return str(value)
    return None
