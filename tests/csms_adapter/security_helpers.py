"""Shared pieces of the security tests: a raw OCPP client (frames as text, no library) and TLS material."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from csms_adapter.protocol import certs


def basic_raw(identity: str, password: bytes) -> dict[str, str]:
    token = base64.b64encode(identity.encode() + b":" + password).decode()
    return {"Authorization": f"Basic {token}"}


BOOT_FRAMES = {
    "ocpp1.6": '[2,"boot","BootNotification",{"chargePointVendor":"Acme","chargePointModel":"Raw"}]',
    "ocpp2.0.1": '[2,"boot","BootNotification",{"reason":"PowerUp","chargingStation":{"vendorName":"Acme",'
                 '"model":"Raw"}}]',
}


async def raw_client(url: str, identity: str, password: str | bytes, subprotocol: str = "ocpp1.6", *,
                     boot: bool = True, **kwargs: Any) -> ClientConnection:
    """A raw connection; with ``boot`` it first boots (answered Accepted), since the controller refuses every
    other CALL from a charger whose boot was not accepted."""
    secret = password.encode() if isinstance(password, str) else password
    ws = await connect(url + identity, subprotocols=[subprotocol],  # type: ignore[list-item]
                       additional_headers=basic_raw(identity, secret), open_timeout=5, **kwargs)
    if boot:
        answer = await exchange(ws, BOOT_FRAMES[subprotocol], timeout_s=10.0)
        assert answer is not None and answer[0] == 3 and answer[2]["status"] == "Accepted", answer
    return ws


async def exchange(ws: ClientConnection, frame: str | bytes, timeout_s: float = 2.0) -> list[Any] | None:
    """Send one frame; the parsed answer, or None when none came within ``timeout_s``. The controller's own CALLs
    (its set-up after the boot) are skipped, unanswered: these tests are about what the charger sends."""
    await ws.send(frame)
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                answer = json.loads(await ws.recv())
                if not (isinstance(answer, list) and answer and answer[0] == 2):
                    return answer  # type: ignore[no-any-return]
    except TimeoutError:
        return None


def make_pki(directory: Path, chargers: list[str]) -> dict[str, certs.Issued]:
    certs.init_ca(directory, "Test Depot Ltd")
    issued = {"server": certs.issue_server(directory, ["127.0.0.1", "localhost"]).ecdsa}
    for charger_id in chargers:
        issued[charger_id] = certs.issue_client(directory, charger_id)
    return issued


def client_tls(directory: Path, client: certs.Issued | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(directory / certs.CA_CERT))
    if client is not None:
        context.load_cert_chain(client.cert_file, client.key_file)
    return context
