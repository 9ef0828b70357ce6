from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from live_site import make_site

from csms_adapter.control.connector_state import Command
from csms_adapter.control.live_state import LiveState
from csms_adapter.control.operator_inputs import GridCap
from csms_adapter.protocol import events as ev
from optimizer.domain import ValueSource
from optimizer.vehicle_limit import PROBE_KW

T0 = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)
Q = ev.Quantity


def sample(q: ev.Quantity, value: float, at: datetime, connector: int = 1, phase: str | None = None,
           location: str = "Outlet") -> ev.MeterSample:
    return ev.MeterSample("cp-a", connector, q, value, "x", at, ev.Source.METER, phase, location)


def started_live() -> LiveState:
    live = LiveState(make_site(), {"cp-a": 12.0, "cp-b": 12.0})
    live.apply(ev.ChargerConnected("cp-a", "1.6", T0))
    live.apply(ev.TransactionStarted("cp-a", 1, "7", "TAG1", 100.0, T0))
    return live


def test_a_charger_that_never_took_its_failsafe_is_budgeted_at_its_maximum() -> None:
    # It may charge on its own defaults: at most its own current on each of its phases (22 kW on 3 phases).
    snapshot = started_live().snapshot(T0)
    assert [(u.charger_id, u.connector_id, u.power_kw, u.phases) for u in snapshot.uncontrolled] == [
        ("cp-b", 0, 22.0, 3)]
    assert [(s.charger_id, s.connector_id) for s in snapshot.sessions] == [("cp-a", 1)]


@pytest.mark.parametrize(("spread", "expected"), [(1, 1), (3, 3), (None, 1)])
def test_disconnected_chargers_are_budgeted_at_their_failsafe_share_as_it_lands(spread: int | None,
                                                                                expected: int) -> None:
    # A share that went out in W may land on one phase (spread 1); in A it is a current per phase (3).
    live = started_live()
    live.charger("cp-b").failsafe_accepted = True
    if spread is not None:
        live.failsafe_spread["cp-b"] = spread
    snapshot = live.snapshot(T0)
    assert [(u.charger_id, u.power_kw, u.phases) for u in snapshot.uncontrolled] == [("cp-b", 12.0, expected)]


def test_soc_is_estimated_from_delivered_energy_when_the_charger_sends_none() -> None:
    live = started_live()
    live.apply(sample(Q.ENERGY_KWH, 112.5, T0 + timedelta(minutes=30)))
    (session,) = live.observe(T0 + timedelta(minutes=30)).sessions
    assert session.soc is None and session.soc_source is ValueSource.ESTIMATED
    assert session.energy_delivered_kwh == pytest.approx(12.5)
    assert session.id_tag == "TAG1"  # the optimizer finds van-1 in the roster by it


def test_measured_soc_wins_and_a_stale_one_is_advanced_by_energy() -> None:
    live = started_live()
    live.apply(sample(Q.SOC, 0.40, T0 + timedelta(minutes=1)))
    (fresh,) = live.observe(T0 + timedelta(minutes=1)).sessions
    assert fresh.soc == pytest.approx(0.40) and fresh.soc_source is ValueSource.MEASURED
    live.apply(sample(Q.ENERGY_KWH, 107.5, T0 + timedelta(minutes=20)))  # 7.5 kWh into van-1's 75 kWh
    (stale,) = live.observe(T0 + timedelta(minutes=20)).sessions
    assert stale.soc == pytest.approx(0.50) and stale.soc_source is ValueSource.ESTIMATED


