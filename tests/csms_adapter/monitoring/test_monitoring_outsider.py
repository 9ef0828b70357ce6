"""The condition-monitoring contract as an outsider sees it: an independent charger (``outsider_charger``: raw
websockets and json, real-firmware message shapes) drives each case over real websockets on 127.0.0.1, and the test
reads only the contract's surfaces: ``/api/incidents``, ``/api/chargers/{id}/events``, ``/metrics`` and the signed
webhook. A fake clock runs the debounce; the store is real SQLite in a temporary directory."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_receiver import Receiver, receiving
from live_site import ENV, PASSWORD_A, PASSWORD_B, make_site
from outsider_charger import OutsiderCharger, Station, outsider, wire_time
from polling import eventually
from prometheus_text import metric

from csms_adapter.control.alert_hooks import attach_webhooks
from csms_adapter.control.controller import Controller
from csms_adapter.control.recorder import StoreRecorder
from csms_adapter.http_api import attach_http_api
from csms_adapter.monitoring.webhooks import RetryPolicy, WebhookNotifier
from optimizer.domain import WebhookSpec

SECRET = "outsider-webhook-secret"
OFFLINE_DEBOUNCE_S = 120.0  # the contract's default for offline
CODES_16 = {"NotImplemented", "NotSupported", "InternalError", "ProtocolError", "SecurityError", "FormationViolation",
            "PropertyConstraintViolation", "OccurenceConstraintViolation", "TypeConstraintViolation", "GenericError"}
CODES_201 = {"FormatViolation", "GenericError", "InternalError", "MessageTypeNotSupported", "NotImplemented",
             "NotSupported", "OccurrenceConstraintViolation", "PropertyConstraintViolation", "ProtocolError",
             "RpcFrameworkError", "SecurityError", "TypeConstraintViolation"}


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Site:
    controller: Controller
    clock: FakeClock
    api: httpx.AsyncClient
    hooks: WebhookNotifier
    receiver: Receiver

    @property
    def url(self) -> str:
        return self.controller.url

    async def incidents(self, query: str = "") -> list[dict[str, Any]]:
        response = await self.api.get(f"/api/incidents{query}")
        assert response.status_code == 200, response.text
        rows: list[dict[str, Any]] = response.json()
        return rows

    async def events(self, charger: str) -> list[dict[str, Any]]:
        response = await self.api.get(f"/api/chargers/{charger}/events?limit=1000")
        assert response.status_code == 200, response.text
        rows: list[dict[str, Any]] = response.json()
        return rows

    async def metric(self, name: str, **labels: str) -> float | None:
        response = await self.api.get("/metrics")
        assert response.status_code == 200
        return metric(response.text, name, **labels)

    def hooks_for(self, charger: str, kind: str) -> list[str]:
        """The webhook events (``opened``/``resolved``) received for this charger and incident kind, in order;
        each body's signature checked with the shared secret as any receiver would."""
        out = []
        for request in self.receiver.requests:
            expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
            assert request.headers["x-depotctl-signature"] == expected
            body = request.json()
            incident = body["incident"]
            assert isinstance(incident, dict) and body["site"] == "test-depot"
            if incident["charger"] == charger and incident["kind"] == kind:
                out.append(str(body["event"]))
        return out

    async def settle_hooks(self) -> None:
        """Until every webhook is delivered, then one more monitor evaluation: nothing else may follow."""
        await eventually(lambda: self.hooks.pending == 0)
        self.controller.monitor.evaluate(self.clock())
        await asyncio.sleep(0.2)
        await eventually(lambda: self.hooks.pending == 0)


@contextlib.asynccontextmanager
async def running(tmp_path: Path) -> AsyncIterator[Site]:
    clock = FakeClock()
    env = dict(ENV) | {"HOOK_SECRET": SECRET}
    site = make_site()
    async with receiving() as receiver:
        hooks = (WebhookSpec(receiver.url, "info", "HOOK_SECRET"),)
        site = dataclasses.replace(site, monitoring=dataclasses.replace(site.monitoring, webhooks=hooks))
        controller = Controller(site, env=env, clock=clock, debounce_real_s=0.05, ignore_grace_s=0.0,
                                recorder=StoreRecorder.open(f"sqlite:///{tmp_path / 'depot.db'}"))
        notifier = attach_webhooks(controller, retry=RetryPolicy(first_delay_s=0.05, max_delay_s=0.2))
        assert notifier is not None
        api = attach_http_api(controller, "127.0.0.1:0")
        async with controller, httpx.AsyncClient(base_url=f"http://127.0.0.1:{api.port}", timeout=10.0) as client:
            yield Site(controller, clock, client, notifier, receiver)


