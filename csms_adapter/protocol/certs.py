"""A local certificate authority for commissioning and tests (OCPP security profiles 2 and 3).

``init_ca`` makes a self-signed CA; ``issue_server`` the CSMS certificates for some host names / IP addresses: two
of them, because the cipher suites a CSMS SHALL support (1.6 A00.FR.317, 2.0.1 A00.FR.318) need an ECDSA key
(TLS_ECDHE_ECDSA_*) and an RSA key (TLS_RSA_*): ``server.pem``/``server.key`` (EC P-256) and
``server-rsa.pem``/``server-rsa.key`` (RSA 2048, also what OCPP-J 1.6 §6.2.1 asks of old chargers).
``issue_client`` a charger certificate whose subject CN is the charger identity and O the operator
(1.6 whitepaper A00.FR.403-405). Other keys are EC P-256 (A00.FR.50x: ≥ 224-bit EC, SHA-256); private keys are
written with mode 0600. A production site would use its PKI; this is for a depot without one, and for tests.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT, CA_KEY = "ca.pem", "ca.key"
SERVER_STEM, SERVER_RSA_STEM = "server", "server-rsa"
RSA_BITS = 2048
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True, slots=True)
class Issued:
    cert_file: Path
    key_file: Path


def _name(common_name: str, organization: str | None) -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(parts)


def _write_key(path: Path, key: PrivateKey) -> None:
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate((directory / CA_CERT).read_bytes())
    key = serialization.load_pem_private_key((directory / CA_KEY).read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{directory / CA_KEY} is not an EC key made by `depotctl certs init`")
    return cert, key


def init_ca(directory: Path, organization: str, *, days: int = 3650) -> Issued:
    """Create ``ca.pem``/``ca.key`` in ``directory``. Refuses to overwrite an existing CA (FileExistsError)."""
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / CA_KEY).exists():
        raise FileExistsError(f"{directory / CA_KEY} exists; a new CA would orphan every issued certificate")
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(f"{organization} depot CA", organization)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write_key(directory / CA_KEY, key)
    (directory / CA_CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Issued(directory / CA_CERT, directory / CA_KEY)


def _issue(directory: Path, stem: str, common_name: str, *, server_names: list[str] | None, days: int,
           rsa_key: bool = False) -> Issued:
    ca_cert, ca_key = _load_ca(directory)
    organization = next((a.value for a in ca_cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)), None)
    key: PrivateKey = (rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS) if rsa_key
                       else ec.generate_private_key(ec.SECP256R1()))
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder().subject_name(_name(common_name, str(organization) if organization else None))
        .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if server_names is not None:
        alt: list[x509.GeneralName] = []
        for host in server_names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                alt.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    cert_file, key_file = directory / f"{stem}.pem", directory / f"{stem}.key"
    _write_key(key_file, key)
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Issued(cert_file, key_file)


@dataclass(frozen=True, slots=True)
class ServerCertificates:
    ecdsa: Issued  # site file: ocpp.tls.cert_file / key_file
    rsa: Issued  # site file: ocpp.tls.rsa_cert_file / rsa_key_file


def issue_server(directory: Path, hosts: list[str], *, days: int = 825) -> ServerCertificates:
    """The CSMS's two certificates (ECDSA and RSA), valid for ``hosts`` (DNS names or IP addresses)."""
    if not hosts:
        raise ValueError("give at least one host name or address the chargers connect to")
    return ServerCertificates(
        _issue(directory, SERVER_STEM, hosts[0], server_names=hosts, days=days),
        _issue(directory, SERVER_RSA_STEM, hosts[0], server_names=hosts, days=days, rsa_key=True),
    )


def issue_client(directory: Path, charger_id: str, *, days: int = 825) -> Issued:
    """``<charger_id>.pem``/``.key``: a charger certificate with CN = ``charger_id``."""
    return _issue(directory, charger_id, charger_id, server_names=None, days=days)
