"""Condition monitoring end to end: fake 1.6 and 2.0.1 chargers over real websockets on 127.0.0.1, the real
controller and solver, a fake clock for the debounce. Every incident kind, opened and resolved exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fake_chargers import Charger16, Charger201, Recorder, charger, now_iso
from live_site import ENV, PASSWORD_A, PASSWORD_B, make_site
from ocpp.exceptions import OCPPError
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from polling import eventually

from csms_adapter.control.charger_setup import Step
from csms_adapter.control.controller import Controller
from csms_adapter.control.recorder import StoreRecorder
from csms_adapter.monitoring import IncidentChange, IncidentKind, Severity


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def controller(clock: FakeClock) -> AsyncIterator[Controller]:
    async with Controller(make_site(), env=ENV, clock=clock, debounce_real_s=0.05, ignore_grace_s=0.0) as c:
        yield c


def heard(c: Controller) -> list[IncidentChange]:
    changes: list[IncidentChange] = []
    c.monitor.listeners.append(changes.append)
    return changes


def of(changes: list[IncidentChange], charger_id: str, kind: IncidentKind) -> list[tuple[str, int | None]]:
    return [(ch.event, ch.incident.connector) for ch in changes
            if ch.incident.charger == charger_id and ch.incident.kind is kind]


async def status16(cp: Charger16, connector: int, status: str, error_code: str = "NoError", **extra: Any) -> None:
    await cp.call(call16.StatusNotification(connector_id=connector, error_code=error_code, status=status,
                                            timestamp=now_iso(), **extra))


# ------------------------------------------------------------------------------ fault and unavailable

async def test_16_fault_with_codes_opens_counts_repeats_and_resolves_once(controller: Controller) -> None:
    changes = heard(controller)
    async with charger(controller.url, "cp-a", PASSWORD_A, "1.6") as cp:
        assert isinstance(cp, Charger16)
        await cp.boot()
        await status16(cp, 1, "Faulted", "GroundFailure", info="RCD", vendor_id="Acme", vendor_error_code="E42")
        await status16(cp, 1, "Faulted", "GroundFailure", vendor_error_code="E42")
        [incident] = controller.monitor.incidents(open=True, charger="cp-a")
        assert incident.to_json() | {"id": "", "opened_at": "", "occurrences": 0} == {
            "id": "", "charger": "cp-a", "connector": 1, "kind": "fault", "code": "GroundFailure",
            "vendor_code": "E42", "info": "RCD", "severity": "critical", "opened_at": "", "resolved_at": None,
            "occurrences": 0, "source": "StatusNotification"}
        assert incident.occurrences == 2
        assert controller.monitor.charger_up("cp-a")  # one connector of two: the charger still serves
        await status16(cp, 1, "Available")
        await status16(cp, 1, "Available")
    assert of(changes, "cp-a", IncidentKind.FAULT) == [("opened", 1), ("resolved", 1)]
    [kept] = controller.monitor.incidents(open=False, charger="cp-a")
    assert kept.resolved_at is not None
    events = await controller.monitor.events("cp-a")
    faulted = [e for e in events if e.type == "status" and e.status == "Faulted"]
    assert faulted and faulted[-1].code == "GroundFailure" and faulted[-1].vendor_code == "E42"
    assert faulted[-1].details == {"vendor_id": "Acme"}


async def test_16_error_code_on_a_charging_connector_is_a_warning(controller: Controller) -> None:
    async with charger(controller.url, "cp-a", PASSWORD_A, "1.6") as cp:
        assert isinstance(cp, Charger16)
        await cp.boot()
        await status16(cp, 2, "Charging", "HighTemperature")
        [incident] = controller.monitor.incidents(open=True, charger="cp-a")
        assert (incident.kind, incident.severity, incident.connector) == (IncidentKind.FAULT, Severity.WARNING, 2)
        await status16(cp, 2, "Charging")
        assert controller.monitor.incidents(open=True, charger="cp-a") == []


async def test_16_whole_charger_fault_and_unavailable(controller: Controller) -> None:
    changes = heard(controller)
    async with charger(controller.url, "cp-a", PASSWORD_A, "1.6") as cp:
        assert isinstance(cp, Charger16)
        await cp.boot()
        await status16(cp, 0, "Faulted", "PowerMeterFailure")
        assert not controller.monitor.charger_up("cp-a")
        await status16(cp, 0, "Available")
        assert controller.monitor.charger_up("cp-a")
        await status16(cp, 2, "Unavailable")
        await status16(cp, 2, "Available")
    assert of(changes, "cp-a", IncidentKind.FAULT) == [("opened", None), ("resolved", None)]
    assert of(changes, "cp-a", IncidentKind.UNAVAILABLE) == [("opened", 2), ("resolved", 2)]


async def test_201_status_and_notify_event_problem(controller: Controller) -> None:
    changes = heard(controller)
    async with charger(controller.url, "cp-b", PASSWORD_B, "2.0.1") as cp:
        assert isinstance(cp, Charger201)
        await cp.boot()
        await cp.status(1, "Faulted")
        await cp.status(1, "Available")
        problem = {"event_id": 7, "timestamp": now_iso(), "trigger": "Delta", "actual_value": "true",
                   "tech_code": "OC-3", "tech_info": "overcurrent", "event_notification_type": "HardWiredNotification",
                   "component": {"name": "Connector", "evse": {"id": 1, "connector_id": 1}},
                   "variable": {"name": "Problem"}}
        await cp.call(call201.NotifyEvent(generated_at=now_iso(), seq_no=0, event_data=[problem]))
        [incident] = controller.monitor.incidents(open=True, charger="cp-b")
        assert (incident.code, incident.vendor_code, incident.source) == ("Connector/Problem", "OC-3", "NotifyEvent")
        cleared = problem | {"event_id": 8, "actual_value": "false", "cleared": True}
        await cp.call(call201.NotifyEvent(generated_at=now_iso(), seq_no=0, event_data=[cleared]))
        await cp.status(1, "Unavailable")
    assert of(changes, "cp-b", IncidentKind.FAULT) == [("opened", 1), ("resolved", 1), ("opened", 1), ("resolved", 1)]
    assert of(changes, "cp-b", IncidentKind.UNAVAILABLE) == [("opened", 1)]
    events = await controller.monitor.events("cp-b")
    assert {e.type for e in events} >= {"status", "device_event", "connected", "booted"}


async def test_faulted_connector_leaves_the_plan_and_comes_back(controller: Controller) -> None:
    async with charger(controller.url, "cp-a", PASSWORD_A, "1.6") as cp:
        assert isinstance(cp, Charger16)
        await cp.boot()
        await eventually(lambda: controller.live.charger("cp-a").set_up)  # under control: its sessions are planned
        await status16(cp, 1, "Preparing")
        await cp.start_tx(1, "TAG1", 0)
        await status16(cp, 1, "Charging")
        snapshot = controller.live.snapshot(controller.clock())
        assert [s.connector_id for s in snapshot.sessions if s.charger_id == "cp-a"] == [1]
        await status16(cp, 1, "Faulted", "GroundFailure")
        snapshot = controller.live.snapshot(controller.clock())
        assert not [s for s in snapshot.sessions if s.charger_id == "cp-a"]
        [out] = [u for u in snapshot.uncontrolled if u.charger_id == "cp-a"]
        assert out.connector_id == 1 and out.power_kw == 0.0 and "out of service: fault" in out.reason
        assert not controller.live.controllable("cp-a", 1)
        await status16(cp, 1, "Charging")
        snapshot = controller.live.snapshot(controller.clock())
        assert [s.connector_id for s in snapshot.sessions if s.charger_id == "cp-a"] == [1]


# ------------------------------------------------------------------------------ offline

async def test_offline_blip_shorter_than_debounce_tells_nobody(controller: Controller, clock: FakeClock) -> None:
    changes = heard(controller)
    async with charger(controller.url, "cp-a", PASSWORD_A, "1.6") as cp:
        assert isinstance(cp, Charger16)
        await cp.boot()
    await eventually(lambda: not controller.live.chargers["cp-a"].connected)
    clock.advance(60)
    controller.monitor.evaluate(clock())
    async with charger(controller.url, "cp-a", PASSWORD_A, "1.6") as cp:
        await eventually(lambda: controller.live.chargers["cp-a"].connected)
        clock.advance(600)
        controller.monitor.evaluate(clock())
    assert of(changes, "cp-a", IncidentKind.OFFLINE) == []
    types = [e.type for e in await controller.monitor.events("cp-a")]
    assert (types.count("connected"), types.count("disconnected"), types.count("booted")) == (2, 2, 1)


async def test_offline_past_debounce_opens_then_resolves_on_reconnect(controller: Controller,
                                                                      clock: FakeClock) -> None:
    changes = heard(controller)
    async with charger(controller.url, "cp-b", PASSWORD_B, "2.0.1") as cp:
        assert isinstance(cp, Charger201)
        await cp.boot()
    await eventually(lambda: not controller.live.chargers["cp-b"].connected)
    went = clock()
    clock.advance(121)
    controller.monitor.evaluate(clock())
    [incident] = controller.monitor.incidents(open=True, charger="cp-b")
    assert (incident.kind, incident.code, incident.opened_at) == (IncidentKind.OFFLINE, "disconnected", went)
    assert incident.info is not None and "closed by the charger" in incident.info
    assert not controller.monitor.charger_up("cp-b")
    # Budgeted at its fail-safe share while away.
    assert any(u.charger_id == "cp-b" for u in controller.live.snapshot(clock()).uncontrolled)
    async with charger(controller.url, "cp-b", PASSWORD_B, "2.0.1"):
        await eventually(lambda: controller.live.chargers["cp-b"].connected)
    assert of(changes, "cp-b", IncidentKind.OFFLINE) == [("opened", None), ("resolved", None)]


async def test_silent_connected_charger_goes_offline(controller: Controller, clock: FakeClock) -> None:
    changes = heard(controller)
    async with charger(controller.url, "cp-a", PASSWORD_A, "1.6") as cp:
        assert isinstance(cp, Charger16)
        await cp.boot()
        clock.advance(controller.site.monitoring.offline_after_s + 121)
        controller.monitor.evaluate(clock())
        [incident] = controller.monitor.incidents(open=True, charger="cp-a")
        assert incident.code == "silent"
        await cp.call(call16.Heartbeat())  # a heartbeat publishes no event, yet it is a sign of life
        controller.monitor.evaluate(clock())
        assert of(changes, "cp-a", IncidentKind.OFFLINE) == [("opened", None), ("resolved", None)]


# ------------------------------------------------------------------------------ point events

@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_security_firmware_and_log_failures(controller: Controller, clock: FakeClock, version: str) -> None:
    changes = heard(controller)
    identity, password = ("cp-a", PASSWORD_A) if version == "1.6" else ("cp-b", PASSWORD_B)
    calls = call16 if version == "1.6" else call201
    async with charger(controller.url, identity, password, version) as cp:
        await cp.boot()
        for _ in range(2):
            await cp.call(calls.SecurityEventNotification(type="TamperDetectionActivated", timestamp=now_iso(),
                                                          tech_info="lid opened"))
        await cp.call(calls.FirmwareStatusNotification(status="InstallationFailed"))
        await cp.call(calls.FirmwareStatusNotification(status="Installed"))
        await cp.call(calls.LogStatusNotification(status="UploadFailure",
                                                  request_id=3))
        if version == "1.6":
            await cp.call(call16.DiagnosticsStatusNotification(status="UploadFailed"))
        [security] = [i for i in controller.monitor.incidents(open=True, charger=identity)
                      if i.kind is IncidentKind.SECURITY_EVENT]
        assert (security.code, security.info, security.severity, security.occurrences) == (
            "TamperDetectionActivated", "lid opened", Severity.CRITICAL, 2)
    assert of(changes, identity, IncidentKind.FIRMWARE) == [("opened", None), ("resolved", None)]
    assert of(changes, identity, IncidentKind.DIAGNOSTICS) == [("opened", None)]
    clock.advance(controller.site.monitoring.quiet_resolve_s + 1)
    controller.monitor.evaluate(clock())
    assert of(changes, identity, IncidentKind.SECURITY_EVENT) == [("opened", None), ("resolved", None)]
    types = {e.type for e in await controller.monitor.events(identity)}
    assert {"security_event", "firmware_status", "log_status"} <= types


# ------------------------------------------------------------------------------ meter, limits, profiles

async def test_meter_register_going_backwards_is_flagged_and_kept_from_the_live_state(
        controller: Controller) -> None:
    changes = heard(controller)
    async with charger(controller.url, "cp-a", PASSWORD_A, "1.6") as cp:
        assert isinstance(cp, Charger16)
        await cp.boot()
        tx = await cp.start_tx(1, "TAG1", 10_000)
        register = [{"value": "10000", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]
        await cp.meter(1, tx, register)
        await cp.meter(1, tx, [register[0] | {"value": "4000"}])
        session = controller.live.chargers["cp-a"].connectors[1].session
        assert session is not None and session.energy_now_kwh == 10.0
        await cp.meter(1, tx, [register[0] | {"value": "10001"}])
    assert of(changes, "cp-a", IncidentKind.METER_ANOMALY) == [("opened", 1), ("resolved", 1)]
    [incident] = controller.monitor.incidents(charger="cp-a")
    assert incident.code == "register_backwards" and incident.source == "meter"
    [flagged] = [e for e in await controller.monitor.events("cp-a") if e.type == "meter_anomaly"]
    assert flagged.details["value"] == 4.0


async def test_ignored_limit_and_rejected_profile_raise_incidents(controller: Controller) -> None:
    changes = heard(controller)
    rec = Recorder()
    async with charger(controller.url, "cp-a", PASSWORD_A, "1.6", rec) as cp:
        assert isinstance(cp, Charger16)
        await cp.boot()
        await status16(cp, 1, "Charging")
        tx = await cp.start_tx(1, "TAG1", 0)
        await rec.wait_for(lambda: bool(rec.tx_profiles()))
        await eventually(lambda: controller.live.chargers["cp-a"].connectors[1].command is not None)
        draw = [{"value": "21", "measurand": "Current.Import", "unit": "A"},
                {"value": "14500", "measurand": "Power.Active.Import", "unit": "W"}]
        for _ in range(3):
            await cp.meter(1, tx, draw)
            controller.loop.request_tick("test")
            await asyncio.sleep(0.2)
        await eventually(lambda: bool(of(changes, "cp-a", IncidentKind.IGNORES_LIMIT)))
        [ignoring] = [i for i in controller.monitor.incidents(open=True, charger="cp-a")
                      if i.kind is IncidentKind.IGNORES_LIMIT]
        assert ignoring.severity is Severity.CRITICAL and ignoring.info is not None and "draws" in ignoring.info
        rec.tx_profile_status = "Rejected"
        await cp.start_tx(2, "TAG2", 0)
        await status16(cp, 2, "Charging")
        await eventually(lambda: bool(of(changes, "cp-a", IncidentKind.PROFILE_REJECTED)))
    assert of(changes, "cp-a", IncidentKind.PROFILE_REJECTED) == [("opened", 2)]


async def test_201_ignored_limit_raises_an_incident_and_leaves_the_plan(controller: Controller) -> None:
    changes = heard(controller)
    rec = Recorder()
    async with charger(controller.url, "cp-b", PASSWORD_B, "2.0.1", rec) as cp:
        assert isinstance(cp, Charger201)
        await cp.boot()
        await cp.status(1, "Occupied")
        await cp.tx_event("Started", "tx-ign", 1, [{"value": 0.0, "measurand": "Energy.Active.Import.Register"}],
                          trigger="CablePluggedIn", id_token="TAG1")
        await rec.wait_for(lambda: bool(rec.tx_profiles()))
        await eventually(lambda: controller.live.chargers["cp-b"].connectors[1].command is not None)
        limit_kw = controller.live.chargers["cp-b"].connectors[1].command.limit_kw  # type: ignore[union-attr]
        draw = [{"value": 32.0, "measurand": "Current.Import", "unit_of_measure": {"unit": "A"}, "phase": p}
                for p in ("L1", "L2", "L3")]
        draw.append({"value": 22000.0, "measurand": "Power.Active.Import", "unit_of_measure": {"unit": "W"}})
        assert limit_kw < 20.0  # the site's limits hold it well below what it will draw
        for _ in range(3):
            await cp.tx_event("Updated", "tx-ign", 1, draw)
            controller.loop.request_tick("test")
            await asyncio.sleep(0.2)
        await eventually(lambda: bool(of(changes, "cp-b", IncidentKind.IGNORES_LIMIT)))
        [ignoring] = [i for i in controller.monitor.incidents(open=True, charger="cp-b")
                      if i.kind is IncidentKind.IGNORES_LIMIT]
        assert ignoring.severity is Severity.CRITICAL and ignoring.connector == 1
        assert ignoring.info is not None and "draws 22.0 kW" in ignoring.info
        await eventually(lambda: not controller.live.controllable("cp-b", 1))
    assert of(changes, "cp-b", IncidentKind.IGNORES_LIMIT)[0] == ("opened", 1)


# ------------------------------------------------------------------------------ garbage

async def test_malformed_monitoring_messages_get_call_errors_and_the_link_lives(controller: Controller) -> None:
    async with charger(controller.url, "cp-b", PASSWORD_B, "2.0.1") as cp:
        assert isinstance(cp, Charger201)
        await cp.boot()
        bad = [
            call201.NotifyEvent(generated_at=now_iso(), seq_no=0, event_data=[{"event_id": "x"}]),
            call201.SecurityEventNotification(type="", timestamp=now_iso(), tech_info="x" * 300),
            call201.FirmwareStatusNotification(status="Exploded"),
            call201.NotifyReport(request_id=1, generated_at=now_iso(), seq_no=0,
                                 report_data=[{"component": {}, "variable": {"name": "x"}}]),
        ]
        for message in bad:
            with pytest.raises(OCPPError):
                await cp.call(message, suppress=False)
        await cp.status(1, "Available")
        assert controller.live.chargers["cp-b"].connectors[1].plug.value == "available"
    assert controller.monitor.incidents(charger="cp-b") == []


# ------------------------------------------------------------------------------ 2.0.1 device model

class ReportingStation(Charger201):
    """A 2.0.1 station with a device model: answers GetBaseReport, then reports it in two NotifyReport parts."""

    from ocpp.routing import after as _after
    from ocpp.routing import on as _on

    @_on("GetBaseReport")
    async def on_gbr(self, request_id: int, report_base: str, **kw: Any) -> Any:
        from ocpp.v201 import call_result

        await self.rec.enter("GetBaseReport", {"request_id": request_id, "report_base": report_base})
        return call_result.GetBaseReport(status="Accepted")

    @_after("GetBaseReport")
    async def send_report(self, request_id: int, **kw: Any) -> None:
        def item(component: dict[str, Any], variable: str, value: str) -> dict[str, Any]:
            return {"component": component, "variable": {"name": variable},
                    "variable_attribute": [{"type": "Actual", "value": value, "mutability": "ReadOnly"}]}

        parts = [
            [item({"name": "MonitoringCtrlr"}, "Enabled", "true"),
             item({"name": "Connector", "evse": {"id": 1, "connector_id": 1}}, "Problem", "false")],
            [item({"name": "TemperatureSensor", "instance": "power-module"}, "Temperature", "31.5")],
        ]
        for seq, data in enumerate(parts):
            await self.call(call201.NotifyReport(request_id=request_id, generated_at=now_iso(), seq_no=seq,
                                                 report_data=data, tbc=seq < len(parts) - 1))

    @_on("SetVariableMonitoring")
    async def on_svm(self, set_monitoring_data: list[dict[str, Any]], **kw: Any) -> Any:
        from ocpp.v201 import call_result

        await self.rec.enter("SetVariableMonitoring", {"set_monitoring_data": set_monitoring_data})
        return call_result.SetVariableMonitoring(set_monitoring_result=[
            {"status": "Accepted", "type": d["type"], "severity": d["severity"], "component": d["component"],
             "variable": d["variable"], "id": n} for n, d in enumerate(set_monitoring_data)])


async def test_201_device_model_is_stored_and_monitors_are_set(tmp_path: Path) -> None:
    from fake_chargers import basic
    from websockets.asyncio.client import connect

    from csms_adapter.store.monitoring_repo import MonitoringRepository

    recorder = StoreRecorder.open(f"sqlite:///{tmp_path / 'depot.db'}")
    async with Controller(make_site(), env=ENV, recorder=recorder, debounce_real_s=0.05) as c:
        rec = Recorder()
        ws = await connect(c.url + "cp-b", subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
                           additional_headers=basic("cp-b", PASSWORD_B), open_timeout=5)
        cp = ReportingStation("cp-b", ws, rec)
        task = asyncio.create_task(cp.start())
        try:
            await cp.boot()
            await rec.wait_for(lambda: bool(rec.of("SetVariableMonitoring")))
            [asked] = rec.of("GetBaseReport")
            assert asked["report_base"] == "FullInventory"
            monitors = rec.of("SetVariableMonitoring")[0]["set_monitoring_data"]
            kinds = {(m["component"]["name"], m["variable"]["name"], m["type"]) for m in monitors}
            assert kinds == {("Connector", "Problem", "Delta"), ("TemperatureSensor", "Temperature", "UpperThreshold")}
        finally:
            await ws.close()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await eventually(lambda: not c.live.chargers["cp-b"].connected)
    store_recorder = StoreRecorder.open(f"sqlite:///{tmp_path / 'depot.db'}")
    try:
        rows = MonitoringRepository(store_recorder.store).device_variables("cp-b")
        assert {(r.component, r.variable, r.value) for r in rows} == {
            ("MonitoringCtrlr", "Enabled", "true"), ("Connector", "Problem", "false"),
            ("TemperatureSensor", "Temperature", "31.5")}
    finally:
        store_recorder.store.close()


async def test_history_and_incidents_survive_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    url = f"sqlite:///{tmp_path / 'depot.db'}"
    async with Controller(make_site(), env=ENV, recorder=StoreRecorder.open(url), clock=clock,
                          debounce_real_s=0.05) as c:
        async with charger(c.url, "cp-a", PASSWORD_A, "1.6") as cp:
            assert isinstance(cp, Charger16)
            await cp.boot()
            await status16(cp, 1, "Faulted", "GroundFailure", vendor_error_code="E42")
        [before] = c.monitor.incidents(open=True, charger="cp-a", since=None)
    async with Controller(make_site(), env=ENV, recorder=StoreRecorder.open(url), clock=clock,
                          debounce_real_s=0.05) as c2:
        [after] = [i for i in c2.monitor.incidents(open=True, charger="cp-a") if i.kind is IncidentKind.FAULT]
        assert after == before
        events = await c2.monitor.events("cp-a", limit=50)
        assert any(e.type == "status" and e.code == "GroundFailure" for e in events)
        assert events == sorted(events, key=lambda e: e.time, reverse=True)
        async with charger(c2.url, "cp-a", PASSWORD_A, "1.6") as cp:
            assert isinstance(cp, Charger16)
            await status16(cp, 1, "Available")
        [resolved] = c2.monitor.incidents(open=False, charger="cp-a")
        assert resolved.id == before.id


async def test_faulted_free_connector_gets_no_plug_in_room(controller: Controller) -> None:
    from csms_adapter.control.plug_in_guard import with_plug_in_budget

    def room(charger_id: str) -> float:
        snapshot = with_plug_in_budget(controller.live.snapshot(controller.clock()), controller.live,
                                       controller.dispatcher, controller.clock())
        slots = sum(s.wanted_kw for s in snapshot.plug_in if s.charger_id == charger_id)
        return slots + sum(u.power_kw for u in snapshot.uncontrolled if u.charger_id == charger_id)

    rec = Recorder()
    async with charger(controller.url, "cp-a", PASSWORD_A, "1.6", rec) as cp:
        assert isinstance(cp, Charger16)
        await cp.boot()
        await rec.wait_for(lambda: len(rec.of("ChangeConfiguration")) >= 2)
        await eventually(lambda: controller.live.charger("cp-a").set_up)  # before: budgeted whole, as connecting
        both = room("cp-a")
        await status16(cp, 2, "Faulted", "ConnectorLockFailure")
        one = room("cp-a")
        await status16(cp, 1, "Unavailable")
        assert room("cp-a") == 0.0
        assert both > one > 0.0


async def test_a_charger_that_never_connects_is_offline_after_the_grace(controller: Controller,
                                                                         clock: FakeClock) -> None:
    changes = heard(controller)
    started = clock()
    async with charger(controller.url, "cp-a", PASSWORD_A, "1.6") as cp:
        assert isinstance(cp, Charger16)
        await cp.boot()
        clock.advance(controller.site.monitoring.offline_after_s - 1)
        controller.monitor.evaluate(clock())
        assert of(changes, "cp-b", IncidentKind.OFFLINE) == []
        clock.advance(1)
        controller.monitor.evaluate(clock())
        assert of(changes, "cp-a", IncidentKind.OFFLINE) == []
        [incident] = controller.monitor.incidents(open=True, charger="cp-b")
        assert (incident.code, incident.opened_at) == ("not_connected", started)


async def test_malformed_16_monitoring_messages_get_call_errors_and_the_link_lives(controller: Controller) -> None:
    async with charger(controller.url, "cp-a", PASSWORD_A, "1.6") as cp:
        assert isinstance(cp, Charger16)
        await cp.boot()
        bad = [
            call16.DiagnosticsStatusNotification(status="Melted"),
            call16.FirmwareStatusNotification(status=""),
            call16.SecurityEventNotification(type="x" * 60, timestamp=now_iso(), tech_info=None),
            call16.StatusNotification(connector_id=1, error_code="Bogus", status="Faulted"),
        ]
        for message in bad:
            with pytest.raises(OCPPError):
                await cp.call(message, suppress=False)
        await status16(cp, 1, "Available")
        assert controller.live.chargers["cp-a"].connectors[1].plug.value == "available"
    assert controller.monitor.incidents(charger="cp-a") == []


async def test_impossible_power_is_one_incident_that_ends_with_a_believable_value(controller: Controller) -> None:
    changes = heard(controller)
    async with charger(controller.url, "cp-a", PASSWORD_A, "1.6") as cp:
        assert isinstance(cp, Charger16)
        await cp.boot()
        tx = await cp.start_tx(1, "TAG1", 0)
        for watts in ("900000", "900000", "7200"):
            await cp.meter(1, tx, [{"value": watts, "measurand": "Power.Active.Import", "unit": "W"}])
        power = controller.live.chargers["cp-a"].connectors[1].readings.power_kw
        assert power is not None and power.value == 7.2
    assert of(changes, "cp-a", IncidentKind.METER_ANOMALY) == [("opened", 1), ("resolved", 1)]
    [incident] = controller.monitor.incidents(charger="cp-a")
    assert (incident.code, incident.occurrences) == ("out_of_range", 2)


async def test_refused_failsafe_is_a_critical_charger_wide_incident(controller: Controller) -> None:
    changes = heard(controller)
    rec = Recorder(profile_status="Rejected")
    async with charger(controller.url, "cp-a", PASSWORD_A, "1.6", rec) as cp:
        assert isinstance(cp, Charger16)
        await cp.boot()
        await eventually(lambda: bool(of(changes, "cp-a", IncidentKind.PROFILE_REJECTED)))
        [incident] = controller.monitor.incidents(open=True, charger="cp-a")
        assert (incident.connector, incident.code, incident.severity) == (None, "failsafe_rejected", Severity.CRITICAL)
        controller.loop.request_tick("test")
        await asyncio.sleep(0.3)  # a tick with no session clears nothing charger-wide
        assert controller.monitor.incidents(open=True, charger="cp-a") == [incident]
        rec.profile_status = "Accepted"
        await controller.setup._step(Step.FAILSAFE, controller.server.links["cp-a"], "reconnect")
    assert of(changes, "cp-a", IncidentKind.PROFILE_REJECTED) == [("opened", None), ("resolved", None)]
