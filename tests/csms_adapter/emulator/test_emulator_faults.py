"""Fault injection of the emulated chargers, seen on the wire by a small CSMS over real websockets: what a
controller's condition monitoring will be fed (csms_adapter/emulator/faults.py)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from ocpp.routing import on
from ocpp.v16 import ChargePoint as Cp16
from ocpp.v16 import call as c16
from ocpp.v16 import call_result as r16
from ocpp.v16.enums import Action as A16
from ocpp.v201 import ChargePoint as Cp201
from ocpp.v201 import call as c201
from ocpp.v201 import call_result as r201
from ocpp.v201.enums import Action as A201
from polling import eventually
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from csms_adapter.emulator import Fleet, start_fleet
from csms_adapter.emulator.clock import ocpp_time
from csms_adapter.emulator.faults import (
    BACKWARDS_WH,
    JUMP_WH,
    FaultInjection,
    FaultKind,
    MeterGlitch,
    parse_fault,
)
from csms_adapter.emulator.fleet import check_faults
from optimizer.domain import Site
from optimizer.site_loader import parse_site

SITE = """
site: {name: t, grid: {import_limit_kw: 100}}
chargers:
  - {id: cp16, connectors: 1, max_current_a: 32, max_power_kw: 22}
  - {id: cp201, connectors: 1, max_current_a: 32, max_power_kw: 22}
fleet:
  defaults: {battery_kwh: 200, max_power_kw: 22, knee_soc: 1.0}
"""
SPEED = 60.0  # one wall second is one emulated minute


def now_iso() -> str:
    return ocpp_time(datetime.now(UTC))


class Csms:
    """Records (identity, kind, payload) of what the chargers send; counts connections per identity."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str, dict[str, Any]]] = []
        self.cps: dict[str, Any] = {}
        self.connections: dict[str, int] = {}
        self.online: dict[str, bool] = {}
        self.next_tx = 100

    def of(self, identity: str, kind: str) -> list[dict[str, Any]]:
        return [payload for ident, k, payload in self.log if ident == identity and k == kind]

    async def handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        identity = urlsplit(ws.request.path).path.rsplit("/", 1)[-1]
        cp = (Csms16 if ws.subprotocol == "ocpp1.6" else Csms201)(identity, ws, response_timeout=5)
        cp.csms = self
        self.cps[identity] = cp
        self.connections[identity] = self.connections.get(identity, 0) + 1
        self.online[identity] = True
        try:
            with contextlib.suppress(ConnectionClosed):
                await cp.start()
        finally:
            self.online[identity] = False


class Csms16(Cp16):  # type: ignore[misc]
    csms: Csms

    @on(A16.boot_notification)
    def boot(self, **kw: Any) -> r16.BootNotification:
        self.csms.log.append((self.id, "boot", kw))
        return r16.BootNotification(current_time=now_iso(), interval=300, status="Accepted")

    @on(A16.heartbeat)
    def heartbeat(self, **_: Any) -> r16.Heartbeat:
        return r16.Heartbeat(current_time=now_iso())

    @on(A16.status_notification)
    def status(self, **kw: Any) -> r16.StatusNotification:
        self.csms.log.append((self.id, "status", kw))
        return r16.StatusNotification()

    @on(A16.authorize)
    def authorize(self, **_: Any) -> r16.Authorize:
        return r16.Authorize(id_tag_info={"status": "Accepted"})

    @on(A16.start_transaction)
    def start_tx(self, **kw: Any) -> r16.StartTransaction:
        self.csms.next_tx += 1
        self.csms.log.append((self.id, "start", {**kw, "transaction_id": self.csms.next_tx}))
        return r16.StartTransaction(transaction_id=self.csms.next_tx, id_tag_info={"status": "Accepted"})

    @on(A16.stop_transaction)
    def stop_tx(self, **_: Any) -> r16.StopTransaction:
        return r16.StopTransaction()

    @on(A16.meter_values)
    def meter(self, **kw: Any) -> r16.MeterValues:
        self.csms.log.append((self.id, "meter", kw))
        return r16.MeterValues()


