"""TLS for OCPP security profiles 2 and 3 (docs/security.md).

Profile 2: the CSMS is a TLS ≥ 1.2 server with the certificate and key from the site file. Profile 3 adds mutual
TLS: the charger must present a certificate that chains to ``tls.ca_file`` (checked by OpenSSL during the TLS
handshake, so a charger without one never reaches HTTP), and its subject CN must equal the identity in the URL
(checked in ``server.check_handshake``, before the websocket opens).
"""

from __future__ import annotations

import ssl
from typing import Any

from optimizer.domain import TlsSettings
from optimizer.errors import DepotError


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
    context.options |= ssl.OP_NO_COMPRESSION
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
        if security_profile >= 3:
            if tls.ca_file is None:
                raise TlsConfigError("security_profile 3 needs ocpp.tls.ca_file")
            context.load_verify_locations(cafile=tls.ca_file)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"cannot load TLS files: {exc}") from exc
    return context


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
