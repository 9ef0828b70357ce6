"""OCPP conformance: every station-initiated message depotctl owns gets the answer the specification asks for
(docs/ocpp-conformance.md), sent by clients built on the ``ocpp`` library over real websockets on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fake_chargers import Charger16, Charger201, Recorder, charger, now_iso
from live_site import ENV, PASSWORD_A, PASSWORD_B, make_site
from ocpp.exceptions import FormatViolationError, OCPPError
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from polling import eventually

from csms_adapter.control.controller import Controller
from csms_adapter.protocol.conformance16 import Conformance16
from csms_adapter.protocol.conformance201 import Conformance201
from csms_adapter.protocol.link import LinkContext, Supervisor
from csms_adapter.protocol.ocpp16 import Ocpp16Link
from csms_adapter.protocol.ocpp201 import Ocpp201Link
from optimizer.domain import LimitSource


@pytest.fixture
async def controller() -> AsyncIterator[Controller]:
    async with Controller(make_site(), env=ENV, debounce_real_s=0.05) as c:
        # The charger a test does not connect took its fail-safe share on an earlier connection: budgeted at that
        # share, not at the maximum a charger that never took one may draw on its own defaults.
        for charger in c.site.chargers:
            c.live.charger(charger.id).failsafe_accepted = True
        yield c


async def test_the_mixin_handlers_are_routed() -> None:  # a link is made inside an event loop
    # The library builds its routes from the @on methods it finds on the instance, base classes included.
    ctx = LinkContext("cp-x", lambda _e: None, lambda: datetime.now(UTC), Supervisor("test"), call_timeout_s=2,
                      heartbeat_s=300, next_transaction_id=lambda: 1)
    for link, mixin in ((Ocpp16Link, Conformance16), (Ocpp201Link, Conformance201)):
        assert issubclass(link, mixin)
        mine = {getattr(getattr(mixin, name), "_on_action", None) for name in dir(mixin)} - {None}
        routed = {action for action, hooks in link(ctx, object()).route_map.items() if "_on_action" in hooks}
        assert mine and mine <= routed, (link, mine - routed)


SCHEDULE_W = {"id": 1, "charging_rate_unit": "W", "charging_schedule_period": [{"start_period": 0, "limit": 5000.0}]}

ANSWERS_201: list[tuple[Any, dict[str, Any]]] = [
    (call201.DataTransfer(vendor_id="com.example", message_id="x"), {"status": "UnknownVendorId"}),
    (call201.NotifyChargingLimit(charging_limit={"charging_limit_source": "EMS"}), {}),
    (call201.ClearedChargingLimit(charging_limit_source="EMS"), {}),
    (call201.ReportChargingProfiles(request_id=1, charging_limit_source="CSO", evse_id=0, charging_profile=[{
        "id": 9, "stack_level": 0, "charging_profile_purpose": "TxDefaultProfile", "charging_profile_kind": "Absolute",
        "charging_schedule": [{**SCHEDULE_W, "start_schedule": "2026-01-01T00:00:00Z"}]}]), {}),
    (call201.NotifyReport(request_id=1, generated_at="2026-01-01T00:00:00Z", seq_no=0), {}),
    (call201.NotifyMonitoringReport(request_id=1, seq_no=0, generated_at="2026-01-01T00:00:00Z"), {}),
    (call201.NotifyCustomerInformation(data="none", seq_no=0, generated_at="2026-01-01T00:00:00Z", request_id=1), {}),
    (call201.NotifyDisplayMessages(request_id=1), {}),
    (call201.PublishFirmwareStatusNotification(status="Published", location=["https://x"], request_id=1), {}),
    (call201.ReservationStatusUpdate(reservation_id=1, reservation_update_status="Expired"), {}),
    (call201.SignCertificate(csr="-----BEGIN CERTIFICATE REQUEST-----"), {"status": "Rejected"}),
    (call201.Get15118EVCertificate(iso15118_schema_version="urn:iso:15118:2:2013:MsgDef", action="Install",
                                   exi_request="AAAA"), {"status": "Failed"}),
    (call201.GetCertificateStatus(ocsp_request_data={
        "hash_algorithm": "SHA256", "issuer_name_hash": "a", "issuer_key_hash": "b", "serial_number": "1",
        "responder_url": "http://ocsp"}), {"status": "Failed"}),
]


async def test_every_owned_201_message_gets_its_answer(controller: Controller) -> None:
    async with charger(controller.url, "cp-b", PASSWORD_B, "2.0.1") as cp:
        assert isinstance(cp, Charger201)
        await cp.boot()
        for request, expected in ANSWERS_201:
            # suppress=False: a CallError (NotSupported, NotImplemented, …) raises, and the response is
            # schema-checked by the library on the way in.
            result = await cp.call(request, suppress=False)
            for key, value in expected.items():
                assert getattr(result, key) == value, type(request).__name__


async def test_owned_16_messages_get_their_answer(controller: Controller) -> None:
    async with charger(controller.url, "cp-a", PASSWORD_A, "1.6") as cp:
        assert isinstance(cp, Charger16)
        await cp.boot()
        result = await cp.call(call16.DataTransfer(vendor_id="com.example", message_id="m", data="d"), suppress=False)
        assert result.status == "UnknownVendorId"
        result = await cp.call(call16.SignCertificate(csr="-----BEGIN CERTIFICATE REQUEST-----"), suppress=False)
        assert result.status == "Rejected"


async def test_garbage_gets_a_call_error_and_the_link_lives(controller: Controller) -> None:
    async with charger(controller.url, "cp-b", PASSWORD_B, "2.0.1") as cp:
        assert isinstance(cp, Charger201)
        await cp.boot()
        bad_source = call201.NotifyChargingLimit(charging_limit={"charging_limit_source": "Moon"})
        with pytest.raises(FormatViolationError):
            await cp.call(bad_source, suppress=False)
        with pytest.raises(OCPPError):
            await cp.call(call201.DataTransfer(vendor_id="x" * 300), suppress=False)
        # Periods out of order: answered Rejected (K15), never an error, and nothing is planned from it.
        bad = {"id": 1, "charging_rate_unit": "W", "charging_schedule_period": [
            {"start_period": 60, "limit": 1000.0}, {"start_period": 0, "limit": 2000.0}]}
        result = await cp.call(call201.NotifyEVChargingSchedule(time_base=now_iso(), evse_id=1, charging_schedule=bad),
                               suppress=False)
        assert result.status == "Rejected"
        result = await cp.call(call201.NotifyEVChargingSchedule(time_base="not a time", evse_id=1, charging_schedule={
            **SCHEDULE_W, "charging_rate_unit": "W"}), suppress=False)
        assert result.status == "Accepted"  # no TxProfile sent yet: nothing to exceed; a bad time base is "now"
        assert (await cp.call(call201.Heartbeat(), suppress=False)).current_time


async def _session_201(controller: Controller, cp: Charger201, rec: Recorder, tx: str) -> None:
    await cp.boot()
    await rec.wait_for(lambda: bool(rec.of("SetVariables")))
    await cp.status(1, "Occupied")
    await cp.tx_event("Started", tx, 1, [{"value": 0.0, "measurand": "Energy.Active.Import.Register"}],
                      trigger="CablePluggedIn", id_token="TAG1")
    await rec.wait_for(lambda: bool(rec.tx_profiles()))


async def test_an_external_limit_is_planned_under_until_cleared(controller: Controller) -> None:
    rec = Recorder()
    async with charger(controller.url, "cp-b", PASSWORD_B, "2.0.1", rec) as cp:
        assert isinstance(cp, Charger201)
        await _session_201(controller, cp, rec, "tx-lim")
        first = rec.tx_profiles()[-1]["charging_schedule"][0]["charging_schedule_period"][0]["limit"]
        # The plan before the limit: above the limit's 4.14 kW (a W-limited charger, vehicle phases unknown, is
        # planned on its worst phase: 20 A of the 40 A main beside cp-b's share, docs/safety-phases.md).
        assert first > 4140.0
        await cp.call(call201.NotifyChargingLimit(
            charging_limit={"charging_limit_source": "SO", "is_grid_critical": True}, evse_id=1,
            charging_schedule=[{"id": 1, "charging_rate_unit": "A", "charging_schedule_period": [
                {"start_period": 0, "limit": 6.0, "number_phases": 3}]}]), suppress=False)
        # 6 A × 230 V × 3 phases = 4.14 kW: the next TxProfile stays under it.
        await rec.wait_for(lambda: rec.tx_profiles()[-1]["charging_schedule"][0]["charging_schedule_period"][0]
                           ["limit"] <= 4140.0)
        limits = controller.live.snapshot(controller.clock()).external_limits
        assert [(lim.charger_id, lim.connector_id, lim.source) for lim in limits] == [("cp-b", 1, LimitSource.SO)]
        assert limits[0].limit_kw == pytest.approx(4.14)
        await cp.call(call201.ClearedChargingLimit(charging_limit_source="SO", evse_id=1), suppress=False)
        assert controller.live.snapshot(controller.clock()).external_limits == ()
        await rec.wait_for(lambda: rec.tx_profiles()[-1]["charging_schedule"][0]["charging_schedule_period"][0]
                           ["limit"] > 4140.0)


async def test_an_ev_schedule_is_checked_against_the_tx_profile_sent(controller: Controller) -> None:
    rec = Recorder()
    async with charger(controller.url, "cp-b", PASSWORD_B, "2.0.1", rec) as cp:
        assert isinstance(cp, Charger201)
        await _session_201(controller, cp, rec, "tx-ev")
        link = controller.server.links["cp-b"]
        assert isinstance(link, Ocpp201Link)
        await eventually(lambda: 1 in link._tx_offered)  # the accepted answer reached the link
        offered_w = rec.tx_profiles()[-1]["charging_schedule"][0]["charging_schedule_period"][0]["limit"]
        above = {"id": 2, "charging_rate_unit": "W", "charging_schedule_period": [
            {"start_period": 0, "limit": offered_w}, {"start_period": 600, "limit": offered_w + 1000.0}]}
        result = await cp.call(call201.NotifyEVChargingSchedule(time_base=now_iso(), evse_id=1,
                                                                charging_schedule=above), suppress=False)
        assert result.status == "Rejected"
        assert not controller.live.snapshot(controller.clock()).external_limits
        # Within the offer and asking for less in its first period: Accepted, and the plan follows the vehicle.
        within = {"id": 3, "charging_rate_unit": "W", "charging_schedule_period": [
            {"start_period": 0, "limit": 3000.0}, {"start_period": 3600, "limit": offered_w}]}
        result = await cp.call(call201.NotifyEVChargingSchedule(time_base=now_iso(), evse_id=1,
                                                                charging_schedule=within), suppress=False)
        assert result.status == "Accepted"
        limits = controller.live.snapshot(controller.clock()).external_limits
        assert [(lim.source, lim.limit_kw) for lim in limits] == [(LimitSource.EV, 3.0)]
        await rec.wait_for(lambda: rec.tx_profiles()[-1]["charging_schedule"][0]["charging_schedule_period"][0]
                           ["limit"] <= 3000.0)


ROSTER_YAML_VEHICLES = """    - {id: van-2, id_tags: ["TAG2"], blocked: true}
    - {id: van-3, id_tags: ["TAG3"], valid_until: "2020-01-01T00:00:00Z"}
    - {id: van-4, id_tags: ["TAG4"], valid_until: "2099-01-01T00:00:00Z"}
