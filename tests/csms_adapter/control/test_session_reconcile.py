"""Sessions are reconciled with what the chargers report (issue #13 item 5): on restart the newest open session of
a connector wins and the older ones are closed; on every reconnect 1.6 status and 2.0.1 GetTransactionStatus close
what ended while the controller was away (in the live state and in the store); a repeated TransactionEvent
(same seqNo) is not applied twice."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from live_site import ENV, PASSWORD_A, PASSWORD_B, make_site
from polling import eventually
from scripted_charger import BOOT16, BOOT201, Scripted, settle
from security_helpers import raw_client

from csms_adapter.control.controller import Controller
from csms_adapter.control.recorder import StoreRecorder
from csms_adapter.store import Store

T0 = datetime(2026, 1, 10, 8, 0, tzinfo=UTC)


def stored(url: str) -> dict[str, tuple[bool, str | None]]:
    """transaction id → (open, stop reason)."""
    store = Store.open(url)
    try:
        with store.engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT transaction_id, is_open, stop_reason FROM sessions").fetchall()
        return {tx: (bool(is_open), reason) for tx, is_open, reason in rows}
    finally:
        store.close()


async def test_restart_resumes_the_newest_open_session_of_a_connector(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'depot.db'}"
    store = Store.open(url)
    for tx, started in (("101", T0), ("102", T0 + timedelta(hours=2)), ("103", T0 + timedelta(hours=1))):
        store.open_session("cp-a", 1, tx, started_at=started, meter_start_wh=0.0)
    store.open_session("cp-a", 2, "104", started_at=T0, meter_start_wh=0.0)
    store.close()
    async with Controller(make_site(), env=ENV, recorder=StoreRecorder.open(url)) as controller:
        assert sorted((n, s.transaction_id) for _, n, s in controller.live.open_sessions()) == [(1, "102"), (2, "104")]
    sessions = stored(url)
    assert sessions["102"] == (True, None) and sessions["104"] == (True, None)
    assert sessions["101"][0] is False and sessions["103"][0] is False
    assert sessions["101"][1] is not None and "superseded" in sessions["101"][1]


async def test_ocpp16_reconnect_closes_a_session_the_charger_reports_over(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'depot.db'}"
    async with Controller(make_site(), env=ENV, recorder=StoreRecorder.open(url), boot_wait_s=0.5) as controller:
        cp = Scripted(await raw_client(controller.url, "cp-a", PASSWORD_A, boot=False))
        await cp.call("BootNotification", BOOT16)
        now = datetime.now(UTC)
        ids = []
        for connector in (1, 2):
            answer = await cp.call("StartTransaction", {"connectorId": connector, "idTag": "TAG1", "meterStart": 0,
                                                        "timestamp": now.isoformat()})
            ids.append(str(answer[2]["transactionId"]))
        await settle(cp, quiet_s=0.5)
        await cp.close()  # the controller is away from it; meanwhile connector 1's vehicle left
        again = Scripted(await raw_client(controller.url, "cp-a", PASSWORD_A, boot=False))
        try:
            await eventually(lambda: bool(again.calls("TriggerMessage")))
            later = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
            for connector, status in ((1, "Available"), (2, "Charging")):
                await again.call("StatusNotification", {"connectorId": connector, "errorCode": "NoError",
                                                        "status": status, "timestamp": later})
            await eventually(lambda: [s.transaction_id for _, _, s in controller.live.open_sessions()] == [ids[1]])
        finally:
            await again.close()
    sessions = stored(url)
    assert sessions[ids[0]] == (False, "charger reported Available")
    assert sessions[ids[1]] == (True, None)


async def test_ocpp201_reconnect_asks_the_station_which_transactions_still_run(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'depot.db'}"
    async with Controller(make_site(), env=ENV, recorder=StoreRecorder.open(url), boot_wait_s=0.5) as controller:
        running = {"GetTransactionStatus": {"messagesInQueue": False, "ongoingIndicator": True}}
        cp = Scripted(await raw_client(controller.url, "cp-b", PASSWORD_B, "ocpp2.0.1", boot=False), running)
        await cp.call("BootNotification", BOOT201)
        now = datetime.now(UTC).isoformat()
        for seq, tx in enumerate(("tx-ended", "tx-queued")):
            await cp.call("TransactionEvent", {"eventType": "Started", "timestamp": now, "triggerReason": "CablePluggedIn",
                                               "seqNo": seq, "transactionInfo": {"transactionId": tx},
                                               "evse": {"id": 1, "connectorId": 1}})
        await settle(cp, quiet_s=0.5)
        assert [s.transaction_id for _, _, s in controller.live.open_sessions()] == ["tx-queued"]  # newest wins
        await cp.close()
        # Back without booting. The station answers per transaction: tx-queued is over but its end is queued.
        again = Scripted(await raw_client(controller.url, "cp-b", PASSWORD_B, "ocpp2.0.1", boot=False),
                         {"GetTransactionStatus": {"messagesInQueue": True, "ongoingIndicator": False}})
        try:
            await eventually(lambda: bool(again.calls("GetTransactionStatus")))
            await settle(again, quiet_s=0.5)
            assert again.calls("GetTransactionStatus") == [{"transactionId": "tx-queued"}]
            assert [s.transaction_id for _, _, s in controller.live.open_sessions()] == ["tx-queued"]  # waits for it
        finally:
            await again.close()
        third = Scripted(await raw_client(controller.url, "cp-b", PASSWORD_B, "ocpp2.0.1", boot=False),
                         {"GetTransactionStatus": {"messagesInQueue": False, "ongoingIndicator": False}})
        try:
            await eventually(lambda: not controller.live.open_sessions())
        finally:
            await third.close()
    sessions = stored(url)
    assert sessions["tx-queued"] == (False, "EndedWhileControllerAway")
    assert sessions["tx-ended"][0] is False  # superseded on the connector by the newer transaction


async def test_ocpp201_a_repeated_transaction_event_is_not_applied_twice() -> None:
    async with Controller(make_site(), env=ENV) as controller:
        cp = Scripted(await raw_client(controller.url, "cp-b", PASSWORD_B, "ocpp2.0.1", boot=False))
        try:
            await cp.call("BootNotification", BOOT201)
            now = datetime.now(UTC).isoformat()
            started = {"eventType": "Started", "timestamp": now, "triggerReason": "CablePluggedIn", "seqNo": 0,
                       "transactionInfo": {"transactionId": "tx-1"}, "evse": {"id": 1, "connectorId": 1}}
            ended = {**started, "eventType": "Ended", "seqNo": 1, "triggerReason": "EVDeparted",
                     "transactionInfo": {"transactionId": "tx-1", "stoppedReason": "EVDisconnected"}}
            for payload in (started, ended, started):  # the Started again: its answer was lost, it is resent
                answer = await cp.call("TransactionEvent", payload)
                assert answer[0] == 3
            assert controller.live.open_sessions() == []
        finally:
            await cp.close()


async def test_ocpp201_a_station_counting_one_seq_no_over_its_evses_shows_no_gap(caplog: pytest.LogCaptureFixture) -> None:
    """Edition 1 lets a station count one seqNo over all its EVSEs: a transaction's own numbers then jump whenever the
    other EVSE reported in between, and that is no missing event. A real gap is still told."""
    async with Controller(make_site(), env=ENV) as controller:
        cp = Scripted(await raw_client(controller.url, "cp-a", PASSWORD_A, "ocpp2.0.1", boot=False))
        try:
            await cp.call("BootNotification", BOOT201)
            now = datetime.now(UTC).isoformat()

            def event(tx: str, evse: int, seq_no: int, event_type: str = "Updated") -> dict[str, object]:
                return {"eventType": event_type, "timestamp": now, "triggerReason": "MeterValuePeriodic",
                        "seqNo": seq_no, "transactionInfo": {"transactionId": tx},
                        "evse": {"id": evse, "connectorId": 1}}

            with caplog.at_level(logging.INFO, logger="depotctl.ocpp201"):
                for payload in (event("tx-a", 1, 0, "Started"), event("tx-b", 2, 1, "Started"), event("tx-a", 1, 2),
                                event("tx-b", 2, 3), event("tx-a", 1, 4)):
                    assert (await cp.call("TransactionEvent", payload))[0] == 3
                assert not [r for r in caplog.records if "seqNo jumped" in r.getMessage()]
                assert len(controller.live.open_sessions()) == 2
                assert (await cp.call("TransactionEvent", event("tx-b", 2, 7)))[0] == 3  # 5 and 6 never came
                gaps = [r.getMessage() for r in caplog.records if "seqNo jumped" in r.getMessage()]
                assert len(gaps) == 1 and "transaction=tx-b seqNo jumped 3 -> 7: 3 event(s) missing" in gaps[0]
        finally:
            await cp.close()
