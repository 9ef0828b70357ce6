"""End-to-end: the controller over real websockets on 127.0.0.1 with minimal fake chargers and the real solver."""

from __future__ import annotations

import asyncio

import pytest
from fake_chargers import Charger16, Charger201, Recorder, charger
from live_site import ENV, PASSWORD_A, PASSWORD_B, make_site
from polling import eventually
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from csms_adapter.control.control_loop import TickResult
from csms_adapter.control.controller import Controller
from csms_adapter.control.failsafe import compute_shares
from optimizer.domain import RateUnit, Site


async def settled_tick(c: Controller, charger_id: str) -> TickResult:
    """The latest finished tick that planned for ``charger_id`` (a profile can arrive before the tick returns)."""
    async with asyncio.timeout(10):
        while True:
            tick = c.last_tick
            if tick is not None and tick.plan is not None and any(
                    p.charger_id == charger_id for p in tick.plan.connectors):
                return tick
            await asyncio.sleep(0.01)


def site_budget_ok(site: Site, c: Controller) -> None:
    """Planned EV power + base load + budgeted uncontrolled load stays within the grid limit."""
    tick = c.last_tick
    assert tick is not None and tick.plan is not None, tick.error if tick else "no tick"
    uncontrolled = sum(u.power_kw for u in tick.snapshot.uncontrolled)
    assert tick.plan.total_limit_kw + site.base_load.profile_kw[0] + uncontrolled <= site.grid.import_limit_kw + 1e-6


async def test_unknown_identity_is_refused_with_404(controller: Controller) -> None:
    with pytest.raises(InvalidStatus) as info:
        await connect(controller.url + "cp-zz", subprotocols=["ocpp1.6"])  # type: ignore[list-item]
    assert info.value.response.status_code == 404


@pytest.mark.parametrize(("identity", "password"), [("cp-a", "wrong-password-123"), ("cp-b", PASSWORD_A)])
async def test_bad_password_is_refused_with_401(controller: Controller, identity: str, password: str) -> None:
    from fake_chargers import basic

    with pytest.raises(InvalidStatus) as info:
        await connect(controller.url + identity, subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                      additional_headers=basic(identity, password))
    assert info.value.response.status_code == 401
    assert "WWW-Authenticate" in info.value.response.headers


async def test_missing_credentials_and_wrong_user_are_refused(controller: Controller) -> None:
    from fake_chargers import basic

    for headers in ({}, basic("cp-b", PASSWORD_A)):
        with pytest.raises(InvalidStatus) as info:
            await connect(controller.url + "cp-a", subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                          additional_headers=headers)
        assert info.value.response.status_code == 401


async def test_unknown_identity_is_monitored_when_accept_unknown() -> None:
    site = make_site("  accept_unknown: true\n")
    async with Controller(site, env=ENV, debounce_real_s=0.05) as c, charger(c.url, "cp-zz", "x", "1.6") as cp:
        assert isinstance(cp, Charger16)
        result = await cp.boot()
        assert result.status == "Accepted"
        await cp.status(1, "Preparing")
        assert c.live.chargers["cp-zz"].monitor_only
        assert all(s.charger_id != "cp-zz" for s in c.live.snapshot(c.clock()).sessions)
        assert cp.rec.of("SetChargingProfile") == []  # never controlled


