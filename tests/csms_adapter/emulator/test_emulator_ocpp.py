"""Emulated chargers over real websockets against a tiny CSMS built with the ocpp library."""

from __future__ import annotations

import asyncio
import contextlib
import json
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

from csms_adapter.emulator import EmulatorClock, Fleet, Quirks, start_fleet
from csms_adapter.emulator.clock import ocpp_time
from optimizer.domain import Site
from optimizer.site_loader import parse_site

SITE = """
site: {name: t, grid: {import_limit_kw: 100}}
chargers:
  - {id: cp16, connectors: 1, max_current_a: 32, max_power_kw: 22}
  - {id: cp201, connectors: 1, max_current_a: 32, max_power_kw: 22}
  - {id: cp16b, connectors: 2, max_current_a: 32, max_power_kw: 22}
fleet:
  defaults: {battery_kwh: 60, max_power_kw: 22, knee_soc: 1.0}
"""


def now_iso() -> str:
    return ocpp_time(datetime.now(UTC))


class Csms:
    """Records what the chargers send and keeps one ChargePoint per identity for calls."""

    def __init__(self) -> None:
        self.cps: dict[str, Any] = {}
        self.log: list[tuple[str, str, dict[str, Any]]] = []
        self.next_tx = 100
        self.connections: dict[str, int] = {}

    def of(self, identity: str, kind: str) -> list[dict[str, Any]]:
        return [payload for ident, k, payload in self.log if ident == identity and k == kind]

    async def handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        identity = urlsplit(ws.request.path).path.rsplit("/", 1)[-1]
        cls = Csms16 if ws.subprotocol == "ocpp1.6" else Csms201
        cp = cls(identity, ws, response_timeout=5)
        cp.csms = self
        self.cps[identity] = cp
        self.connections[identity] = self.connections.get(identity, 0) + 1
        with contextlib.suppress(ConnectionClosed):
            await cp.start()


class Csms16(Cp16):  # type: ignore[misc]
    csms: Csms

    @on(A16.boot_notification)
    def boot(self, **kw: Any) -> r16.BootNotification:
        self.csms.log.append((self.id, "boot", kw))
        return r16.BootNotification(current_time=now_iso(), interval=300, status="Accepted")

    @on(A16.heartbeat)
    def heartbeat(self, **kw: Any) -> r16.Heartbeat:
        return r16.Heartbeat(current_time=now_iso())

    @on(A16.status_notification)
    def status(self, **kw: Any) -> r16.StatusNotification:
        self.csms.log.append((self.id, "status", kw))
        return r16.StatusNotification()

    @on(A16.authorize)
    def authorize(self, **kw: Any) -> r16.Authorize:
        return r16.Authorize(id_tag_info={"status": "Accepted"})

    @on(A16.start_transaction)
    def start_tx(self, **kw: Any) -> r16.StartTransaction:
        self.csms.next_tx += 1
        self.csms.log.append((self.id, "start", {**kw, "transaction_id": self.csms.next_tx}))
        return r16.StartTransaction(transaction_id=self.csms.next_tx, id_tag_info={"status": "Accepted"})

    @on(A16.stop_transaction)
    def stop_tx(self, **kw: Any) -> r16.StopTransaction:
        self.csms.log.append((self.id, "stop", kw))
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
    def heartbeat(self, **kw: Any) -> r201.Heartbeat:
        return r201.Heartbeat(current_time=now_iso())

    @on(A201.status_notification)
    def status(self, **kw: Any) -> r201.StatusNotification:
        self.csms.log.append((self.id, "status", kw))
        return r201.StatusNotification()

    @on(A201.authorize)
    def authorize(self, **kw: Any) -> r201.Authorize:
        return r201.Authorize(id_token_info={"status": "Accepted"})

    @on(A201.transaction_event)
    def tx_event(self, **kw: Any) -> r201.TransactionEvent:
        self.csms.log.append((self.id, "tx:" + kw["event_type"], kw))
        return r201.TransactionEvent()

    @on(A201.meter_values)
    def meter(self, **kw: Any) -> r201.MeterValues:
        self.csms.log.append((self.id, "meter", kw))
        return r201.MeterValues()


@pytest.fixture
async def csms() -> AsyncIterator[tuple[Csms, str]]:
    server_state = Csms()
    async with serve(server_state.handler, "127.0.0.1", 0, subprotocols=["ocpp1.6", "ocpp2.0.1"]) as server:  # type: ignore[list-item]
        port = server.sockets[0].getsockname()[1]
        yield server_state, f"ws://127.0.0.1:{port}"