@pytest.fixture
async def depot(tmp_path: Path) -> AsyncIterator[Site]:
    async with running(tmp_path) as site:
        yield site


async def booted(cp: OutsiderCharger) -> None:
    answer = await cp.boot()
    assert answer.ok and answer.payload is not None and answer.payload["status"] == "Accepted"


async def ok(cp: OutsiderCharger, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    answer = await cp.call(action, payload)
    assert answer.ok, (action, answer)
    assert answer.payload is not None
    return answer.payload


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# ------------------------------------------------------------------------------ faults

async def test_16_fault_with_vendor_codes_opens_once_everywhere_and_resolves_once(depot: Site) -> None:
    async with outsider(depot.url, "cp-a", PASSWORD_A, "1.6") as cp:
        await booted(cp)
        when = wire_time(depot.clock(), offset_h=1)
        fault = {"connectorId": 1, "errorCode": "GroundFailure", "status": "Faulted", "info": "RCD tripped",
                 "timestamp": when, "vendorId": "com.outsider", "vendorErrorCode": "0x2A"}
        await ok(cp, "StatusNotification", fault)
        await ok(cp, "StatusNotification", fault)  # firmwares repeat a status: one incident, two occurrences
        [incident] = await depot.incidents("?open=true&charger=cp-a")
        assert {k: incident[k] for k in ("charger", "connector", "kind", "code", "vendor_code", "info", "severity",
                                         "resolved_at", "occurrences", "source")} == {
            "charger": "cp-a", "connector": 1, "kind": "fault", "code": "GroundFailure", "vendor_code": "0x2A",
            "info": "RCD tripped", "severity": "critical", "resolved_at": None, "occurrences": 2,
            "source": "StatusNotification"}
        await eventually(lambda: depot.hooks_for("cp-a", "fault") == ["opened"])
        assert await depot.metric("depotctl_incidents_open", kind="fault", severity="critical") == 1.0
        assert await depot.metric("depotctl_incidents_total", kind="fault") == 1.0
        # the charger recovers; 1.6 StatusNotification's timestamp and info are optional and left out
        await ok(cp, "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"})
        await ok(cp, "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"})
        await eventually(lambda: depot.hooks_for("cp-a", "fault") == ["opened", "resolved"])
        await depot.settle_hooks()
        assert depot.hooks_for("cp-a", "fault") == ["opened", "resolved"]
        assert await depot.incidents("?open=true&charger=cp-a") == []
        [kept] = await depot.incidents("?open=false&charger=cp-a")
        assert kept["id"] == incident["id"] and kept["resolved_at"] is not None
        assert await depot.metric("depotctl_incidents_open", kind="fault", severity="critical") == 0.0
        assert await depot.metric("depotctl_charger_up", charger="cp-a") == 1.0

        async def stored() -> list[dict[str, Any]]:
            return [e for e in await depot.events("cp-a") if e["type"] == "status" and e["status"] == "Faulted"]

        faulted = await eventually(stored)
        assert len(faulted) == 2
        assert (faulted[0]["code"], faulted[0]["vendor_code"], faulted[0]["info"]) == ("GroundFailure", "0x2A",
                                                                                       "RCD tripped")
        assert utc(faulted[0]["time"]) == utc(when)  # the charger's own time, its offset understood