async def test_whole_ocpp16_session(controller: Controller) -> None:
    # cp-b took its fail-safe share in an earlier connection and is offline now: budgeted at that share, not at
    # the maximum a charger that never took one may draw on its own defaults.
    controller.live.charger("cp-b").failsafe_accepted = True
    site = controller.site
    rec = Recorder()
    async with charger(controller.url, "cp-a", PASSWORD_A, "1.6", rec) as cp:
        assert isinstance(cp, Charger16)
        assert (await cp.boot()).status == "Accepted"
        # After boot: capabilities, fail-safe and sampling configuration arrive, in that order of need.
        await rec.wait_for(lambda: len(rec.of("ChangeConfiguration")) >= 2)
        keys = [c["key"] for c in rec.of("ChangeConfiguration")]
        assert "MeterValuesSampledData" in keys and "MeterValueSampleInterval" in keys
        assert rec.of("GetConfiguration")
        assert rec.of("ClearChargingProfile") == [{"charging_profile_purpose": "TxProfile"}]
        purposes = [p["cs_charging_profiles"]["charging_profile_purpose"] for p in rec.of("SetChargingProfile")]
        assert purposes[:2] == ["ChargePointMaxProfile", "TxDefaultProfile"]
        station = rec.of("SetChargingProfile")[0]
        assert station["connector_id"] == 0
        share = compute_shares(site, units={"cp-a": RateUnit.AMPS})["cp-a"]  # its unit is known by then
        station_limit = float(station["cs_charging_profiles"]["charging_schedule"]["charging_schedule_period"][0]["limit"])
        assert station_limit * 230 * 3 / 1000 <= share.station_kw + 1e-6  # amps: the charger offers Current only

        await cp.status(1, "Preparing")
        tx = await cp.start_tx(1, "TAG1", 1000)
        await cp.status(1, "Charging")
        await cp.meter(1, tx, [
            {"value": "0", "measurand": "Power.Active.Import", "unit": "W"},
            {"value": "1000", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
        ])
        await rec.wait_for(lambda: bool(rec.tx_profiles()))
        profile = rec.tx_profiles()[-1]
        assert profile["transaction_id"] == tx
        assert profile["charging_profile_id"] == 101 and profile["stack_level"] == 1
        limit = float(profile["charging_schedule"]["charging_schedule_period"][0]["limit"])  # 1.6 parses Decimal
        assert profile["charging_schedule"]["charging_rate_unit"] == "A"
        tick = await settled_tick(controller, "cp-a")
        assert tick.plan is not None
        planned = tick.plan.for_connector("cp-a", 1)
        assert planned is not None and planned.limit_a is not None
        assert limit == pytest.approx(int(planned.limit_a * 10) / 10)
        assert 6.0 <= limit <= 16.0
        # cp-b is offline: budgeted at its fail-safe share, so cp-a gets what is left, at most its vehicle's 11 kW.
        assert any(u.charger_id == "cp-b" for u in tick.snapshot.uncontrolled)
        site_budget_ok(site, controller)

        await cp.stop_tx(tx, 5000)
        await cp.status(1, "Available")
        assert controller.live.snapshot(controller.clock()).sessions == ()


async def test_whole_ocpp201_session(controller: Controller) -> None:
    rec = Recorder()
    async with charger(controller.url, "cp-b", PASSWORD_B, "2.0.1", rec) as cp:
        assert isinstance(cp, Charger201)
        assert (await cp.boot()).status == "Accepted"
        await rec.wait_for(lambda: bool(rec.of("SetVariables")))
        assert rec.of("ClearChargingProfile") == [{"charging_profile_criteria": {"charging_profile_purpose": "TxProfile"}}]
        names = {d["variable"]["name"] for d in rec.of("SetVariables")[0]["set_variable_data"]}
        assert names == {"TxUpdatedMeasurands", "TxUpdatedInterval"}
        station = rec.of("SetChargingProfile")[0]
        assert station["evse_id"] == 0
        assert station["charging_profile"]["charging_profile_purpose"] == "ChargingStationMaxProfile"
        assert station["charging_profile"]["charging_schedule"][0]["charging_rate_unit"] == "W"  # RateUnit=W

        await cp.status(1, "Occupied")
        await cp.tx_event("Started", "tx-b1", 1, [
            {"value": 2000.0, "measurand": "Energy.Active.Import.Register"},
            {"value": 35.0, "measurand": "SoC", "unit_of_measure": {"unit": "Percent"}},
        ], trigger="CablePluggedIn", id_token="TAG1")
        await rec.wait_for(lambda: bool(rec.tx_profiles()))
        profile = rec.tx_profiles()[-1]
        assert profile["transaction_id"] == "tx-b1" and profile["id"] == 101
        schedule = profile["charging_schedule"][0]
        assert schedule["charging_rate_unit"] == "W"
        tick = await settled_tick(controller, "cp-b")
        assert tick.plan is not None
        planned = tick.plan.for_connector("cp-b", 1)
        assert planned is not None
        assert schedule["charging_schedule_period"][0]["limit"] == pytest.approx(planned.limit_kw * 1000, abs=0.11)
        session = next(s for s in tick.snapshot.sessions if s.charger_id == "cp-b")
        assert session.soc == pytest.approx(0.35) and session.id_tag == "TAG1"
        site_budget_ok(controller.site, controller)

        await cp.tx_event("Ended", "tx-b1", 1, [{"value": 9000.0, "measurand": "Energy.Active.Import.Register"}])
        await cp.status(1, "Available")
        assert controller.live.snapshot(controller.clock()).sessions == ()


async def test_rejected_tx_profile_is_budgeted_at_measured_draw(controller: Controller) -> None:
    # cp-b took its fail-safe share in an earlier connection and is offline now: budgeted at that share, not at
    # the maximum a charger that never took one may draw on its own defaults.
    controller.live.charger("cp-b").failsafe_accepted = True
    rec = Recorder(tx_profile_status="Rejected")
    async with charger(controller.url, "cp-a", PASSWORD_A, "1.6", rec) as cp:
        assert isinstance(cp, Charger16)
        await cp.boot()
        await rec.wait_for(lambda: len(rec.of("ChangeConfiguration")) >= 2)
        tx = await cp.start_tx(1, "TAG9", 0)
        await cp.meter(1, tx, [{"value": "7200", "measurand": "Power.Active.Import", "unit": "W"}])
        await rec.wait_for(lambda: bool(rec.tx_profiles()))
        await eventually(lambda: controller.live.chargers["cp-a"].connectors[1].rejected is not None)
        await eventually(lambda: not controller.loop._lock.locked())
        assert await controller.loop.tick() is not None
        snapshot = controller.live.snapshot(controller.clock())
        loads = [u for u in snapshot.uncontrolled if u.charger_id == "cp-a"]
        assert [(u.connector_id, u.power_kw) for u in loads] == [(1, pytest.approx(7.2))]
        assert all(s.charger_id != "cp-a" for s in snapshot.sessions)
        site_budget_ok(controller.site, controller)


async def test_one_call_in_flight_per_charger(controller: Controller) -> None:
    rec = Recorder(delay_s=0.15)
    async with charger(controller.url, "cp-a", PASSWORD_A, "1.6", rec) as cp:
        assert isinstance(cp, Charger16)
        await cp.boot()
        await rec.wait_for(lambda: len(rec.of("ChangeConfiguration")) >= 2)
        tx1 = await cp.start_tx(1, "T1", 0)
        tx2 = await cp.start_tx(2, "T2", 0)
        await rec.wait_for(lambda: {p["transaction_id"] for p in rec.tx_profiles()} == {tx1, tx2})
        assert rec.max_in_flight == 1


async def test_reconnect_without_boot_keeps_the_session(controller: Controller) -> None:
    rec = Recorder()
    async with charger(controller.url, "cp-a", PASSWORD_A, "1.6", rec) as cp:
        assert isinstance(cp, Charger16)
        await cp.boot()
        await rec.wait_for(lambda: len(rec.of("ChangeConfiguration")) >= 2)
        tx = await cp.start_tx(1, "TAG1", 500)
        await cp.meter(1, tx, [{"value": "1500", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}])
    assert not controller.live.chargers["cp-a"].connected
    assert any(u.charger_id == "cp-a" for u in controller.live.snapshot(controller.clock()).uncontrolled)
    rec2 = Recorder()
    async with charger(controller.url, "cp-a", PASSWORD_A, "1.6", rec2) as cp2:
        assert isinstance(cp2, Charger16)
        await rec2.wait_for(lambda: bool(rec2.of("TriggerMessage")))  # status resync instead of a new boot
        await eventually(lambda: controller.live.charger("cp-a").set_up)  # nothing is planned for it before
        await cp2.meter(1, tx, [{"value": "1510", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}])
        sessions = [s for s in controller.live.snapshot(controller.clock()).sessions if s.charger_id == "cp-a"]
        assert len(sessions) == 1
        assert sessions[0].energy_delivered_kwh == pytest.approx(1.01)
        assert controller.live.open_sessions()[0][2].transaction_id == str(tx)
        await rec2.wait_for(lambda: any(p["transaction_id"] == tx for p in rec2.tx_profiles()))


async def test_second_connection_supersedes_the_first_after_auth(controller: Controller) -> None:
    from fake_chargers import basic

    async with charger(controller.url, "cp-a", PASSWORD_A, "1.6") as first:
        await first.boot()
        original = controller.server.links["cp-a"]
        with pytest.raises(InvalidStatus):  # an impostor without the password does not displace the charger
            await connect(controller.url + "cp-a", subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                          additional_headers=basic("cp-a", "guess-guess-guess"))
        assert controller.server.links["cp-a"] is original and original.connected
        async with charger(controller.url, "cp-a", PASSWORD_A, "1.6") as second:
            assert isinstance(second, Charger16)
            await second.status(1, "Available")
            assert controller.server.links["cp-a"] is not original
            assert not original.connected
            await eventually(lambda: first._connection.close_code is not None)
            assert first._connection.close_code == 1000


async def test_ocpp201_transaction_already_running_is_adopted(controller: Controller) -> None:
    rec = Recorder()
    async with charger(controller.url, "cp-b", PASSWORD_B, "2.0.1", rec) as cp:
        assert isinstance(cp, Charger201)
        await cp.boot()
        await rec.wait_for(lambda: bool(rec.of("SetVariables")))
        await eventually(lambda: controller.live.charger("cp-b").set_up)
        await cp.tx_event("Updated", "tx-old", 1, [{"value": 5000.0, "measurand": "Energy.Active.Import.Register"}])
        await cp.tx_event("Updated", "tx-old", 1, [{"value": 5040.0, "measurand": "Energy.Active.Import.Register"}])
        sessions = controller.live.snapshot(controller.clock()).sessions
        assert [(s.charger_id, s.connector_id) for s in sessions] == [("cp-b", 1)]
        assert sessions[0].energy_delivered_kwh == pytest.approx(0.04)  # a plausible rise in a second
        await rec.wait_for(lambda: any(p["transaction_id"] == "tx-old" for p in rec.tx_profiles()))