@pytest.fixture
def site() -> Site:
    return parse_site(SITE)


async def fleet_of(site: Site, url: str, ids: list[str], speed: float = 60.0, **kw: Any) -> Fleet:
    index = [c.id for c in site.chargers].index(ids[0])
    fleet = await start_fleet(site, url, len(ids), speed, offset=index, arrival_window_s=0.0, **kw)
    await fleet.wait_booted(5)
    await eventually(
        lambda: all(
            rt.tx is not None and c.pending_messages == 0 for c in fleet.chargers for rt in c.connectors.values()
        )
    )
    return fleet


def measurands(meter_value: list[dict[str, Any]]) -> set[str]:
    return {sv["measurand"] for mv in meter_value for sv in mv["sampled_value"]}


def tx_profile_16(tx_id: int, limit: float, *, unit: str = "A", duration: int | None = None, pid: int = 1) -> Any:
    schedule: dict[str, Any] = {
        "charging_rate_unit": unit,
        "start_schedule": now_iso(),
        "charging_schedule_period": [{"start_period": 0, "limit": limit}],
    }
    if duration is not None:
        schedule["duration"] = duration
    return {
        "charging_profile_id": pid,
        "stack_level": 1,
        "charging_profile_purpose": "TxProfile",
        "charging_profile_kind": "Absolute",
        "transaction_id": tx_id,
        "charging_schedule": schedule,
    }


def default_profile_16(limit: float, purpose: str = "TxDefaultProfile", pid: int = 50) -> Any:
    return {
        "charging_profile_id": pid,
        "stack_level": 0,
        "charging_profile_purpose": purpose,
        "charging_profile_kind": "Absolute",
        "charging_schedule": {
            "charging_rate_unit": "A",
            "start_schedule": "2020-01-01T00:00:00Z",
            "charging_schedule_period": [{"start_period": 0, "limit": limit}],
        },
    }


async def test_mixed_fleet_boots_starts_transactions_and_meters(csms: tuple[Csms, str], site: Site) -> None:
    server, url = csms
    fleet = await fleet_of(site, url, ["cp16", "cp201"])
    try:
        await eventually(lambda: bool(server.of("cp16", "meter")) and bool(server.of("cp201", "tx:Updated")))
        assert [c.version for c in fleet.chargers] == ["1.6", "2.0.1"]
        assert server.of("cp16", "boot") and server.of("cp201", "boot")
        start = server.of("cp16", "start")[0]
        assert start["id_tag"].startswith("EMU")
        meter = server.of("cp16", "meter")[-1]
        assert meter["transaction_id"] == start["transaction_id"]
        assert measurands(meter["meter_value"]) == {
            "Energy.Active.Import.Register",
            "Power.Active.Import",
            "Current.Import",
            "Current.Offered",
            "SoC",
        }
        phases = [sv.get("phase") for sv in meter["meter_value"][0]["sampled_value"] if sv["measurand"] == "Current.Import"]
        assert phases == ["L1", "L2", "L3"]
        started = server.of("cp201", "tx:Started")[0]
        assert started["id_token"]["id_token"].startswith("EMU")
        updated = server.of("cp201", "tx:Updated")[-1]
        assert updated["transaction_info"]["transaction_id"] == started["transaction_info"]["transaction_id"]
        assert "SoC" in measurands(updated["meter_value"])
        # no profile: each vehicle charges at the charger's hardware maximum
        assert fleet.site_power_kw() == pytest.approx(44.0, rel=0.01)
    finally:
        await fleet.stop()


async def test_tx_profile_is_obeyed_and_expiry_falls_back_to_default(csms: tuple[Csms, str], site: Site) -> None:
    server, url = csms
    fleet = await fleet_of(site, url, ["cp16"], speed=60.0)
    try:
        cp = server.cps["cp16"]
        tx_id = server.of("cp16", "start")[0]["transaction_id"]
        assert (await cp.call(c16.SetChargingProfile(0, default_profile_16(16.0)))).status == "Accepted"
        result = await cp.call(c16.SetChargingProfile(1, tx_profile_16(tx_id, 8.0, duration=120)))
        assert result.status == "Accepted"
        composite = await cp.call(c16.GetCompositeSchedule(connector_id=1, duration=600))
        limits = [float(p["limit"]) for p in composite.charging_schedule["charging_schedule_period"]]
        assert composite.status == "Accepted" and limits == [8.0, 16.0]
        await asyncio.sleep(0.8)  # 48 emulated seconds under the TxProfile
        view = fleet.connectors()[0]
        assert view.limit_a == 8.0 and view.power_kw == pytest.approx(8 * 230 * 3 / 1000, rel=1e-3)
        await eventually(lambda: fleet.connectors()[0].limit_a == 16.0, timeout_s=4)
        assert fleet.connectors()[0].power_kw <= 16 * 230 * 3 / 1000 + 1e-6
        assert fleet.chargers[0].connectors[1].plant.max_excess_kw <= 1e-9

        def offered() -> list[float]:
            return [
                float(sv["value"])
                for m in server.of("cp16", "meter")
                for sv in m["meter_value"][0]["sampled_value"]
                if sv["measurand"] == "Current.Offered"
            ]

        await eventually(lambda: offered()[-1] == 16.0)  # the charger reports the limit it applies
        assert 8.0 in offered()
    finally:
        await fleet.stop()