async def test_201_notify_event_with_several_event_data_raises_one_fault_and_keeps_every_item(depot: Site) -> None:
    async with outsider(depot.url, "cp-b", PASSWORD_B, "2.0.1") as cp:
        await booted(cp)
        when = wire_time(depot.clock(), offset_h=-5)
        faulted = {"eventId": 101, "timestamp": when, "trigger": "Delta", "actualValue": "Faulted",
                   "techCode": "E-17", "techInfo": "contactor welded", "eventNotificationType": "HardWiredNotification",
                   "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
                   "variable": {"name": "AvailabilityState"}}
        temperature = {"eventId": 102, "timestamp": when, "trigger": "Periodic", "actualValue": "41.5",
                       "eventNotificationType": "PreconfiguredMonitor",
                       "component": {"name": "ChargingStation"}, "variable": {"name": "Temperature"}}
        await ok(cp, "NotifyEvent", {"generatedAt": when, "seqNo": 0, "eventData": [faulted, temperature]})
        [incident] = await depot.incidents("?open=true&charger=cp-b")
        assert (incident["kind"], incident["connector"], incident["code"], incident["vendor_code"],
                incident["source"]) == ("fault", 1, "Connector/AvailabilityState", "E-17", "NotifyEvent")
        await eventually(lambda: depot.hooks_for("cp-b", "fault") == ["opened"])
        assert await depot.metric("depotctl_charger_up", charger="cp-b") == 0.0  # its only connector is faulted
        # a second report of the same problem, then the recovery, in one message spread over two parts
        again = faulted | {"eventId": 103}
        await ok(cp, "NotifyEvent", {"generatedAt": when, "seqNo": 0, "tbc": True, "eventData": [again]})
        back = faulted | {"eventId": 104, "actualValue": "Available", "cause": 101}
        del back["techCode"], back["techInfo"]
        await ok(cp, "NotifyEvent", {"generatedAt": when, "seqNo": 1, "eventData": [back]})
        await eventually(lambda: depot.hooks_for("cp-b", "fault") == ["opened", "resolved"])
        await depot.settle_hooks()
        assert depot.hooks_for("cp-b", "fault") == ["opened", "resolved"]
        [kept] = await depot.incidents("?charger=cp-b")
        assert kept["occurrences"] == 2 and kept["resolved_at"] is not None

        async def device_events() -> list[dict[str, Any]]:
            rows = [e for e in await depot.events("cp-b") if e["type"] == "device_event"]
            return rows if len(rows) == 4 else []

        rows = await eventually(device_events)
        assert all(utc(r["time"]) == utc(when) for r in rows)
        assert sorted(r["details"]["event_id"] for r in rows) == [101, 102, 103, 104]


async def test_201_status_notification_fault_with_offset_timestamp(depot: Site) -> None:
    async with outsider(depot.url, "cp-b", PASSWORD_B, "2.0.1") as cp:
        await booted(cp)
        status = {"timestamp": wire_time(depot.clock(), offset_h=9), "connectorStatus": "Faulted", "evseId": 1,
                  "connectorId": 1}
        await ok(cp, "StatusNotification", status)
        await eventually(lambda: depot.hooks_for("cp-b", "fault") == ["opened"])
        await ok(cp, "StatusNotification", status | {"connectorStatus": "Occupied"})
        await eventually(lambda: depot.hooks_for("cp-b", "fault") == ["opened", "resolved"])
        await depot.settle_hooks()
        assert depot.hooks_for("cp-b", "fault") == ["opened", "resolved"]


# ------------------------------------------------------------------------------ offline

async def test_offline_blip_shorter_than_the_debounce_sends_nothing(depot: Site) -> None:
    async with outsider(depot.url, "cp-b", PASSWORD_B, "2.0.1") as cp:
        await booted(cp)
    await eventually(lambda: not depot.controller.live.chargers["cp-b"].connected)
    depot.clock.advance(OFFLINE_DEBOUNCE_S / 2)
    depot.controller.monitor.evaluate(depot.clock())
    # It comes back without a BootNotification, as a reconnecting station should (OCPP-J §5.3).
    async with outsider(depot.url, "cp-b", PASSWORD_B, "2.0.1") as cp:
        await ok(cp, "Heartbeat", {})
        depot.clock.advance(OFFLINE_DEBOUNCE_S * 3)
        await ok(cp, "Heartbeat", {})
        await depot.settle_hooks()
        assert depot.hooks_for("cp-b", "offline") == []
        assert [i for i in await depot.incidents("?charger=cp-b") if i["kind"] == "offline"] == []
        assert await depot.metric("depotctl_incidents_total", kind="offline") == 0.0
        assert await depot.metric("depotctl_charger_up", charger="cp-b") == 1.0

    async def history() -> list[str]:
        kinds = [e["type"] for e in await depot.events("cp-b")]
        return kinds if kinds.count("connected") == 2 and kinds.count("disconnected") == 2 else []

    await eventually(history)  # the blip is in the raw history


