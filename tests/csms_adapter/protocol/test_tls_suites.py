"""TLS under security profiles 2 and 3 serves every cipher suite OCPP requires of a CSMS (1.6 A00.FR.317,
2.0.1 A00.FR.318): the two ECDHE-ECDSA suites need the ECDSA certificate, the two TLS_RSA suites the RSA one. Each
suite is tried alone by a TLS 1.2 client, plus TLS 1.3, with an ``ocpp`` library charger booting over it."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
import typer
from fake_chargers import Charger16, Recorder, basic
from live_site import ENV, PASSWORD_A, SITE_YAML, make_site
from security_helpers import client_tls
from typer.testing import CliRunner
from websockets.asyncio.client import connect

from csms_adapter.cli.security_cli import register
from csms_adapter.control.controller import Controller
from csms_adapter.protocol import certs
from csms_adapter.protocol.tls import TlsConfigError, certificate_kind, server_context
from optimizer.domain import Site, TlsSettings
from optimizer.errors import ConfigError
from optimizer.site_loader import parse_site

REQUIRED_SUITES = ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "AES128-GCM-SHA256",
                   "AES256-GCM-SHA384")


def make_pki(directory: Path) -> dict[str, certs.Issued]:
    certs.init_ca(directory, "Test Depot Ltd")
    server = certs.issue_server(directory, ["127.0.0.1", "localhost"])
    return {"ecdsa": server.ecdsa, "rsa": server.rsa, "cp-a": certs.issue_client(directory, "cp-a")}


def tls_site(pki: Path, profile: int, *, rsa: bool = True) -> Site:
    extra = f", rsa_cert_file: {pki / 'server-rsa.pem'}, rsa_key_file: {pki / 'server-rsa.key'}" if rsa else ""
    ca = f", ca_file: {pki / 'ca.pem'}" if profile == 3 else ""
    return make_site(f"  security_profile: {profile}\n"
                     f"  tls: {{cert_file: {pki / 'server.pem'}, key_file: {pki / 'server.key'}{extra}{ca}}}\n")


def restricted(pki: Path, suite: str | None, client: certs.Issued | None) -> ssl.SSLContext:
    context = client_tls(pki, client)
    if suite is not None:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(suite)
    return context


async def boot_over(url: str, context: ssl.SSLContext, password: bool) -> tuple[str, str]:
    """(negotiated cipher, boot status) of a 1.6 library charger connecting with ``context``."""
    headers = basic("cp-a", PASSWORD_A) if password else {}
    ws = await connect(url + "cp-a", subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                       additional_headers=headers, ssl=context, open_timeout=5)
    cp = Charger16("cp-a", ws, Recorder())
    task = asyncio.create_task(cp.start())
    try:
        cipher = ws.transport.get_extra_info("cipher")[0]
        return cipher, (await cp.boot()).status
    finally:
        await ws.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize("profile", [2, 3])
async def test_every_required_suite_and_tls13_connect(tmp_path: Path, profile: int) -> None:
    issued = make_pki(tmp_path)
    async with Controller(tls_site(tmp_path, profile), env=ENV, debounce_real_s=0.05) as c:
        client = issued["cp-a"] if profile == 3 else None
        for suite in REQUIRED_SUITES:
            cipher, status = await boot_over(c.url, restricted(tmp_path, suite, client), password=profile == 2)
            assert (cipher, status) == (suite, "Accepted")
        cipher, status = await boot_over(c.url, restricted(tmp_path, None, client), password=profile == 2)
        assert cipher.startswith("TLS_") and status == "Accepted"  # TLS 1.3


async def test_without_the_rsa_certificate_a_tls_rsa_charger_is_refused(tmp_path: Path) -> None:
    make_pki(tmp_path)
    async with Controller(tls_site(tmp_path, 2, rsa=False), env=ENV, debounce_real_s=0.05) as c:
        with pytest.raises((ssl.SSLError, OSError)):
            await boot_over(c.url, restricted(tmp_path, "AES128-GCM-SHA256", None), password=True)
        cipher, _ = await boot_over(c.url, restricted(tmp_path, "ECDHE-ECDSA-AES128-GCM-SHA256", None), password=True)
        assert cipher == "ECDHE-ECDSA-AES128-GCM-SHA256"


def test_certs_server_command_writes_both_key_types(tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    assert runner.invoke(app, ["certs", "init", "--org", "Depot", "--dir", str(tmp_path)]).exit_code == 0
    result = runner.invoke(app, ["certs", "server", "127.0.0.1", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "rsa_cert_file" in result.output
    assert certificate_kind(str(tmp_path / "server.pem")) == "ECDSA"
    assert certificate_kind(str(tmp_path / "server-rsa.pem")) == "RSA"
    assert (tmp_path / "server-rsa.key").stat().st_mode & 0o077 == 0


def test_tls_settings_garbage_is_refused(tmp_path: Path) -> None:
    issued = make_pki(tmp_path)
    ec_cert, ec_key = str(issued["ecdsa"].cert_file), str(issued["ecdsa"].key_file)
    with pytest.raises(TlsConfigError, match="both ECDSA"):
        server_context(TlsSettings(ec_cert, ec_key, None, ec_cert, ec_key), 2)
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(TlsConfigError, match=r"junk\.pem"):
        server_context(TlsSettings(ec_cert, ec_key, None, str(tmp_path / "junk.pem"), ec_key), 2)
    with pytest.raises(TlsConfigError):  # the RSA certificate with the EC key
        server_context(TlsSettings(ec_cert, ec_key, None, str(issued["rsa"].cert_file), ec_key), 2)
    with pytest.raises(ConfigError) as caught:
        parse_site(SITE_YAML + f"  security_profile: 2\n  tls: {{cert_file: {ec_cert}, key_file: {ec_key}, "
                   f"rsa_cert_file: {issued['rsa'].cert_file}}}\n", "bad.yaml")
    assert "rsa_key_file" in str(caught.value)