"""


def roster_site() -> Any:
    from live_site import SITE_YAML

    from optimizer.site_loader import parse_site

    text = SITE_YAML.replace('max_power_kw: 11}}\n', 'max_power_kw: 11}}\n' + ROSTER_YAML_VEHICLES, 1)
    text = text.replace('max_power_kw: 11}\ncontrol', 'max_power_kw: 11}\n' + ROSTER_YAML_VEHICLES + 'control', 1)
    return parse_site(text + "  authorize: roster\n", "roster-site.yaml")


EXPECTED = {"TAG1": "Accepted", "tag1": "Accepted", "NOPE": "Invalid", "TAG2": "Blocked", "TAG3": "Expired",
            "TAG4": "Accepted"}


async def test_roster_authorization_is_consistent_across_versions_and_messages() -> None:
    site = roster_site()
    assert site.ocpp.authorize == "roster" and len(site.vehicles) == 4
    async with (Controller(site, env=ENV, debounce_real_s=0.05) as c,
                charger(c.url, "cp-b", PASSWORD_B, "2.0.1") as cp201, charger(c.url, "cp-a", PASSWORD_A, "1.6") as cp16):
        assert isinstance(cp201, Charger201) and isinstance(cp16, Charger16)
        await cp201.boot()
        await cp16.boot()
        for token, status in EXPECTED.items():
            answer = await cp201.call(call201.Authorize(id_token={"id_token": token, "type": "ISO14443"}),
                                      suppress=False)
            assert answer.id_token_info["status"] == status, token
            answer16 = await cp16.call(call16.Authorize(id_tag=token), suppress=False)
            assert answer16.id_tag_info["status"] == status, token
        expiring = await cp16.call(call16.Authorize(id_tag="TAG4"), suppress=False)
        assert expiring.id_tag_info["expiry_date"].startswith("2099-01-01")
        started = await cp16.call(call16.StartTransaction(connector_id=1, id_tag="NOPE", meter_start=0,
                                                          timestamp=now_iso()), suppress=False)
        assert started.id_tag_info["status"] == "Invalid" and started.transaction_id > 0
        event = await cp201.call(call201.TransactionEvent(
            event_type="Started", timestamp=now_iso(), trigger_reason="Authorized", seq_no=1,
            transaction_info={"transaction_id": "tx-r"}, evse={"id": 1, "connector_id": 1},
            id_token={"id_token": "TAG2", "type": "ISO14443"}), suppress=False)
        assert event.id_token_info["status"] == "Blocked"
        # Both refused sessions charge anyway: they are planned nothing.
        await eventually(lambda: c.last_tick is not None and c.last_tick.plan is not None
                         and len(c.last_tick.plan.connectors) == 2)
        assert c.last_tick is not None and c.last_tick.plan is not None
        assert [p.limit_kw for p in c.last_tick.plan.connectors] == [0.0, 0.0]


async def test_any_accepts_every_token_by_default(controller: Controller) -> None:
    assert controller.site.ocpp.authorize == "any"
    async with charger(controller.url, "cp-a", PASSWORD_A, "1.6") as cp:
        await cp.boot()
        answer = await cp.call(call16.Authorize(id_tag="WHOEVER"), suppress=False)
        assert answer.id_tag_info == {"status": "Accepted"}


def test_roster_fields_reject_garbage() -> None:
    from live_site import SITE_YAML

    from optimizer.errors import ConfigError
    from optimizer.site_loader import parse_site

    for bad, key in (("  authorize: everyone\n", "ocpp.authorize"),):
        with pytest.raises(ConfigError) as caught:
            parse_site(SITE_YAML + bad, "bad.yaml")
        assert key in str(caught.value)
    for vehicle, key in (('{id: v, id_tags: ["T"], blocked: maybe}', "blocked"),
                         ('{id: v, id_tags: ["T"], valid_until: "2030-01-01T00:00:00"}', "valid_until"),
                         ('{id: v, id_tags: ["T"], valid_until: "soon"}', "valid_until")):
        text = SITE_YAML.replace("  vehicles:\n", f"  vehicles:\n    - {vehicle}\n", 1)
        with pytest.raises(ConfigError) as caught:
            parse_site(text, "bad.yaml")
        assert key in str(caught.value)


def test_expiry_is_judged_at_the_time_asked() -> None:
    from csms_adapter.protocol.authorization import TokenStatus, decide

    site = roster_site()
    assert decide(site, "TAG4", datetime(2098, 12, 31, tzinfo=UTC)).status is TokenStatus.ACCEPTED
    assert decide(site, "TAG4", datetime(2099, 1, 1, tzinfo=UTC) + timedelta(seconds=1)).status is TokenStatus.EXPIRED
    assert decide(site, "", datetime(2026, 1, 1, tzinfo=UTC)).status is TokenStatus.INVALID


def _every_201_message() -> list[Any]:
    """Every other station-initiated 2.0.1 request depotctl answers itself, with minimal valid payloads."""
    ts = now_iso()
    return [
        call201.Heartbeat(),
        call201.StatusNotification(timestamp=ts, connector_status="Occupied", evse_id=1, connector_id=1),
        call201.Authorize(id_token={"id_token": "TAG1", "type": "ISO14443"}),
        call201.TransactionEvent(event_type="Started", timestamp=ts, trigger_reason="CablePluggedIn", seq_no=0,
                                 transaction_info={"transaction_id": "tx-all"}, evse={"id": 1, "connector_id": 1}),
        call201.MeterValues(evse_id=1, meter_value=[{"timestamp": ts, "sampled_value": [{"value": 1.0}]}]),
        call201.NotifyEVChargingNeeds(evse_id=1, charging_needs={
            "requested_energy_transfer": "AC_three_phase",
            "ac_charging_parameters": {"energy_amount": 20000, "ev_min_current": 6, "ev_max_current": 16,
                                       "ev_max_voltage": 400}}),
        call201.TransactionEvent(event_type="Ended", timestamp=ts, trigger_reason="EVDeparted", seq_no=1,
                                 transaction_info={"transaction_id": "tx-all", "stopped_reason": "EVDisconnected"}),
    ]


async def test_every_201_message_depotctl_answers_itself_gets_a_valid_answer(controller: Controller) -> None:
    async with charger(controller.url, "cp-b", PASSWORD_B, "2.0.1") as cp:
        assert isinstance(cp, Charger201)
        assert (await cp.boot()).status == "Accepted"
        for request in _every_201_message():
            result = await cp.call(request, suppress=False)  # raises on any CallError; the answer is schema-checked
            assert result is not None, type(request).__name__
        needs = await cp.call(_every_201_message()[5], suppress=False)
        assert needs.status == "Accepted"


async def test_every_16_message_depotctl_answers_itself_gets_a_valid_answer(controller: Controller) -> None:
    async with charger(controller.url, "cp-a", PASSWORD_A, "1.6") as cp:
        assert isinstance(cp, Charger16)
        assert (await cp.boot()).status == "Accepted"
        assert (await cp.call(call16.Heartbeat(), suppress=False)).current_time
        await cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Preparing",
                                                timestamp=now_iso()), suppress=False)
        started = await cp.call(call16.StartTransaction(connector_id=1, id_tag="TAG1", meter_start=0,
                                                        timestamp=now_iso()), suppress=False)
        assert started.id_tag_info["status"] == "Accepted"
        await cp.call(call16.MeterValues(connector_id=1, transaction_id=started.transaction_id, meter_value=[
            {"timestamp": now_iso(), "sampled_value": [{"value": "10"}]}]), suppress=False)
        stopped = await cp.call(call16.StopTransaction(meter_stop=10, timestamp=now_iso(), id_tag="TAG1",
                                                       transaction_id=started.transaction_id), suppress=False)
        assert stopped.id_tag_info == {"status": "Accepted"}
        untagged = await cp.call(call16.StopTransaction(meter_stop=10, timestamp=now_iso(), transaction_id=99),
                                 suppress=False)
        assert untagged.id_tag_info is None  # optional: only for a stop that names a tag


MONITORING_201 = [
    call201.NotifyEvent(generated_at="2026-01-01T00:00:00Z", seq_no=0, event_data=[{
        "event_id": 1, "timestamp": "2026-01-01T00:00:00Z", "trigger": "Alerting", "actual_value": "true",
        "event_notification_type": "HardWiredNotification", "component": {"name": "EVSE"},
        "variable": {"name": "Problem"}}]),
    call201.SecurityEventNotification(type="StartupOfTheDevice", timestamp="2026-01-01T00:00:00Z"),
    call201.FirmwareStatusNotification(status="Idle"),
    call201.LogStatusNotification(status="Idle"),
]
MONITORING_16 = [
    call16.DiagnosticsStatusNotification(status="Idle"),
    call16.FirmwareStatusNotification(status="Idle"),
    call16.SecurityEventNotification(type="StartupOfTheDevice", timestamp="2026-01-01T00:00:00Z", tech_info="boot"),
    call16.SignedFirmwareStatusNotification(status="Idle", request_id=1),
    call16.LogStatusNotification(status="Idle", request_id=1),
]


@pytest.mark.parametrize("request_index", range(len(MONITORING_201)))
async def test_monitoring_201_messages_are_answered(controller: Controller, request_index: int) -> None:
    async with charger(controller.url, "cp-b", PASSWORD_B, "2.0.1") as cp:
        await cp.boot()
        assert await cp.call(MONITORING_201[request_index], suppress=False) is not None


@pytest.mark.parametrize("request_index", range(len(MONITORING_16)))
async def test_monitoring_16_messages_are_answered(controller: Controller, request_index: int) -> None:
    async with charger(controller.url, "cp-a", PASSWORD_A, "1.6") as cp:
        await cp.boot()
        assert await cp.call(MONITORING_16[request_index], suppress=False) is not None