async def test_offline_past_the_debounce_opens_once_and_resolves_once_on_reconnect(depot: Site) -> None:
    async with outsider(depot.url, "cp-a", PASSWORD_A, "1.6") as cp:
        await booted(cp)
    await eventually(lambda: not depot.controller.live.chargers["cp-a"].connected)
    went = depot.clock()
    depot.clock.advance(OFFLINE_DEBOUNCE_S - 1)
    depot.controller.monitor.evaluate(depot.clock())
    await depot.settle_hooks()
    assert depot.hooks_for("cp-a", "offline") == []
    depot.clock.advance(2)
    depot.controller.monitor.evaluate(depot.clock())
    await eventually(lambda: depot.hooks_for("cp-a", "offline") == ["opened"])
    [incident] = [i for i in await depot.incidents("?open=true&charger=cp-a") if i["kind"] == "offline"]
    assert utc(incident["opened_at"]) == went and incident["severity"] == "critical"
    assert await depot.metric("depotctl_charger_up", charger="cp-a") == 0.0
    station = Station(connector_status={1: "Available", 2: "Available"})
    async with outsider(depot.url, "cp-a", PASSWORD_A, "1.6", station) as cp:
        await ok(cp, "Heartbeat", {})
        await eventually(lambda: depot.hooks_for("cp-a", "offline") == ["opened", "resolved"])
        # 1.6: after a reconnect the CSMS asks for the statuses again (issue #12 item 5)
        await eventually(lambda: any(a == "TriggerMessage" and p.get("requestedMessage") == "StatusNotification"
                                     for a, p in cp.received))
        depot.clock.advance(OFFLINE_DEBOUNCE_S * 3)
        await ok(cp, "Heartbeat", {})
        await depot.settle_hooks()
    assert depot.hooks_for("cp-a", "offline") == ["opened", "resolved"]
    [kept] = [i for i in await depot.incidents("?charger=cp-a") if i["kind"] == "offline"]
    assert kept["id"] == incident["id"] and kept["resolved_at"] is not None


# ------------------------------------------------------------------------------ meter integrity

def register_kwh(value: str, at: datetime, *, power_w: str = "11000") -> dict[str, Any]:
    """A 1.6 meterValue as a three-phase AC wallbox sends it: the register in kWh, total power in W, and
    per-phase currents and voltages (phase-less values are totals)."""
    sampled = [{"value": value, "measurand": "Energy.Active.Import.Register", "unit": "kWh",
                "context": "Sample.Periodic", "location": "Outlet"},
               {"value": power_w, "measurand": "Power.Active.Import", "unit": "W"}]
    for phase in ("L1", "L2", "L3"):
        sampled.append({"value": "15.9", "measurand": "Current.Import", "unit": "A", "phase": phase})
        sampled.append({"value": "230.1", "measurand": "Voltage", "unit": "V", "phase": f"{phase}-N"})
    return {"timestamp": wire_time(at, offset_h=1), "sampledValue": sampled}


# (name, registers in kWh one minute apart after 12.000, expected code)
ANOMALIES = [
    ("backwards", ["12.183", "7.5"], "register_backwards"),
    ("reset", ["12.183", "0.012"], "register_reset"),
    ("impossible_jump", ["12.183", "95.0"], "impossible_jump"),
]


async def start_16_transaction(depot: Site, cp: OutsiderCharger) -> int:
    await ok(cp, "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Preparing"})
    started = await ok(cp, "StartTransaction", {"connectorId": 1, "idTag": "TAG1", "meterStart": 12000,
                                                "timestamp": wire_time(depot.clock(), offset_h=1)})
    await ok(cp, "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Charging"})
    tx = started["transactionId"]
    assert isinstance(tx, int)
    return tx


def session_energy_kwh(depot: Site) -> float | None:
    session = depot.controller.live.chargers["cp-a"].connectors[1].session
    return None if session is None else session.energy_now_kwh


async def anomaly_incidents(depot: Site) -> list[dict[str, Any]]:
    return [i for i in await depot.incidents("?charger=cp-a") if i["kind"] == "meter_anomaly"]