class Csms201(Cp201):  # type: ignore[misc]
    csms: Csms

    @on(A201.boot_notification)
    def boot(self, **kw: Any) -> r201.BootNotification:
        self.csms.log.append((self.id, "boot", kw))
        return r201.BootNotification(current_time=now_iso(), interval=300, status="Accepted")

    @on(A201.heartbeat)
    def heartbeat(self, **_: Any) -> r201.Heartbeat:
        return r201.Heartbeat(current_time=now_iso())

    @on(A201.status_notification)
    def status(self, **kw: Any) -> r201.StatusNotification:
        self.csms.log.append((self.id, "status", kw))
        return r201.StatusNotification()

    @on(A201.notify_event)
    def notify_event(self, **kw: Any) -> r201.NotifyEvent:
        self.csms.log.append((self.id, "event", kw))
        return r201.NotifyEvent()

    @on(A201.notify_report)
    def notify_report(self, **kw: Any) -> r201.NotifyReport:
        self.csms.log.append((self.id, "report", kw))
        return r201.NotifyReport()

    @on(A201.authorize)
    def authorize(self, **_: Any) -> r201.Authorize:
        return r201.Authorize(id_token_info={"status": "Accepted"})

    @on(A201.transaction_event)
    def tx_event(self, **kw: Any) -> r201.TransactionEvent:
        self.csms.log.append((self.id, "tx:" + kw["event_type"], kw))
        return r201.TransactionEvent()


@pytest.fixture
async def csms() -> AsyncIterator[tuple[Csms, str]]:
    state = Csms()
    async with serve(state.handler, "127.0.0.1", 0, subprotocols=["ocpp1.6", "ocpp2.0.1"]) as server:  # type: ignore[list-item]
        yield state, f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"


@pytest.fixture
def site() -> Site:
    return parse_site(SITE)


@contextlib.asynccontextmanager
async def fleet_with(site: Site, url: str, charger_id: str, *faults: FaultInjection) -> AsyncIterator[Fleet]:
    index = [c.id for c in site.chargers].index(charger_id)
    fleet = await start_fleet(site, url, 1, SPEED, offset=index, arrival_window_s=0.0, faults=faults,
                              meter_interval_s=10.0)
    try:
        await fleet.wait_booted(5)
        yield fleet
    finally:
        await fleet.stop()


