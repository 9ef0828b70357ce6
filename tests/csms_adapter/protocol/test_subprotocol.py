"""Subprotocol negotiation (OCPP-J 1.6 §3.2, 2.0.1 Part 4 §3.2): the charger's order of preference is honoured, and
a charger offering nothing depotctl speaks gets a completed handshake without Sec-WebSocket-Protocol that is
closed at once, as the specification says (docs/ocpp-conformance.md, Subprotocol), not an HTTP 400."""

from __future__ import annotations

import asyncio

import pytest
from fake_chargers import basic
from live_site import ENV, PASSWORD_A, make_site
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError

from csms_adapter.control.controller import Controller
from csms_adapter.protocol.counters import Reason


@pytest.mark.parametrize(("offered", "chosen"), [
    (["ocpp1.6", "ocpp2.0.1"], "ocpp1.6"),
    (["ocpp2.0.1", "ocpp1.6"], "ocpp2.0.1"),
    (["ocpp2.1", "ocpp1.6"], "ocpp1.6"),
])
async def test_the_chargers_preference_wins(offered: list[str], chosen: str) -> None:
    async with (Controller(make_site(), env=ENV, debounce_real_s=0.05) as c,
                connect(c.url + "cp-a", subprotocols=offered,  # type: ignore[arg-type]
                        additional_headers=basic("cp-a", PASSWORD_A), open_timeout=5) as ws):
        assert ws.subprotocol == chosen


@pytest.mark.parametrize("offered", [["ocpp1.5"], ["ocpp2.1"], None])
async def test_no_common_subprotocol_completes_the_handshake_then_closes(offered: list[str] | None) -> None:
    async with Controller(make_site(), env=ENV, debounce_real_s=0.05) as c:
        ws = await connect(c.url + "cp-a", subprotocols=offered,  # type: ignore[arg-type]
                           additional_headers=basic("cp-a", PASSWORD_A), open_timeout=5)
        assert ws.response is not None and ws.response.status_code == 101
        assert "Sec-WebSocket-Protocol" not in ws.response.headers
        assert ws.subprotocol is None
        with pytest.raises(ConnectionClosedError) as closed:
            async with asyncio.timeout(5):
                await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1002
        assert c.server.counters.totals[str(Reason.NO_SUBPROTOCOL)] == 1
        assert "cp-a" not in c.server.links