@pytest.mark.parametrize(("case", "registers", "code"), ANOMALIES, ids=[a[0] for a in ANOMALIES])
async def test_16_register_anomaly_is_flagged_kept_raw_and_kept_from_the_plan(
        depot: Site, case: str, registers: list[str], code: str) -> None:
    async with outsider(depot.url, "cp-a", PASSWORD_A, "1.6") as cp:
        await booted(cp)
        tx = await start_16_transaction(depot, cp)
        believed = None
        for value in ["12.000", *registers]:
            depot.clock.advance(60)
            await ok(cp, "MeterValues", {"connectorId": 1, "transactionId": tx,
                                         "meterValue": [register_kwh(value, depot.clock())]})
            if value == registers[0]:
                believed = session_energy_kwh(depot)
        assert believed is not None and believed == pytest.approx(12.183)
        assert session_energy_kwh(depot) == believed  # never reaches SoC estimation or the LP
        # the same bad value again: the same incident, counted
        depot.clock.advance(60)
        await ok(cp, "MeterValues", {"connectorId": 1, "transactionId": tx,
                                     "meterValue": [register_kwh(registers[-1], depot.clock())]})
        [incident] = await anomaly_incidents(depot)
        assert (incident["code"], incident["connector"], incident["source"], incident["resolved_at"]) == (
            code, 1, "meter", None)
        await eventually(lambda: depot.hooks_for("cp-a", "meter_anomaly") == ["opened"])

        async def flagged() -> list[dict[str, Any]]:
            return [e for e in await depot.events("cp-a") if e["type"] == "meter_anomaly"]

        rows = await eventually(flagged)
        assert rows[0]["code"] == code and rows[0]["details"]["value"] == pytest.approx(float(registers[-1]))
        # the register is believed again once it is consistent with what was believed
        depot.clock.advance(60)
        await ok(cp, "MeterValues", {"connectorId": 1, "transactionId": tx,
                                     "meterValue": [register_kwh("12.366", depot.clock())]})
        assert session_energy_kwh(depot) == pytest.approx(12.366)
        await eventually(lambda: depot.hooks_for("cp-a", "meter_anomaly") == ["opened", "resolved"])
        await depot.settle_hooks()
        assert depot.hooks_for("cp-a", "meter_anomaly") == ["opened", "resolved"]
        assert len(await anomaly_incidents(depot)) == 1


async def test_16_frozen_register_while_drawing_is_one_incident(depot: Site) -> None:
    async with outsider(depot.url, "cp-a", PASSWORD_A, "1.6") as cp:
        await booted(cp)
        tx = await start_16_transaction(depot, cp)
        for _ in range(8):  # 7 minutes at 11 kW with a register that does not move
            depot.clock.advance(60)
            await ok(cp, "MeterValues", {"connectorId": 1, "transactionId": tx,
                                         "meterValue": [register_kwh("12.000", depot.clock())]})
        [incident] = await anomaly_incidents(depot)
        assert (incident["code"], incident["connector"]) == ("frozen", 1)
        assert incident["occurrences"] >= 2
        depot.clock.advance(60)
        await ok(cp, "MeterValues", {"connectorId": 1, "transactionId": tx,
                                     "meterValue": [register_kwh("12.183", depot.clock())]})
        await eventually(lambda: depot.hooks_for("cp-a", "meter_anomaly") == ["opened", "resolved"])
        await depot.settle_hooks()
        assert depot.hooks_for("cp-a", "meter_anomaly") == ["opened", "resolved"]


async def test_16_out_of_range_power_is_flagged_and_never_believed(depot: Site) -> None:
    async with outsider(depot.url, "cp-a", PASSWORD_A, "1.6") as cp:
        await booted(cp)
        tx = await start_16_transaction(depot, cp)
        depot.clock.advance(60)
        await ok(cp, "MeterValues", {"connectorId": 1, "transactionId": tx,
                                     "meterValue": [register_kwh("12.000", depot.clock(), power_w="7200")]})
        for _ in range(2):
            depot.clock.advance(60)
            # 450 kW from an 11 kW wallbox: a unit mix-up in the firmware (kW reported as W × 1000 × ...)
            await ok(cp, "MeterValues", {"connectorId": 1, "transactionId": tx,
                                         "meterValue": [register_kwh("12.120", depot.clock(), power_w="450000")]})
        power = depot.controller.live.chargers["cp-a"].connectors[1].readings.power_kw
        assert power is not None and power.value == pytest.approx(7.2)
        [incident] = await anomaly_incidents(depot)
        assert (incident["code"], incident["occurrences"]) == ("out_of_range", 2)
        await eventually(lambda: depot.hooks_for("cp-a", "meter_anomaly") == ["opened"])