def test_soc_readings_are_fitted_against_the_register() -> None:
    # van-1 (75 kWh) charging 1 kWh a minute; its BMS reads ±0.3 points around the truth. Each message carries the
    # SoC first and the register of the same moment after it: the fit pairs them.
    live = started_live()
    slope = live.site.charger("cp-a").efficiency / 75.0
    noise = [0.003, -0.003, 0.002, -0.002, 0.003, -0.003, 0.001, -0.001, 0.003, -0.003, 0.002, -0.002]
    for minute, error in enumerate(noise, start=1):
        at = T0 + timedelta(minutes=minute)
        live.apply(sample(Q.SOC, 0.40 + slope * minute + error, at))
        live.apply(sample(Q.ENERGY_KWH, 100.0 + minute, at))
    now = T0 + timedelta(minutes=len(noise))
    (s,) = live.observe(now).sessions
    truth = 0.40 + slope * len(noise)
    assert s.soc_source is ValueSource.MEASURED and s.soc_error is not None
    assert abs(s.soc - truth) < abs(noise[-1]) / 2  # closer than the last reading
    assert s.soc_error < 0.01 / 3  # tighter than a single whole-percent reading


def test_iso15118_needs_win_over_the_soc_measurand() -> None:
    live = started_live()
    live.apply(sample(Q.SOC, 0.40, T0))
    departure = T0 + timedelta(hours=6)
    live.apply(ev.EvChargingNeeds("cp-a", 1, T0 + timedelta(seconds=1), energy_kwh=30.0, departure=departure,
                                  soc=0.42, capacity_kwh=80.0, max_current_a=16.0, phases=3))
    live.apply(sample(Q.ENERGY_KWH, 110.0, T0 + timedelta(minutes=10)))
    (s,) = live.observe(T0 + timedelta(minutes=10)).sessions
    assert s.soc_source is ValueSource.ISO15118
    assert s.energy_needed_kwh == pytest.approx(20.0)  # 30 asked, 10 delivered since
    assert s.battery_kwh == 80.0 and s.departure == departure
    assert s.max_power_kw == pytest.approx(16 * 230 * 3 / 1000)


def test_replayed_start_and_old_samples_do_not_duplicate_or_overwrite() -> None:
    live = started_live()
    live.apply(sample(Q.POWER_KW, 7.0, T0 + timedelta(minutes=5)))
    live.apply(ev.TransactionStarted("cp-a", 1, "7", "TAG1", 100.0, T0))  # queued copy after a reconnect
    live.apply(sample(Q.POWER_KW, 1.0, T0 + timedelta(minutes=1)))  # an older queued sample
    assert len(live.open_sessions()) == 1
    assert live.chargers["cp-a"].connectors[1].readings.power_kw.value == 7.0


def test_phase_currents_do_not_double_count_and_give_phases_in_use() -> None:
    live = started_live()
    at = T0 + timedelta(minutes=1)
    live.apply(sample(Q.CURRENT_A, 16.0, at, phase="L1"))
    live.apply(sample(Q.CURRENT_A, 0.0, at, phase="L2"))
    live.apply(sample(Q.CURRENT_A, 0.0, at, phase="L3"))
    (s,) = live.observe(at).sessions
    assert s.phases == 1  # a one-phase vehicle on a three-phase charger
    charger = live.site.charger("cp-a")
    assert live.measured_power_kw(charger, live.chargers["cp-a"].connectors[1], at) == pytest.approx(16 * 0.23)


def test_a_charger_ignoring_its_limit_becomes_uncontrolled_after_the_grace_period() -> None:
    live = started_live()
    live.record_command("cp-a", 1, Command(limit_kw=4.14, limit_a=6.0, sent_at=T0, transaction_id="7"))
    grace = live.ignore_grace
    for step in range(0, 8):
        at = T0 + grace + timedelta(seconds=10 * step)
        live.apply(sample(Q.CURRENT_A, 16.0, at))
        live.apply(sample(Q.POWER_KW, 11.0, at))
        snapshot = live.observe(at)
        if at - (T0 + grace) < grace:
            assert len(snapshot.sessions) == 1, step  # still within the grace period
    assert snapshot.sessions == ()
    assert [(u.connector_id, u.power_kw) for u in snapshot.uncontrolled if u.charger_id == "cp-a"] == [(1, 11.0)]