def taken_at(meter: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(meter["meter_value"][0]["timestamp"].replace("Z", "+00:00"))


def energy_wh(meter: dict[str, Any]) -> float:
    return next(float(sv["value"]) for mv in meter["meter_value"] for sv in mv["sampled_value"]
                if sv["measurand"] == "Energy.Active.Import.Register")


async def test_16_fault_is_reported_with_codes_delivers_nothing_and_clears_with_no_error(
        csms: tuple[Csms, str], site: Site) -> None:
    server, url = csms
    fault = parse_fault("fault:cp16:1@60+240,code=GroundFailure,vendor=GF-12,info=RCD tripped")
    async with fleet_with(site, url, "cp16", fault) as fleet:
        await eventually(lambda: any(s["status"] == "Faulted" for s in server.of("cp16", "status")))
        faulted = next(s for s in server.of("cp16", "status") if s["status"] == "Faulted")
        assert (faulted["error_code"], faulted["vendor_error_code"], faulted["info"]) == (
            "GroundFailure", "GF-12", "RCD tripped")
        await asyncio.sleep(0.5)  # 30 emulated seconds into the fault
        assert fleet.connectors()[0].power_kw == 0.0
        record = fleet.injections[0]
        assert record.started_at is not None and record.cleared_at is None
        await eventually(lambda: record.cleared_at is not None)
        await eventually(lambda: server.of("cp16", "status")[-1]["status"] != "Faulted")
        after = server.of("cp16", "status")[-1]
        assert after["error_code"] == "NoError" and after["status"] in ("Charging", "SuspendedEV", "SuspendedEVSE")
        await eventually(lambda: fleet.connectors()[0].power_kw > 0)
        assert (record.cleared_at - record.started_at).total_seconds() == pytest.approx(240, abs=30)


async def test_201_fault_sends_faulted_status_and_a_notify_event_then_clears_it(
        csms: tuple[Csms, str], site: Site) -> None:
    server, url = csms
    async with fleet_with(site, url, "cp201", parse_fault("fault:cp201@60+120,code=HighTemperature,vendor=T-88")):
        await eventually(lambda: len(server.of("cp201", "event")) >= 2)
        statuses = [s["connector_status"] for s in server.of("cp201", "status")]
        assert "Faulted" in statuses and statuses[-1] == "Occupied"
        raised, cleared = (e["event_data"][0] for e in server.of("cp201", "event")[:2])
        assert raised["component"]["name"] == "Connector" and raised["variable"]["name"] == "Problem"
        assert raised["component"]["evse"]["id"] == 1
        assert (raised["actual_value"], raised["tech_code"], raised["trigger"]) == ("true", "T-88", "Delta")
        assert "cleared" not in raised
        assert (cleared["actual_value"], cleared["cleared"]) == ("false", True)
        assert cleared["event_id"] > raised["event_id"]


async def test_unavailable_is_reported_as_unavailable(csms: tuple[Csms, str], site: Site) -> None:
    server, url = csms
    async with fleet_with(site, url, "cp16", parse_fault("unavailable:cp16:1@60+120")):
        await eventually(lambda: any(s["status"] == "Unavailable" for s in server.of("cp16", "status")))
        await eventually(lambda: server.of("cp16", "status")[-1]["status"] != "Unavailable")
        assert all(s["error_code"] == "NoError" for s in server.of("cp16", "status"))


async def test_offline_stays_away_for_its_duration_and_reconnects_without_booting(
        csms: tuple[Csms, str], site: Site) -> None:
    server, url = csms
    async with fleet_with(site, url, "cp16", parse_fault("offline:cp16@60+300")) as fleet:
        await eventually(lambda: server.connections.get("cp16") == 1 and not server.online["cp16"])
        went = fleet.clock.now()
        await asyncio.sleep(2.0)  # 120 emulated seconds: the charger must still be away
        assert server.connections["cp16"] == 1 and not fleet.chargers[0].online.is_set()
        await eventually(lambda: server.connections.get("cp16") == 2 and server.online["cp16"])
        assert (fleet.clock.now() - went).total_seconds() >= 290
        assert len(server.of("cp16", "boot")) == 1  # OCPP-J §5.4: a reconnect is no reboot
        await eventually(lambda: fleet.chargers[0].pending_messages == 0)  # what queued while away went out


@pytest.mark.parametrize("glitch", list(MeterGlitch))
async def test_meter_glitches_show_in_the_register_readings(csms: tuple[Csms, str], site: Site,
                                                             glitch: MeterGlitch) -> None:
    server, url = csms
    fault = FaultInjection(FaultKind.METER_GLITCH, "cp16", at_s=95, duration_s=60 if glitch is MeterGlitch.FROZEN
                           else None, glitch=glitch)
    async with fleet_with(site, url, "cp16", fault) as fleet:
        await eventually(lambda: len(server.of("cp16", "meter")) >= 20, timeout_s=10)
        readings = [energy_wh(m) for m in server.of("cp16", "meter")]
        steps = [b - a for a, b in itertools.pairwise(readings)]
        assert readings[0] > 0 and steps[0] > 0  # 22 kW for 10 s: about 61 Wh a reading
        if glitch is MeterGlitch.BACKWARDS:
            drop = steps.index(min(steps))
            assert [round(s) < 0 for s in steps].count(True) == 1
            # 5 kWh back (the register holds less here, so it reads 0), then the truth again
            assert readings[drop + 1] == max(0.0, readings[drop] + steps[0] - BACKWARDS_WH) == 0.0
            # The truth again: what the vehicle drew since the last true reading, at the rate of the first readings
            # (by the readings' own times: a busy host takes a reading late, with the energy of the longer interval).
            times = [taken_at(m) for m in server.of("cp16", "meter")]
            wh_per_s = steps[0] / (times[1] - times[0]).total_seconds()
            expected = readings[drop] + wh_per_s * (times[drop + 2] - times[drop]).total_seconds()
            assert readings[drop + 2] == pytest.approx(expected, rel=0.01)
        elif glitch is MeterGlitch.JUMP:
            assert [r > JUMP_WH for r in readings].count(True) == 1
            jump = readings.index(max(readings))
            assert readings[jump] == pytest.approx(readings[jump - 1] + steps[0] + JUMP_WH, abs=5)
        elif glitch is MeterGlitch.RESET:
            reset = steps.index(min(steps))
            assert min(steps) < -400 and readings[reset + 1] < 2 * steps[0]  # back near zero
            assert all(s > 0 for s in steps[reset + 1:])  # and counting on from there
        else:
            assert steps.count(0.0) >= 4  # a minute of identical readings while charging
            assert fleet.connectors()[0].power_kw > 0


async def test_ignore_limit_draws_the_hardware_maximum_for_its_duration(csms: tuple[Csms, str], site: Site) -> None:
    server, url = csms
    async with fleet_with(site, url, "cp16", parse_fault("ignore_limit:cp16@120+180")) as fleet:
        await eventually(lambda: bool(server.of("cp16", "start")))
        profile = {"charging_profile_id": 9, "stack_level": 0, "charging_profile_purpose": "ChargePointMaxProfile",
                   "charging_profile_kind": "Absolute",
                   "charging_schedule": {"charging_rate_unit": "A", "start_schedule": "2020-01-01T00:00:00Z",
                                         "charging_schedule_period": [{"start_period": 0, "limit": 8.0}]}}
        result = await server.cps["cp16"].call(c16.SetChargingProfile(connector_id=0, cs_charging_profiles=profile))
        assert result.status == "Accepted"
        limited_kw = 8 * 230 * 3 / 1000
        await eventually(lambda: fleet.connectors()[0].power_kw == pytest.approx(limited_kw, rel=0.01))
        await eventually(lambda: fleet.connectors()[0].power_kw > 20.0)  # the fault: 32 A, capped at 22 kW
        record = fleet.injections[0]
        await eventually(lambda: record.cleared_at is not None)
        await eventually(lambda: fleet.connectors()[0].power_kw == pytest.approx(limited_kw, rel=0.01))


@pytest.mark.parametrize("spec, reason", [
    ("", "expected KIND:CHARGER"),
    ("fault", "expected KIND:CHARGER"),
    ("fault:cp16", "expected KIND:CHARGER"),
    ("melt:cp16@10", "kind must be one of"),
    ("fault:cp16@-5", "expected KIND:CHARGER"),
    ("fault:cp16@10+0", "duration_s > 0"),
    ("fault:cp16:0@10", "connector must be >= 1"),
    ("fault:cp16@10,code=NoError", "ChargePointErrorCode"),
    ("fault:cp16@10,colour=red", "unknown key 'colour'"),
    ("meter_glitch:cp16@10,glitch=sideways", "sideways"),
    ("fault:cp16@10,vendor=" + "x" * 51, "at most 50"),
    ("fault:cp16@1e3", "expected KIND:CHARGER"),
])
def test_bad_fault_specs_say_what_is_wrong(spec: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_fault(spec)


def test_a_fault_spec_round_trips_every_field() -> None:
    fault = parse_fault("meter_glitch:cp-7:2@90.5+30,glitch=frozen,info=x")
    assert fault == FaultInjection(FaultKind.METER_GLITCH, "cp-7", 90.5, 30.0, 2, glitch=MeterGlitch.FROZEN, info="x")


def test_faults_on_chargers_or_connectors_not_emulated_are_refused(site: Site) -> None:
    with pytest.raises(ValueError, match="no such emulated charger"):
        check_faults([parse_fault("offline:cp99@10")], site.chargers)
    with pytest.raises(ValueError, match=r"connector 2 does not exist \(1..1\)"):
        check_faults([parse_fault("fault:cp16:2@10")], site.chargers)
    check_faults([parse_fault("offline:cp16@10"), parse_fault("fault:cp201:1@5")], site.chargers)


async def test_201_station_reports_its_inventory_and_takes_monitors_that_its_events_then_cite(
        csms: tuple[Csms, str], site: Site) -> None:
    server, url = csms
    async with fleet_with(site, url, "cp201", parse_fault("fault:cp201@240+60,code=GroundFailure")):
        await eventually(lambda: "cp201" in server.cps)
        cp = server.cps["cp201"]
        answer = await cp.call(c201.GetBaseReport(request_id=7, report_base="FullInventory"))
        assert answer.status == "Accepted"
        await eventually(lambda: bool(server.of("cp201", "report")))
        report = server.of("cp201", "report")[0]
        assert report["request_id"] == 7 and not report.get("tbc")
        items = {(i["component"]["name"], i["variable"]["name"]): i for i in report["report_data"]}
        assert items[("MonitoringCtrlr", "Enabled")]["variable_attribute"][0]["value"] == "true"
        problem = items[("Connector", "Problem")]
        assert problem["component"]["evse"]["id"] == 1 and problem["variable_characteristics"]["supports_monitoring"]
        assert items[("SampledDataCtrlr", "TxUpdatedInterval")]["variable_attribute"][0]["mutability"] == "ReadWrite"

        monitors = [
            {"value": 1, "type": "Delta", "severity": 2, "component": {"name": "Connector", "evse": {"id": 1}},
             "variable": {"name": "Problem"}},
            {"value": 60, "type": "UpperThreshold", "severity": 4, "component": {"name": "ChargingStation"},
             "variable": {"name": "Temperature"}},
            {"value": 1, "type": "Delta", "severity": 2, "component": {"name": "Connector", "evse": {"id": 9}},
             "variable": {"name": "Problem"}},
            {"value": 1, "type": "Periodic", "severity": 12, "component": {"name": "ChargingStation"},
             "variable": {"name": "Temperature"}},
            {"value": 1, "type": "Delta", "severity": 2, "component": {"name": "Toaster"}, "variable": {"name": "Crumbs"}},
        ]
        result = await cp.call(c201.SetVariableMonitoring(set_monitoring_data=monitors))
        statuses = [r["status"] for r in result.set_monitoring_result]
        assert statuses == ["Accepted", "Accepted", "UnknownComponent", "Rejected", "UnknownComponent"]
        problem_monitor = result.set_monitoring_result[0]["id"]

        await eventually(lambda: bool(server.of("cp201", "event")))
        raised = server.of("cp201", "event")[0]["event_data"][0]
        assert raised["event_notification_type"] == "CustomMonitor"
        assert raised["variable_monitoring_id"] == problem_monitor