async def test_16_queued_samples_sent_after_a_reconnect_are_no_anomaly(depot: Site) -> None:
    """A 1.6 charger keeps transaction-related MeterValues while offline and sends them, with their old timestamps,
    after it reconnects; interleaved with live ones they are history, not a meter fault."""
    async with outsider(depot.url, "cp-a", PASSWORD_A, "1.6") as cp:
        await booted(cp)
        tx = await start_16_transaction(depot, cp)
        start = depot.clock()
        live = [("12.000", 0), ("12.550", 180)]  # (register, seconds after start)
        queued = [("12.183", 60), ("12.366", 120)]
        for value, after_s in [live[0], live[1], *queued]:
            depot.clock.now = start + timedelta(seconds=max(after_s, 180))
            await ok(cp, "MeterValues", {"connectorId": 1, "transactionId": tx,
                                         "meterValue": [register_kwh(value, start + timedelta(seconds=after_s))]})
        depot.clock.advance(60)
        await ok(cp, "MeterValues", {"connectorId": 1, "transactionId": tx,
                                     "meterValue": [register_kwh("12.733", depot.clock())]})
        assert session_energy_kwh(depot) == pytest.approx(12.733)
        assert await anomaly_incidents(depot) == []


# ------------------------------------------------------------------------------ security events

@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_security_event_opens_an_incident_and_a_webhook_once(depot: Site, version: str) -> None:
    identity, password = ("cp-a", PASSWORD_A) if version == "1.6" else ("cp-b", PASSWORD_B)
    async with outsider(depot.url, identity, password, version) as cp:
        await booted(cp)
        when = wire_time(depot.clock(), offset_h=2)
        event = {"type": "TamperDetectionActivated", "timestamp": when, "techInfo": "enclosure opened"}
        await ok(cp, "SecurityEventNotification", event)
        await ok(cp, "SecurityEventNotification", event)
        # optional techInfo left out; routine event
        await ok(cp, "SecurityEventNotification", {"type": "SettingSystemTime", "timestamp": when})
        await eventually(lambda: depot.hooks_for(identity, "security_event") == ["opened", "opened"])
        rows = [i for i in await depot.incidents(f"?open=true&charger={identity}") if i["kind"] == "security_event"]
        by_code = {i["code"]: i for i in rows}
        tamper = by_code["TamperDetectionActivated"]
        assert (tamper["severity"], tamper["info"], tamper["occurrences"], tamper["connector"]) == (
            "critical", "enclosure opened", 2, None)
        assert by_code["SettingSystemTime"]["severity"] == "info"
        await depot.settle_hooks()
        assert depot.hooks_for(identity, "security_event") == ["opened", "opened"]
        assert await depot.metric("depotctl_incidents_open", kind="security_event", severity="critical") == 1.0

        async def stored() -> list[dict[str, Any]]:
            rows = [e for e in await depot.events(identity) if e["type"] == "security_event"]
            return rows if len(rows) == 3 else []

        rows = await eventually(stored)
        assert all(utc(r["time"]) == utc(when) for r in rows)


async def test_firmware_and_log_status_failures_with_optional_fields_left_out(depot: Site) -> None:
    async with outsider(depot.url, "cp-b", PASSWORD_B, "2.0.1") as cp:
        await booted(cp)
        await ok(cp, "FirmwareStatusNotification", {"status": "Downloading"})
        await ok(cp, "FirmwareStatusNotification", {"status": "DownloadFailed", "requestId": 12})
        await ok(cp, "LogStatusNotification", {"status": "UploadFailure"})
        kinds = {(i["kind"], i["code"]) for i in await depot.incidents("?open=true&charger=cp-b")}
        assert kinds == {("firmware", "DownloadFailed"), ("diagnostics", "UploadFailure")}
        await ok(cp, "FirmwareStatusNotification", {"status": "Installed", "requestId": 13})
        await ok(cp, "LogStatusNotification", {"status": "Uploaded", "requestId": 14})
        assert await depot.incidents("?open=true&charger=cp-b") == []
    async with outsider(depot.url, "cp-a", PASSWORD_A, "1.6") as cp:
        await booted(cp)
        await ok(cp, "DiagnosticsStatusNotification", {"status": "UploadFailed"})
        await ok(cp, "LogStatusNotification", {"status": "BadMessage"})  # 1.6 security extension; no requestId
        [incident] = await depot.incidents("?open=true&charger=cp-a")
        assert (incident["kind"], incident["occurrences"]) == ("diagnostics", 2)