def test_readings_queued_behind_a_backlog_still_show_a_charger_ignoring_its_limit() -> None:
    # The readings arrive long after they were taken (a starved controller, a slow link): every one is stale at
    # the tick, yet together they show the charger drawing 16 A against 6 A for longer than the grace period.
    live = started_live()
    live.record_command("cp-a", 1, Command(limit_kw=4.14, limit_a=6.0, sent_at=T0, transaction_id="7",
                                           accepted_at=T0))
    grace = live.ignore_grace
    late = T0 + grace * 4 + timedelta(minutes=10)
    for step in range(0, 5):
        at = T0 + grace + timedelta(seconds=10 * step)
        live.apply(sample(Q.CURRENT_A, 16.0, at))
    snapshot = live.observe(late)
    assert snapshot.sessions == ()
    assert any(u.charger_id == "cp-a" and "more than its limit" in u.reason for u in snapshot.uncontrolled)


def test_readings_from_before_the_grace_neither_start_nor_clear_a_verdict() -> None:
    live = started_live()
    grace = live.ignore_grace
    live.record_command("cp-a", 1, Command(limit_kw=4.14, limit_a=6.0, sent_at=T0, transaction_id="7",
                                           accepted_at=T0))
    live.apply(sample(Q.CURRENT_A, 16.0, T0 + grace))  # over: the run starts
    # A new (higher) command: the readings right after it may still show the old draw, so they give no verdict
    # and the run over the limit goes on.
    live.record_command("cp-a", 1, Command(limit_kw=5.5, limit_a=8.0, sent_at=T0 + grace,
                                           transaction_id="7", accepted_at=T0 + grace))
    live.apply(sample(Q.CURRENT_A, 16.0, T0 + grace + timedelta(seconds=5)))
    live.apply(sample(Q.CURRENT_A, 16.0, T0 + 2 * grace + timedelta(seconds=1)))
    assert live.observe(T0 + 2 * grace + timedelta(seconds=1)).sessions == ()


def test_readings_queued_while_offline_are_not_judged_against_the_last_command() -> None:
    # Offline, the charger's TxProfile may lapse and it runs on its fail-safe profiles: drawing more than the last
    # command then is no sign of ignoring it. What it sends after reconnecting is judged again.
    live = started_live()
    live.record_command("cp-a", 1, Command(limit_kw=4.14, limit_a=6.0, sent_at=T0, transaction_id="7",
                                           accepted_at=T0))
    grace = live.ignore_grace
    back = T0 + grace * 10
    live.apply(ev.ChargerDisconnected("cp-a", T0 + grace))
    live.apply(ev.ChargerConnected("cp-a", "1.6", back))
    for step in range(0, 6):
        live.apply(sample(Q.CURRENT_A, 16.0, T0 + grace + timedelta(seconds=10 * step)))
    assert len(live.observe(back).sessions) == 1


def test_a_charger_that_follows_its_limit_within_the_tolerance_stays_planned() -> None:
    live = started_live()
    live.record_command("cp-a", 1, Command(limit_kw=4.14, limit_a=6.0, sent_at=T0, transaction_id="7"))
    grace = live.ignore_grace
    for step in range(0, 12):
        at = T0 + grace + timedelta(seconds=10 * step)
        live.apply(sample(Q.CURRENT_A, 6.9, at))  # within 1 A of its limit
        assert len(live.observe(at).sessions) == 1, step


def test_stale_draw_of_an_uncontrolled_connector_is_budgeted_conservatively() -> None:
    live = started_live()
    live.apply(sample(Q.POWER_KW, 3.0, T0))
    live.record_rejection("cp-a", 1, "7", "status Rejected")
    snapshot = live.observe(T0 + timedelta(minutes=10))  # the 3 kW reading is long stale
    (load,) = [u for u in snapshot.uncontrolled if u.charger_id == "cp-a"]
    assert load.power_kw > 3.0  # the charger's maximum share, not its last (possibly lower) reading