async def test_201_watt_profiles_station_max_and_composite(csms: tuple[Csms, str], site: Site) -> None:
    server, url = csms
    fleet = await fleet_of(site, url, ["cp201"])
    try:
        cp = server.cps["cp201"]
        tx_id = server.of("cp201", "tx:Started")[0]["transaction_info"]["transaction_id"]

        def prof(pid: int, purpose: str, watts: float, evse: int, **extra: Any) -> Any:
            return {
                "id": pid,
                "stack_level": 0 if purpose != "TxProfile" else 1,
                "charging_profile_purpose": purpose,
                "charging_profile_kind": "Absolute",
                "charging_schedule": [
                    {
                        "id": 1,
                        "charging_rate_unit": "W",
                        "start_schedule": now_iso(),
                        "charging_schedule_period": [{"start_period": 0, "limit": watts}],
                    }
                ],
                **extra,
            }

        ok = await cp.call(c201.SetChargingProfile(0, prof(1, "ChargingStationMaxProfile", 11000, 0)))
        assert ok.status == "Accepted"
        no_tx = await cp.call(c201.SetChargingProfile(1, prof(2, "TxProfile", 7000, 1)))
        assert no_tx.status == "Rejected"  # K01.FR.03: a TxProfile names its transaction
        ok = await cp.call(c201.SetChargingProfile(1, prof(2, "TxProfile", 7000, 1, transaction_id=tx_id)))
        assert ok.status == "Accepted"
        await asyncio.sleep(0.3)
        view = fleet.connectors()[0]
        assert view.power_kw <= 7.0 + 1e-6 and view.power_kw > 6.5
        composite = await cp.call(c201.GetCompositeSchedule(duration=300, evse_id=1, charging_rate_unit="W"))
        assert composite.status == "Accepted"
        assert composite.schedule["charging_schedule_period"][0]["limit"] == pytest.approx(7000, abs=1)
        cleared = await cp.call(c201.ClearChargingProfile(charging_profile_id=2))
        assert cleared.status == "Accepted"
        await asyncio.sleep(0.2)
        assert fleet.connectors()[0].limit_kw == pytest.approx(11.0, rel=1e-3)  # back to the station max
    finally:
        await fleet.stop()


async def test_station_max_is_shared_between_connectors(csms: tuple[Csms, str], site: Site) -> None:
    server, url = csms
    fleet = await fleet_of(site, url, ["cp16b"])
    try:
        cp = server.cps["cp16b"]
        assert (await cp.call(c16.SetChargingProfile(0, default_profile_16(20.0, "ChargePointMaxProfile")))).status == (
            "Accepted"
        )
        await asyncio.sleep(0.3)
        views = fleet.connectors()
        assert [v.limit_a for v in views] == [10.0, 10.0]
        assert sum(v.power_kw for v in views) <= 20 * 230 * 3 / 1000 + 1e-6
    finally:
        await fleet.stop()


