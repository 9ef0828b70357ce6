"""OCPP security profiles 1-3 over real sockets and real TLS on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import warnings
from pathlib import Path

import pytest
from fake_chargers import Charger16, Recorder, basic
from live_site import ENV, PASSWORD_A, SITE_YAML, make_site
from security_helpers import BOOT_FRAMES, client_tls, exchange, make_pki, raw_client
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage, InvalidStatus

from csms_adapter.cli.security_cli import new_password
from csms_adapter.control.controller import Controller
from optimizer.domain import Site
from optimizer.site_loader import parse_site

HB = '[2,"hb","Heartbeat",{}]'
KEY_HEX = "00112233445566778899aabbccddeeff0a1b2c3d"  # a 20-byte 1.6 AuthorizationKey as 40 hex digits


def site_with_key_for_cp_a(key_text: str) -> Site:
    """The live test site with cp-a's stored hash made from ``key_text``."""
    old = hashlib.sha256(PASSWORD_A.encode()).hexdigest()
    return parse_site(SITE_YAML.replace(old, hashlib.sha256(key_text.encode()).hexdigest()), "t.yaml")


@pytest.mark.parametrize("sent", [KEY_HEX.encode(), KEY_HEX.upper().encode(), bytes.fromhex(KEY_HEX)],
                         ids=["hex-text", "HEX-TEXT", "raw-bytes"])
async def test_profile1_accepts_the_16_key_as_hex_text_or_raw_bytes(sent: bytes) -> None:
    async with Controller(site_with_key_for_cp_a(KEY_HEX), env=ENV, debounce_real_s=0.05) as c:
        ws = await raw_client(c.url, "cp-a", sent)
        try:
            assert (await exchange(ws, HB) or [])[0] == 3
        finally:
            await ws.close()


async def test_profile1_refuses_a_wrong_raw_key_and_a_near_miss() -> None:
    async with Controller(site_with_key_for_cp_a(KEY_HEX), env=ENV, debounce_real_s=0.05) as c:
        for sent in (bytes.fromhex(KEY_HEX)[:-1] + b"\x00", KEY_HEX[:-1].encode() + b"e", b""):
            with pytest.raises(InvalidStatus) as info:
                await raw_client(c.url, "cp-a", sent)
            assert info.value.response.status_code == 401


async def test_password_command_output_is_accepted_by_the_server() -> None:
    password, digest = new_password()
    assert len(password) == 40 and hashlib.sha256(password.encode()).hexdigest() == digest
    async with Controller(site_with_key_for_cp_a(password), env=ENV, debounce_real_s=0.05) as c:
        ws = await raw_client(c.url, "cp-a", bytes.fromhex(password))  # as a 1.6 charger sends the key
        try:
            assert (await exchange(ws, HB) or [])[0] == 3
        finally:
            await ws.close()


def tls_site(pki: Path, profile: int) -> Site:
    ca = f", ca_file: {pki / 'ca.pem'}" if profile == 3 else ""
    return make_site(f"  security_profile: {profile}\n"
                     f"  tls: {{cert_file: {pki / 'server.pem'}, key_file: {pki / 'server.key'}{ca}}}\n")


async def test_profile2_serves_wss_with_basic_auth_and_refuses_plain_ws(tmp_path: Path) -> None:
    make_pki(tmp_path, [])
    async with Controller(tls_site(tmp_path, 2), env=ENV, debounce_real_s=0.05) as c:
        assert c.url.startswith("wss://")
        rec = Recorder()
        ws = await connect(c.url + "cp-a", subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                           additional_headers=basic("cp-a", PASSWORD_A), ssl=client_tls(tmp_path))
        cp = Charger16("cp-a", ws, rec)
        task = asyncio.create_task(cp.start())
        try:
            boot = await cp.boot()
            assert boot.status == "Accepted"
            await rec.wait_for(lambda: bool(rec.of("SetChargingProfile")))  # fail-safe pushed over TLS
        finally:
            await ws.close()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        with pytest.raises(InvalidStatus) as info:  # TLS, but no password
            await connect(c.url + "cp-a", subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                          ssl=client_tls(tmp_path))
        assert info.value.response.status_code == 401
        with pytest.raises((InvalidMessage, ConnectionError, OSError)):  # plain ws to a TLS port
            await connect(c.url.replace("wss://", "ws://") + "cp-a", subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                          additional_headers=basic("cp-a", PASSWORD_A), open_timeout=3)


async def test_profile2_refuses_tls_below_12(tmp_path: Path) -> None:
    make_pki(tmp_path, [])
    async with Controller(tls_site(tmp_path, 2), env=ENV, debounce_real_s=0.05) as c:
        old = client_tls(tmp_path)
        with warnings.catch_warnings():  # setting TLS 1.1 warns: exactly the point of this client
            warnings.simplefilter("ignore", DeprecationWarning)
            old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            old.maximum_version = ssl.TLSVersion.TLSv1_1
        with pytest.raises((ssl.SSLError, OSError)):
            await connect(c.url + "cp-a", subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                          additional_headers=basic("cp-a", PASSWORD_A), ssl=old, open_timeout=3)


async def test_profile3_binds_the_certificate_cn_to_the_identity(tmp_path: Path) -> None:
    issued = make_pki(tmp_path, ["cp-a", "cp-b"])
    async with Controller(tls_site(tmp_path, 3), env=ENV, debounce_real_s=0.05) as c:
        own = await connect(c.url + "cp-a", subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                            ssl=client_tls(tmp_path, issued["cp-a"]), open_timeout=3)
        try:
            assert (await exchange(own, BOOT_FRAMES["ocpp1.6"]) or [])[0] == 3
            assert (await exchange(own, HB) or [])[0] == 3
            with pytest.raises(InvalidStatus) as info:  # cp-b's valid certificate used for cp-a
                await connect(c.url + "cp-a", subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                              ssl=client_tls(tmp_path, issued["cp-b"]), open_timeout=3)
            assert info.value.response.status_code == 403
            assert (await exchange(own, HB) or [])[0] == 3  # the real cp-a was not knocked off
        finally:
            await own.close()
        with pytest.raises((ssl.SSLError, OSError, InvalidMessage)):  # no client certificate at all
            ws = await connect(c.url + "cp-a", subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                               ssl=client_tls(tmp_path), open_timeout=3)
            await ws.recv()  # TLS 1.3 reports a missing client certificate only on the first read
        assert c.server.counters.snapshot()["handshake_certificate_mismatch"] == 1


async def test_profile3_refuses_a_certificate_from_another_ca(tmp_path: Path) -> None:
    make_pki(tmp_path / "site", [])
    stranger = make_pki(tmp_path / "other", ["cp-a"])
    async with Controller(tls_site(tmp_path / "site", 3), env=ENV, debounce_real_s=0.05) as c:
        with pytest.raises((ssl.SSLError, OSError, InvalidMessage)):
            ws = await connect(c.url + "cp-a", subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                               ssl=client_tls(tmp_path / "site", stranger["cp-a"]), open_timeout=3)
            await ws.recv()