# ------------------------------------------------------------------------------ garbage on the wire

async def test_16_malformed_frames_get_the_spec_call_error_and_lose_nothing(depot: Site) -> None:
    async with outsider(depot.url, "cp-a", PASSWORD_A, "1.6") as cp:
        await booted(cp)
        await ok(cp, "StatusNotification", {"connectorId": 2, "errorCode": "ConnectorLockFailure",
                                            "status": "Faulted", "vendorErrorCode": "L-9"})
        [before] = await depot.incidents("?open=true&charger=cp-a")
        stored_before = await eventually(lambda: depot.events("cp-a"))
        cases: list[tuple[str | bytes, str, set[str]]] = [
            ("hello", "-1", {"FormationViolation", "ProtocolError", "GenericError"}),
            (b"\x00\x01", "-1", {"FormationViolation", "ProtocolError", "GenericError"}),
            ('[2,"m1","StatusNotification",{"connectorId":"1","errorCode":"NoError","status":"Available"}]', "m1",
             {"TypeConstraintViolation"}),
            ('[2,"m2","StatusNotification",{"connectorId":1,"status":"Available"}]', "m2",
             {"ProtocolError", "OccurenceConstraintViolation"}),
            ('[2,"m3","StatusNotification",{"connectorId":1,"errorCode":"Melted","status":"Available"}]', "m3",
             {"PropertyConstraintViolation", "FormationViolation"}),
            ('[2,"m4","SecurityEventNotification",{"type":"TamperDetectionActivated"}]', "m4",
             {"ProtocolError", "OccurenceConstraintViolation"}),
            ('[2,"m5","FooBar",{}]', "m5", {"NotImplemented"}),
            ('[2,"m6","Heartbeat",[]]', "m6", {"FormationViolation"}),
            ('[2,"m7","DiagnosticsStatusNotification",{"status":"Uploaded","extra":1}]', "m7",
             {"FormationViolation", "PropertyConstraintViolation"}),
        ]
        for frame, message_id, codes in cases:
            answer = await cp.send_raw(frame, message_id)
            assert answer.error_code in codes, (frame, answer)
            assert answer.error_code in CODES_16, (frame, answer)  # never a 2.0.1-only spelling on a 1.6 link
        # still connected and served; the open incident and the stored history are intact
        await ok(cp, "Heartbeat", {})
        assert await depot.incidents("?open=true&charger=cp-a") == [before]
        stored_after = await depot.events("cp-a")
        assert all(row in stored_after for row in stored_before)


async def test_201_malformed_frames_get_the_spec_call_error_and_lose_nothing(depot: Site) -> None:
    async with outsider(depot.url, "cp-b", PASSWORD_B, "2.0.1") as cp:
        await booted(cp)
        await ok(cp, "SecurityEventNotification", {"type": "InvalidFirmwareSignature",
                                                   "timestamp": wire_time(depot.clock())})
        [before] = await depot.incidents("?open=true&charger=cp-b")
        stored_before = await eventually(lambda: depot.events("cp-b"))
        cases: list[tuple[str | bytes, str, set[str]]] = [
            ("{not json", "-1", {"RpcFrameworkError"}),
            ('[7,"m1","Heartbeat",{}]', "m1", {"MessageTypeNotSupported"}),
            ('[2,"m2","NotifyEvent",{"generatedAt":"2026-12-07T06:00:00+01:00","seqNo":0,"eventData":[]}]', "m2",
             {"OccurrenceConstraintViolation", "FormatViolation"}),
            ('[2,"m3","NotifyEvent",{"generatedAt":"x","seqNo":"0","eventData":[{"eventId":1}]}]', "m3",
             {"TypeConstraintViolation", "FormatViolation", "OccurrenceConstraintViolation"}),
            ('[2,"m4","StatusNotification",{"timestamp":"2026-12-07T06:00:00Z","connectorStatus":"Broken",'
             '"evseId":1,"connectorId":1}]', "m4", {"FormatViolation", "PropertyConstraintViolation"}),
            ('[2,"m5","SecurityEventNotification",{"type":"Tamper"}]', "m5",
             {"OccurrenceConstraintViolation", "FormatViolation", "ProtocolError"}),
            ('[2,"m6","FooBar",{}]', "m6", {"NotImplemented"}),
            ('[2,"' + "x" * 37 + '","Heartbeat",{}]', "-1", {"RpcFrameworkError"}),
        ]
        for frame, message_id, codes in cases:
            answer = await cp.send_raw(frame, message_id)
            assert answer.error_code in codes, (frame, answer)
            assert answer.error_code in CODES_201, (frame, answer)
        await ok(cp, "Heartbeat", {})
        assert await depot.incidents("?open=true&charger=cp-b") == [before]
        stored_after = await depot.events("cp-b")
        assert all(row in stored_after for row in stored_before)