def test_unplug_ends_the_session_and_reconnect_clears_rejection() -> None:
    live = started_live()
    live.record_rejection("cp-a", 1, "7", "status Rejected")
    live.apply(ev.ChargerDisconnected("cp-a", T0))
    live.apply(ev.ChargerConnected("cp-a", "1.6", T0))
    assert live.controllable("cp-a", 1)
    live.apply(ev.StatusChanged("cp-a", 1, ev.PlugState.AVAILABLE, "Available", T0))
    assert live.observe(T0).sessions == ()


def test_a_refusal_for_a_transaction_that_ended_leaves_the_connector_in_the_plan() -> None:
    # The vehicle left while its profile was on the way: the stop is handled before the refusal arrives.
    live = started_live()
    live.apply(ev.TransactionStopped("cp-a", "7", 1, 110.0, "EVDisconnected", T0 + timedelta(seconds=5)))
    assert not live.record_rejection("cp-a", 1, "7", "status Rejected")
    assert live.charger("cp-a").connector(1).rejected is None
    live.apply(ev.TransactionStarted("cp-a", 1, "8", "TAG1", 110.0, T0 + timedelta(minutes=1)))
    assert [(s.charger_id, s.connector_id) for s in live.observe(T0 + timedelta(minutes=1)).sessions] == [("cp-a", 1)]


def test_a_new_transaction_is_not_held_to_the_refusal_of_the_one_it_replaces() -> None:
    live = started_live()
    assert live.record_rejection("cp-a", 1, "7", "status Rejected")  # still open: the connector leaves the plan
    assert live.observe(T0).sessions == ()
    # Its stop never arrived; a newer transaction supersedes it.
    live.apply(ev.TransactionStarted("cp-a", 1, "8", "TAG1", 110.0, T0 + timedelta(minutes=1)))
    assert [(s.charger_id, s.connector_id) for s in live.observe(T0 + timedelta(minutes=1)).sessions] == [("cp-a", 1)]


def test_a_connector_whose_profile_calls_fail_is_budgeted_at_its_failsafe_then_retried() -> None:
    live = started_live()
    live.apply(sample(Q.POWER_KW, 2.0, T0))
    live.record_failure("cp-a", 1, T0)
    assert len(live.observe(T0 + timedelta(seconds=30)).sessions) == 1  # one failed call is not enough
    later = live.observe(T0 + timedelta(seconds=60))
    (load,) = [u for u in later.uncontrolled if u.charger_id == "cp-a"]
    assert load.power_kw >= 2.0 and "does not answer" in load.reason
    assert len(live.observe(T0 + timedelta(seconds=180)).sessions) == 1  # planned again, so the call is retried


def test_a_vehicle_drawing_well_under_its_limit_is_planned_at_what_it_draws() -> None:
    live = started_live()
    live.record_command("cp-a", 1, Command(limit_kw=11.0, limit_a=16.0, sent_at=T0, transaction_id="7"))
    at = T0 + timedelta(minutes=2)
    live.apply(sample(Q.POWER_KW, 2.0, at))
    (full,) = live.observe(at).sessions
    assert full.max_power_kw == pytest.approx(2.04)  # tapering or full: stop reserving the other 9 kW
    live.apply(sample(Q.POWER_KW, 10.9, at + timedelta(seconds=10)))
    (following,) = live.observe(at + timedelta(seconds=10)).sessions
    assert following.max_power_kw is None  # it follows its limit again: back to the roster's maximum


def test_a_tapering_vehicle_is_planned_where_its_falling_draw_goes_next() -> None:
    # The same rule as the benchmark plant's (optimizer.vehicle_limit): under a steady 11 kW command the draw falls
    # 10.6 -> 9.54 kW (a taper): it is planned at the next interval's draw, 9.54 × 0.9 × 1.02, not at 9.54 × 1.02.
    live = started_live()
    live.record_command("cp-a", 1, Command(limit_kw=11.0, limit_a=16.0, sent_at=T0, transaction_id="7"))
    at = T0 + timedelta(minutes=2)
    live.apply(sample(Q.POWER_KW, 10.6, at))
    assert live.observe(at).sessions[0].max_power_kw is None  # 96 % of its limit: not judged limited
    later = at + timedelta(minutes=1)
    live.apply(sample(Q.POWER_KW, 9.54, later))
    assert live.observe(later).sessions[0].max_power_kw == pytest.approx(9.54 * 0.9 * 1.02)
    # A steady draw after that is not extrapolated further: planned at the draw again.
    steady = later + timedelta(minutes=1)
    live.apply(sample(Q.POWER_KW, 9.54, steady))
    assert live.observe(steady).sessions[0].max_power_kw == pytest.approx(9.54 * 1.02)