async def test_quirks(csms: tuple[Csms, str], site: Site) -> None:
    server, url = csms
    quirks = {"cp16": Quirks.only_amps(), "cp201": Quirks.only_watts(), "cp16b": Quirks(rejects_tx_profile=True)}
    fleet = await fleet_of(site, url, ["cp16", "cp201", "cp16b"], quirks=quirks, versions=("1.6", "2.0.1", "1.6"))
    try:
        cp16, cp201, cp16b = (server.cps[i] for i in ("cp16", "cp201", "cp16b"))
        config = await cp16.call(c16.GetConfiguration(key=["ChargingScheduleAllowedChargingRateUnit"]))
        assert config.configuration_key[0]["value"] == "Current"
        tx16 = server.of("cp16", "start")[0]["transaction_id"]
        watts = await cp16.call(c16.SetChargingProfile(1, tx_profile_16(tx16, 7000.0, unit="W")))
        assert watts.status == "Rejected"
        amps = await cp16.call(c16.SetChargingProfile(1, tx_profile_16(tx16, 10.0)))
        assert amps.status == "Accepted"

        rate = await cp201.call(
            c201.GetVariables([{"component": {"name": "SmartChargingCtrlr"}, "variable": {"name": "RateUnit"}}])
        )
        assert rate.get_variable_result[0]["attribute_value"] == "W"
        tx201 = server.of("cp201", "tx:Started")[0]["transaction_info"]["transaction_id"]
        amps_201 = {
            "id": 9,
            "stack_level": 1,
            "charging_profile_purpose": "TxProfile",
            "charging_profile_kind": "Absolute",
            "transaction_id": tx201,
            "charging_schedule": [
                {
                    "id": 1,
                    "charging_rate_unit": "A",
                    "start_schedule": now_iso(),
                    "charging_schedule_period": [{"start_period": 0, "limit": 10}],
                }
            ],
        }
        assert (await cp201.call(c201.SetChargingProfile(1, amps_201))).status == "Rejected"

        tx16b = server.of("cp16b", "start")[0]["transaction_id"]
        assert (await cp16b.call(c16.SetChargingProfile(1, tx_profile_16(tx16b, 10.0)))).status == "Rejected"
        assert (await cp16b.call(c16.SetChargingProfile(0, default_profile_16(10.0)))).status == "Accepted"
    finally:
        await fleet.stop()