# ------------------------------------------------------------------------------ 2.0.1 device model

async def test_201_station_with_monitoring_gets_its_report_asked_and_monitors_set(depot: Site) -> None:
    async with outsider(depot.url, "cp-b", PASSWORD_B, "2.0.1") as cp:
        await booted(cp)
        await eventually(lambda: any(a == "SetVariableMonitoring" for a, _ in cp.received))
        [report] = [p for a, p in cp.received if a == "GetBaseReport"]
        assert report["reportBase"] == "FullInventory"
        [monitoring] = [p for a, p in cp.received if a == "SetVariableMonitoring"]
        watched = {(m["component"]["name"], m["variable"]["name"], m["type"]) for m in monitoring["setMonitoringData"]}
        assert watched == {("ChargingStation", "Problem", "Delta"), ("Connector", "Problem", "Delta")}
        # the monitor fires: the station reports the problem it now watches
        problem = {"eventId": 9, "timestamp": wire_time(depot.clock()), "trigger": "Delta", "actualValue": "true",
                   "eventNotificationType": "CustomMonitor", "variableMonitoringId": 2,
                   "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
                   "variable": {"name": "Problem"}}
        await ok(cp, "NotifyEvent", {"generatedAt": wire_time(depot.clock()), "seqNo": 0, "eventData": [problem]})
        await eventually(lambda: depot.hooks_for("cp-b", "fault") == ["opened"])


async def test_201_register_going_backwards_in_a_transaction_event_is_one_anomaly(depot: Site) -> None:
    """2.0.1 numbers with a unit of measure (kWh here, and Wh with a multiplier): the backwards value is flagged,
    kept out of the session, and resolved by the next believable one."""
    async with outsider(depot.url, "cp-b", PASSWORD_B, "2.0.1") as cp:
        await booted(cp)
        seq = iter(range(100))

        def event(kind: str, trigger: str, *values: dict[str, Any]) -> dict[str, Any]:
            depot.clock.advance(60)
            message: dict[str, Any] = {
                "eventType": kind, "timestamp": wire_time(depot.clock(), offset_h=1), "triggerReason": trigger,
                "seqNo": next(seq), "transactionInfo": {"transactionId": "OX-TX-7", "chargingState": "Charging"},
                "evse": {"id": 1, "connectorId": 1},
                "meterValue": [{"timestamp": wire_time(depot.clock(), offset_h=1), "sampledValue": list(values)}]}
            if kind == "Started":
                message["idToken"] = {"idToken": "TAG1", "type": "ISO14443"}
            return message

        def kwh(value: float) -> dict[str, Any]:
            return {"value": value, "measurand": "Energy.Active.Import.Register", "unitOfMeasure": {"unit": "kWh"}}

        await ok(cp, "TransactionEvent", event("Started", "CablePluggedIn", kwh(12.0)))
        await ok(cp, "TransactionEvent", event("Updated", "MeterValuePeriodic", kwh(12.183)))
        session = depot.controller.live.chargers["cp-b"].connectors[1].session
        assert session is not None and session.energy_now_kwh == pytest.approx(12.183)
        await ok(cp, "TransactionEvent", event("Updated", "MeterValuePeriodic", kwh(7.5)))
        assert session.energy_now_kwh == pytest.approx(12.183)
        [incident] = [i for i in await depot.incidents("?charger=cp-b") if i["kind"] == "meter_anomaly"]
        assert (incident["code"], incident["connector"]) == ("register_backwards", 1)
        in_wh = {"value": 12.366, "measurand": "Energy.Active.Import.Register",
                 "unitOfMeasure": {"unit": "Wh", "multiplier": 3}}
        await ok(cp, "TransactionEvent", event("Updated", "MeterValuePeriodic", in_wh))
        assert session.energy_now_kwh == pytest.approx(12.366)
        await eventually(lambda: depot.hooks_for("cp-b", "meter_anomaly") == ["opened", "resolved"])