def test_a_full_vehicle_is_not_offered_its_nameplate_again_at_the_next_tick() -> None:
    live = started_live()
    live.record_command("cp-a", 1, Command(limit_kw=11.0, limit_a=16.0, sent_at=T0, transaction_id="7"))
    at = T0 + timedelta(minutes=2)
    live.apply(sample(Q.POWER_KW, 0.0, at))
    assert live.observe(at).sessions[0].max_power_kw == pytest.approx(0.0)
    # Planned at 0 and drawing 0: the meter says nothing new, the memory keeps it at 0 ...
    live.record_command("cp-a", 1, Command(limit_kw=0.0, limit_a=0.0, sent_at=at, transaction_id="7"))
    for minutes in (5, 10, 20):
        live.apply(sample(Q.POWER_KW, 0.0, at + timedelta(minutes=minutes)))
        assert live.observe(at + timedelta(minutes=minutes)).sessions[0].max_power_kw == pytest.approx(0.0)
    # ... until the re-probe: half an hour after it was first seen full it is offered a little (not its nameplate).
    later = at + timedelta(minutes=31)
    live.apply(sample(Q.POWER_KW, 0.0, later))
    assert live.observe(later).sessions[0].max_power_kw == pytest.approx(PROBE_KW)
    # Commanded its minimum current (4.1 kW) for the probe, it takes all of it: it wants more, lifted.
    live.record_command("cp-a", 1, Command(limit_kw=4.1, limit_a=6.0, sent_at=later, transaction_id="7"))
    live.apply(sample(Q.POWER_KW, 4.1, later + timedelta(minutes=1)))
    assert live.observe(later + timedelta(minutes=1)).sessions[0].max_power_kw is None


def test_a_tapering_vehicle_held_at_what_it_takes_is_lifted_once_it_draws_all_it_is_allowed() -> None:
    live = started_live()
    live.record_command("cp-a", 1, Command(limit_kw=11.0, limit_a=16.0, sent_at=T0, transaction_id="7"))
    at = T0 + timedelta(minutes=2)
    live.apply(sample(Q.POWER_KW, 6.0, at))
    assert live.observe(at).sessions[0].max_power_kw == pytest.approx(6.12)
    live.record_command("cp-a", 1, Command(limit_kw=6.1, limit_a=8.8, sent_at=at, transaction_id="7"))
    # Under 98 % of 6.1 and 3 % under its draw before: still its own limit, and falling, so planned where the fall
    # takes it next (optimizer.vehicle_limit).
    live.apply(sample(Q.POWER_KW, 5.8, at + timedelta(minutes=1)))
    assert live.observe(at + timedelta(minutes=1)).sessions[0].max_power_kw == pytest.approx(5.8 * (5.8 / 6.0) * 1.02)
    live.apply(sample(Q.POWER_KW, 6.09, at + timedelta(minutes=2)))  # takes all it is given: may want more
    assert live.observe(at + timedelta(minutes=2)).sessions[0].max_power_kw is None