async def test_ignoring_silent_and_soc_less_chargers(csms: tuple[Csms, str], site: Site) -> None:
    server, url = csms
    quirks = {"cp16": Quirks(ignores_limit=True, reports_soc=False), "cp201": Quirks(silent=True)}
    fleet = await fleet_of(site, url, ["cp16", "cp201"], quirks=quirks)
    try:
        cp16 = server.cps["cp16"]
        tx16 = server.of("cp16", "start")[0]["transaction_id"]
        assert (await cp16.call(c16.SetChargingProfile(1, tx_profile_16(tx16, 8.0)))).status == "Accepted"
        await asyncio.sleep(0.3)
        view = fleet.connectors()[0]
        assert view.limit_a == 8.0 and view.power_kw == pytest.approx(22.0, rel=1e-3)  # draws its maximum
        await eventually(lambda: len(server.of("cp16", "meter")) >= 1)
        assert "SoC" not in measurands(server.of("cp16", "meter")[-1]["meter_value"])

        silent = server.cps["cp201"]
        silent._response_timeout = 0.5
        with pytest.raises(TimeoutError):
            await silent.call(c201.GetVariables([{"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "X"}}]))
        assert "GetVariables" in fleet.chargers[1].received_calls
        await eventually(lambda: len(server.of("cp201", "tx:Updated")) >= 1)  # it still reports
    finally:
        await fleet.stop()


async def test_configuration_variables_and_trigger(csms: tuple[Csms, str], site: Site) -> None:
    server, url = csms
    fleet = await fleet_of(site, url, ["cp16", "cp201"], speed=5.0)
    try:
        cp16, cp201 = server.cps["cp16"], server.cps["cp201"]
        bad = await cp16.call(c16.ChangeConfiguration(key="MeterValuesSampledData", value="SoC,Temperature"))
        assert bad.status == "Rejected"  # one unsupported measurand rejects the list (§3.16.4)
        good = await cp16.call(c16.ChangeConfiguration(key="MeterValuesSampledData", value="Power.Active.Import,SoC"))
        assert good.status == "Accepted"
        assert (await cp16.call(c16.ChangeConfiguration(key="MeterValueSampleInterval", value="30"))).status == (
            "Accepted"
        )
        assert (await cp16.call(c16.ChangeConfiguration(key="NoSuchKey", value="1"))).status == "NotSupported"
        assert fleet.chargers[0].meter_interval_s == 30.0
        before = len(server.of("cp16", "meter"))
        trigger = await cp16.call(c16.TriggerMessage(requested_message="MeterValues", connector_id=1))
        assert trigger.status == "Accepted"
        await eventually(lambda: len(server.of("cp16", "meter")) > before)
        triggered = server.of("cp16", "meter")[-1]["meter_value"]
        assert measurands(triggered) == {"Power.Active.Import", "SoC"}
        assert {sv["context"] for sv in triggered[0]["sampled_value"]} == {"Trigger"}

        result = await cp201.call(
            c201.SetVariables(
                [
                    {
                        "attribute_value": "15",
                        "component": {"name": "SampledDataCtrlr"},
                        "variable": {"name": "TxUpdatedInterval"},
                    },
                    {"attribute_value": "1", "component": {"name": "Nope"}, "variable": {"name": "X"}},
                    {"attribute_value": "A", "component": {"name": "SmartChargingCtrlr"}, "variable": {"name": "RateUnit"}},
                ]
            )
        )
        assert [r["attribute_status"] for r in result.set_variable_result] == ["Accepted", "UnknownComponent", "Rejected"]
        assert fleet.chargers[1].meter_interval_s == 15.0
        boot = await cp201.call(c201.TriggerMessage(requested_message="BootNotification"))
        assert boot.status == "Rejected"
    finally:
        await fleet.stop()


async def test_reconnect_does_not_boot_again_or_duplicate_transactions(csms: tuple[Csms, str], site: Site) -> None:
    server, url = csms
    fleet = await fleet_of(site, url, ["cp16", "cp201"])
    try:
        for charger in fleet.chargers:
            await charger.drop_connection()
        await eventually(lambda: server.connections == {"cp16": 2, "cp201": 2})
        await eventually(lambda: all(c.online.is_set() for c in fleet.chargers))
        meters = len(server.of("cp16", "meter"))
        await eventually(lambda: len(server.of("cp16", "meter")) > meters)
        assert [c.boot_count for c in fleet.chargers] == [1, 1]
        assert len(server.of("cp16", "boot")) == 1 and len(server.of("cp201", "boot")) == 1
        assert len(server.of("cp16", "start")) == 1 and len(server.of("cp201", "tx:Started")) == 1
        await fleet.charger("cp16").unplug(1)
        await eventually(lambda: len(server.of("cp16", "stop")) == 1)
        stop = server.of("cp16", "stop")[0]
        assert stop["transaction_id"] == server.of("cp16", "start")[0]["transaction_id"]
        assert stop["meter_stop"] >= server.of("cp16", "start")[0]["meter_start"]
    finally:
        await fleet.stop()


async def test_accelerated_clock_simulates_an_hour_in_a_second(csms: tuple[Csms, str], site: Site) -> None:
    _, url = csms
    clock = EmulatorClock(speed=3600.0)
    fleet = await start_fleet(site, url, 1, clock=clock, arrival_window_s=0.0, meter_interval_s=60.0)
    try:
        await fleet.wait_booted(5)
        await eventually(lambda: fleet.connectors()[0].plugged)
        started = clock.now()
        energy0 = fleet.connectors()[0].energy_kwh
        await asyncio.sleep(1.0)
        hours = (clock.now() - started).total_seconds() / 3600
        assert 0.9 < hours < 2.0
        delivered = fleet.connectors()[0].energy_kwh - energy0
        assert delivered == pytest.approx(22.0 * hours, rel=0.1)  # 22 kW for the emulated time
    finally:
        await fleet.stop()


@pytest.mark.parametrize("validate", [True, False])
async def test_schema_checks_are_on_unless_a_load_run_turns_them_off(csms: tuple[Csms, str], site: Site,
                                                                      validate: bool) -> None:
    # By default an emulated charger refuses a CALL outside the OCPP schema, as a strict charger would (the
    # conformance tests rely on it); ``validate_schemas=False`` (load runs, ``--no-schema-validation``) lets the
    # same CALL through to its handler, so only CPU the controller never sees is saved.
    server, url = csms
    fleet = await fleet_of(site, url, ["cp16"], validate_schemas=validate)
    try:
        cp = server.cps["cp16"]
        frame = [2, "bad-1", "SetChargingProfile",
                 {"connectorId": 0, "csChargingProfiles": {
                     "chargingProfileId": 60, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
                     "chargingProfileKind": "Absolute", "unknownField": True,
                     "chargingSchedule": {"chargingRateUnit": "A", "startSchedule": "2020-01-01T00:00:00Z",
                                          "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}]}}}]
        async with cp._call_lock:
            await cp._send(json.dumps(frame))
            answer = await asyncio.wait_for(cp._response_queue.get(), 5)
        assert answer.unique_id == "bad-1"
        if validate:
            assert answer.message_type_id == 4 and answer.error_code in ("FormationViolation", "FormatViolation")
        else:
            assert answer.message_type_id == 3 and answer.payload == {"status": "Accepted"}
    finally:
        await fleet.stop()
