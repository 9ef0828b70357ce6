"""Duplicate identities (SaiFlow 2023) and secrets in logs."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest
from fake_chargers import Charger16, Charger201, Recorder, charger
from live_site import ENV, PASSWORD_A, PASSWORD_B, make_site
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from polling import eventually
from security_helpers import exchange, raw_client
from websockets.exceptions import InvalidStatus

from csms_adapter.control.controller import Controller
from csms_adapter.control.recorder import StoreRecorder
from csms_adapter.store import Store

HB = '[2,"hb","Heartbeat",{}]'
POWER = [{"value": "7000", "measurand": "Power.Active.Import", "unit": "W"}]
POWER_201 = [{"value": 7000, "measurand": "Power.Active.Import"}]


async def test_an_unauthenticated_duplicate_cannot_knock_the_charger_off() -> None:
    async with Controller(make_site(), env=ENV, debounce_real_s=0.05) as c:
        real = await raw_client(c.url, "cp-a", PASSWORD_A)
        try:
            link = c.server.links["cp-a"]
            for password in ("", "not-the-password-1234", PASSWORD_B):
                with pytest.raises(InvalidStatus) as info:
                    await raw_client(c.url, "cp-a", password)
                assert info.value.response.status_code == 401
            assert c.server.links["cp-a"] is link and link.connected
            assert (await exchange(real, HB) or [])[0] == 3
        finally:
            await real.close()


async def test_an_authenticated_duplicate_replaces_the_old_link_without_losing_the_session(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'depot.db'}"
    async with Controller(make_site(), env=ENV, recorder=StoreRecorder.open(url), debounce_real_s=0.05) as c:
        async with charger(c.url, "cp-b", PASSWORD_B, "2.0.1") as old:
            assert isinstance(old, Charger201)
            await old.boot()
            await old.tx_event("Started", "tx-9", 1, POWER_201, trigger="CablePluggedIn", id_token="TAG1")
            old_link = c.server.links["cp-b"]
            async with charger(c.url, "cp-b", PASSWORD_B, "2.0.1") as new:  # same charger, new socket
                assert isinstance(new, Charger201)
                await eventually(lambda: not old_link.connected and c.server.links["cp-b"] is not old_link)
                await new.tx_event("Updated", "tx-9", 1, POWER_201)  # a new link first sees the tx mid-way
                await eventually(lambda: len(c.live.open_sessions()) == 1)
                assert [s.transaction_id for _, _, s in c.live.open_sessions()] == ["tx-9"]
                assert c.live.charger("cp-b").connected
        assert c.server.counters.of("cp-b")["connection_superseded"] == 1
    store = Store.open(url)
    try:
        sessions = store.open_sessions()
        assert [(s.charger_id, s.transaction_id) for s in sessions] == [("cp-b", "tx-9")]
        history = store.meter_history("cp-b", 1, sessions[0].started_at, c.clock())
        assert len([h for h in history if h.measurand == "Power.Active.Import"]) == 2  # one from each socket
    finally:
        store.close()


async def test_no_password_or_key_reaches_the_logs_of_a_full_session(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # everything: ocpp frames, websockets headers, depotctl
    new_key_16 = "feedfacecafebeef00112233445566778899aabb"
    new_password_201 = "Rotated-Password-0123456789"
    secrets = [PASSWORD_A, PASSWORD_B, new_key_16, new_password_201,
               base64.b64encode(f"cp-a:{PASSWORD_A}".encode()).decode(),
               base64.b64encode(f"cp-b:{PASSWORD_B}".encode()).decode()]
    rec_a, rec_b = Recorder(), Recorder()
    async with (
        Controller(make_site(), env=ENV, debounce_real_s=0.05) as c,
        charger(c.url, "cp-a", PASSWORD_A, "1.6", rec_a) as a,
        charger(c.url, "cp-b", PASSWORD_B, "2.0.1", rec_b) as b,
    ):
        assert isinstance(a, Charger16) and isinstance(b, Charger201)
        await a.boot()
        await b.boot()
        tx = await a.start_tx(1, "TAG1", 1000)
        await a.meter(1, tx, POWER)
        await rec_a.wait_for(lambda: bool(rec_a.tx_profiles()))
        # Key rotation as an operator tool would do it: the frames carry the new secrets.
        link_a, link_b = c.server.links["cp-a"], c.server.links["cp-b"]
        await link_a._call(call16.ChangeConfiguration(key="AuthorizationKey", value=new_key_16))
        await link_b._call(call201.SetVariables(set_variable_data=[{
            "attribute_value": new_password_201, "component": {"name": "SecurityCtrlr"},
            "variable": {"name": "BasicAuthPassword"}}]))
        with pytest.raises(InvalidStatus):
            await raw_client(c.url, "cp-a", "wrong-" + PASSWORD_A)
    text = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    assert "ChangeConfiguration" in text and "BasicAuthPassword" in text and "[redacted]" in text
    for secret in secrets:
        assert secret not in text, f"a secret reached the logs: {secret[:4]}…"