def test_a_tapering_vehicle_commanded_below_its_limit_keeps_it() -> None:
    # The same rule as the benchmark plant's (optimizer.vehicle_limit): held under what it was seen to take while the
    # site is full, a vehicle that takes all of that says nothing about more, so it stays planned at its limit.
    live = started_live()
    live.record_command("cp-a", 1, Command(limit_kw=11.0, limit_a=16.0, sent_at=T0, transaction_id="7"))
    at = T0 + timedelta(minutes=2)
    live.apply(sample(Q.POWER_KW, 6.0, at))
    assert live.observe(at).sessions[0].max_power_kw == pytest.approx(6.12)
    live.record_command("cp-a", 1, Command(limit_kw=4.1, limit_a=6.0, sent_at=at, transaction_id="7"))
    for minutes in (1, 2, 3):
        live.apply(sample(Q.POWER_KW, 4.1, at + timedelta(minutes=minutes)))
        assert live.observe(at + timedelta(minutes=minutes)).sessions[0].max_power_kw == pytest.approx(6.12)


def test_snapshot_changes_nothing_and_update_advances_the_judgements() -> None:
    live = started_live()
    live.record_command("cp-a", 1, Command(limit_kw=11.0, limit_a=16.0, sent_at=T0, transaction_id="7"))
    live.record_failure("cp-a", 1, T0)
    live.inputs.set_grid_cap(GridCap(limit_kw=40.0, set_at=T0, until=T0 + timedelta(minutes=1), reason="DSO"))
    at = T0 + timedelta(minutes=2)
    live.apply(sample(Q.POWER_KW, 2.0, at))
    connector = live.chargers["cp-a"].connectors[1]
    assert connector.session is not None
    first = live.snapshot(at)
    assert live.snapshot(at) == first  # asked twice, the same answer
    # Nothing was judged by reading: no vehicle limit learnt, the failing connector not yet retried, the lapsed cap
    # not yet dropped (but not reported either), no charger state made up for chargers never seen.
    assert connector.session.vehicle_limit is None and connector.failing_since == T0
    assert live.inputs.grid_cap is not None and first.grid_cap_kw is None
    assert "cp-b" not in live.chargers
    live.update(at + timedelta(minutes=5))
    assert connector.failing_since is None  # retried once per profile lifetime
    assert live.inputs.grid_cap is None


def test_readings_are_typed_and_newer_ones_win() -> None:
    live = started_live()
    at = T0 + timedelta(minutes=1)
    live.apply(sample(Q.TEMPERATURE_C, 31.0, at, location="EV"))
    live.apply(sample(Q.TEMPERATURE_C, 45.0, at))  # the charger's own temperature, not the battery's
    live.apply(sample(Q.CURRENT_A, 16.0, at, phase="L2-N"))
    live.apply(sample(Q.SOC, 0.4, at))
    live.apply(sample(Q.SOC, 0.3, at - timedelta(seconds=30)))  # a queued older value
    live.apply(sample(Q.VOLTAGE_V, 231.0, at))  # stored by the recorder, not read by the controller
    readings = live.chargers["cp-a"].connectors[1].readings
    assert readings.battery_temp_c is not None and readings.battery_temp_c.value == 31.0
    assert readings.charger_temp_c is not None and readings.charger_temp_c.value == 45.0
    assert set(readings.phase_current_a) == {"L2"} and readings.phase_current_a["L2"].value == 16.0
    assert readings.soc is not None and readings.soc.value == 0.4
    (session,) = live.observe(at).sessions
    assert session.battery_temp_c == 31.0 and session.soc == pytest.approx(0.4)
    # When the register and the battery were read travels with them (the thermal fit pairs them by time).
    assert session.energy_at == T0  # the register at the transaction's start
    live.apply(sample(Q.ENERGY_KWH, 112.0, at - timedelta(seconds=40)))
    (later,) = live.observe(at + timedelta(minutes=1)).sessions
    assert later.temp_at == at and later.energy_at == at - timedelta(seconds=40)


def per_phase(live: LiveState, at: datetime, amps: tuple[float, ...]) -> None:
    for k, value in enumerate(amps):
        live.apply(sample(Q.CURRENT_A, value, at, phase=f"L{k + 1}"))


@pytest.mark.parametrize(("amps", "phases", "site_phases"), [
    ((15.9, 0.0, 0.0), 1, ("L1",)),
    ((15.9, 15.8, 0.2), 2, ("L1", "L2")),
    ((10.0, 10.1, 9.9), 3, ("L1", "L2", "L3")),
])
def test_the_phases_a_vehicle_draws_on_are_learned_from_per_phase_current(
        amps: tuple[float, ...], phases: int, site_phases: tuple[str, ...]) -> None:
    live = started_live()
    per_phase(live, T0 + timedelta(seconds=20), amps)
    (session,) = live.snapshot(T0 + timedelta(seconds=25)).sessions
    assert session.phases == phases
    assert session.site_phases == site_phases


@pytest.mark.parametrize("amps", [
    (1.5, 0.0, 0.0),  # not clearly charging: a trickle teaches nothing
    (15.9, 0.0),  # a meter that reports only some phases cannot say the third is idle
    (float("nan"), 0.0, 0.0),  # garbage teaches nothing
])
def test_phases_stay_unknown_without_a_full_clear_reading(amps: tuple[float, ...]) -> None:
    live = started_live()
    per_phase(live, T0 + timedelta(seconds=20), amps)
    (session,) = live.snapshot(T0 + timedelta(seconds=25)).sessions
    assert session.phases is None and session.site_phases is None


def test_learned_phases_are_sticky_for_the_session_and_reset_by_the_next() -> None:
    live = started_live()
    per_phase(live, T0 + timedelta(seconds=20), (15.9, 0.0, 0.0))
    live.snapshot(T0 + timedelta(seconds=25))
    per_phase(live, T0 + timedelta(seconds=40), (0.0, 0.0, 0.0))  # paused: still the same 1-phase vehicle
    (session,) = live.snapshot(T0 + timedelta(seconds=45)).sessions
    assert session.site_phases == ("L1",)
    live.apply(ev.TransactionStopped("cp-a", "7", 1, 120.0, None, T0 + timedelta(seconds=50)))
    live.apply(ev.TransactionStarted("cp-a", 1, "8", "TAG1", 120.0, T0 + timedelta(seconds=60)))
    (fresh,) = live.snapshot(T0 + timedelta(seconds=65)).sessions
    assert fresh.site_phases is None  # the earlier readings belong to the earlier vehicle
    per_phase(live, T0 + timedelta(seconds=70), (10.0, 10.0, 10.0))
    (three,) = live.snapshot(T0 + timedelta(seconds=75)).sessions
    assert three.site_phases == ("L1", "L2", "L3")


def test_a_lapsed_command_is_no_yardstick_after_the_connector_was_out_of_service() -> None:
    # Faulted for half an hour, the connector got no profile and its TxProfile lapsed; back in service, the charger
    # rightly draws on its default profile until the next command: no verdict against the stale one.
    live = started_live()
    live.record_command("cp-a", 1, Command(limit_kw=0.0, limit_a=0.0, sent_at=T0, transaction_id="7",
                                           accepted_at=T0))
    grace = live.ignore_grace
    live.apply(sample(Q.CURRENT_A, 7.0, T0 + grace))  # over the 0 A limit: a run starts
    faulted = True
    live.out_of_service = lambda charger, connector: "fault: GroundFailure" if faulted else None
    live.update(T0 + grace + timedelta(minutes=1))
    faulted = False
    back = T0 + live.command_valid + timedelta(minutes=30)
    for step in range(6):
        live.apply(sample(Q.CURRENT_A, 7.0, back + timedelta(seconds=10 * step)))
        live.judge_readings()
    assert len(live.observe(back + timedelta(minutes=1)).sessions) == 1
    # the next command is judged again: a charger that keeps drawing 7 A against 0 A now ignores it
    live.record_command("cp-a", 1, Command(limit_kw=0.0, limit_a=0.0, sent_at=back + timedelta(minutes=1),
                                           transaction_id="7", accepted_at=back + timedelta(minutes=1)))
    for step in range(8):
        live.apply(sample(Q.CURRENT_A, 7.0, back + timedelta(minutes=1) + grace + timedelta(seconds=10 * step)))
        live.judge_readings()
    assert live.observe(back + timedelta(minutes=3)).sessions == ()
