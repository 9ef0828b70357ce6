"""Telling that a vehicle stopped drawing (csms_adapter.control.vehicle_stops), and the vehicle-limit memory seeing a
1.6 SuspendedEV at once: pure judgements and the live state, no network."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from test_live_state import T0, sample, started_live

from csms_adapter.control import live_judgements, vehicle_stops
from csms_adapter.control.connector_state import Command, ConnectorState, Session
from csms_adapter.control.live_state import LiveState
from csms_adapter.control.vehicle_stops import VehicleStop, stopped_drawing, suspended_by_ev
from csms_adapter.protocol import events as ev
from optimizer.vehicle_limit import MIN_JUDGED_KW

Q = ev.Quantity


def connector(command_kw: float | None = 11.0, *, session: bool = True, command_tx: str = "7") -> ConnectorState:
    state = ConnectorState()
    if session:
        state.session = Session("7", "TAG1", T0, 0.0)
    if command_kw is not None:
        state.command = Command(command_kw, None, T0, command_tx, T0)
    return state


@pytest.mark.parametrize(("state", "before_kw", "after_kw", "stopped"), [
    (connector(), 7.0, 0.0, True),
    (connector(), MIN_JUDGED_KW, MIN_JUDGED_KW - 0.01, True),  # the thresholds themselves
    (connector(), 7.0, MIN_JUDGED_KW, False),  # still drawing what the memory can judge
    (connector(), MIN_JUDGED_KW - 0.01, 0.0, False),  # was not drawing before either
    (connector(), 7.0, 3.0, False),  # a taper, not a stop: the memory follows it at the next tick
    (connector(), None, 0.0, False),  # nothing fresh before: no evidence it drew
    (connector(), 7.0, None, False),  # nothing fresh after
    (connector(), math.nan, 0.0, False),  # garbage on either side is no evidence
    (connector(), 7.0, math.nan, False),
    (connector(), 7.0, -2.0, True),  # exporting (a sign error or V2G): not drawing
    (connector(MIN_JUDGED_KW - 0.01), 7.0, 0.0, False),  # commanded (almost) nothing: nothing to give away
    (connector(None), 7.0, 0.0, False),  # no accepted command yet
    (connector(command_tx="6"), 7.0, 0.0, False),  # the command of an earlier session
    (connector(session=False), 7.0, 0.0, False),
])
def test_a_stop_is_a_draw_falling_below_what_the_memory_judges_under_a_real_command(
        state: ConnectorState, before_kw: float | None, after_kw: float | None, stopped: bool) -> None:
    assert stopped_drawing(state, before_kw, after_kw) is stopped


@pytest.mark.parametrize(("state", "before", "status", "stopped"), [
    (connector(), "Charging", "SuspendedEV", True),
    (connector(), "SuspendedEVSE", "SuspendedEV", False),  # the charger held it: the plan knows that already
    (connector(), None, "SuspendedEV", False),  # no status before: no evidence it charged
    (connector(), "Charging", "SuspendedEVSE", False),
    (connector(), "Charging", "Finishing", False),  # the session ends: that brings a tick forward by itself
    (connector(), "Charging", "suspendedev", False),  # 1.6 enumerations are case-sensitive
    (connector(), "Charging", "", False),
    (connector(), "Charging", "Occupied", False),  # 2.0.1 connectorStatus: the plug only
    (connector(0.0), "Charging", "SuspendedEV", False),
    (connector(session=False), "Charging", "SuspendedEV", False),
])
def test_a_stop_is_reported_by_charging_to_suspended_ev(state: ConnectorState, before: str | None, status: str,
                                                        stopped: bool) -> None:
    assert suspended_by_ev(state, before, status) is stopped


def commanded_live(limit_kw: float = 11.0) -> LiveState:
    live = started_live()
    live.record_command("cp-a", 1, Command(limit_kw, 16.0, T0, "7", T0))
    return live


def published(live: LiveState, s: ev.MeterSample) -> VehicleStop | None:
    """What the controller does with a meter sample: the draw before, apply, the stop it shows."""
    before = vehicle_stops.draw_kw(live, s)
    live.apply(s)
    return vehicle_stops.meter_stop(live, s, before)


def test_a_power_reading_that_falls_to_zero_is_a_stop_once() -> None:
    live = commanded_live()
    at = T0 + timedelta(seconds=30)
    assert published(live, sample(Q.POWER_KW, 10.8, at)) is None  # the first reading: nothing before it
    stop = published(live, sample(Q.POWER_KW, 0.05, at + timedelta(seconds=10)))
    assert stop == VehicleStop("cp-a", 1, at + timedelta(seconds=10), "meter") and stop.where == "cp-a/1"
    # Per-phase currents of the same message and later zero readings are the same stop, not new ones.
    for phase in ("L1", "L2", "L3"):
        assert published(live, sample(Q.CURRENT_A, 0.0, at + timedelta(seconds=10), phase=phase)) is None
    assert published(live, sample(Q.POWER_KW, 0.0, at + timedelta(seconds=20))) is None


def test_phase_currents_alone_stop_when_the_last_phase_falls() -> None:
    live = commanded_live()
    at = T0 + timedelta(seconds=30)
    for phase in ("L1", "L2", "L3"):
        published(live, sample(Q.CURRENT_A, 15.8, at, phase=phase))
    later = at + timedelta(seconds=10)
    stops = [published(live, sample(Q.CURRENT_A, 0.0, later, phase=p)) for p in ("L1", "L2", "L3")]
    assert stops[:2] == [None, None] and stops[2] is not None  # 3.6 kW left on L3 until its reading came


def test_replayed_stale_garbage_and_foreign_samples_are_no_stop() -> None:
    live = commanded_live()
    at = T0 + timedelta(seconds=30)
    published(live, sample(Q.POWER_KW, 10.8, at))
    # An older reading replayed from the charger's queue does not replace the newer one.
    assert published(live, sample(Q.POWER_KW, 0.0, at - timedelta(seconds=20))) is None
    # The charger's own grid meter, another quantity, an unknown connector: not this vehicle's draw.
    assert published(live, sample(Q.POWER_KW, 0.0, at + timedelta(seconds=1), location="Inlet")) is None
    assert published(live, sample(Q.ENERGY_KWH, 0.0, at + timedelta(seconds=1))) is None
    assert published(live, sample(Q.POWER_KW, 0.0, at + timedelta(seconds=1), connector=2)) is None
    assert published(live, ev.MeterSample("cp-zz", 1, Q.POWER_KW, 0.0, "x", at, ev.Source.METER)) is None
    # A reading long after the last one: nothing fresh before it, so it shows no stop.
    assert published(live, sample(Q.POWER_KW, 0.0, at + timedelta(hours=1))) is None


def test_a_suspended_ev_status_is_a_stop_and_the_memory_sees_no_draw_at_once() -> None:
    live = commanded_live()
    at = T0 + timedelta(seconds=40)
    live.apply(sample(Q.POWER_KW, 10.8, at))
    live.apply(ev.StatusChanged("cp-a", 1, ev.PlugState.OCCUPIED, "Charging", at))
    connector_state = live.chargers["cp-a"].connectors[1]
    suspended = ev.StatusChanged("cp-a", 1, ev.PlugState.OCCUPIED, "SuspendedEV", at + timedelta(seconds=3))
    stop = vehicle_stops.status_stop(live, suspended, connector_state.status)
    assert stop == VehicleStop("cp-a", 1, suspended.time, "SuspendedEV")
    live.apply(suspended)
    # The meter still shows 10.8 kW, read before the status: the vehicle takes nothing now, it is planned at ~0.
    (session,) = live.observe(at + timedelta(seconds=4)).sessions
    assert session.max_power_kw == pytest.approx(0.0)


def test_a_reading_after_suspended_ev_and_a_return_to_charging_count_as_they_are() -> None:
    live = commanded_live()
    at = T0 + timedelta(seconds=40)
    live.apply(sample(Q.POWER_KW, 10.8, at))
    live.apply(ev.StatusChanged("cp-a", 1, ev.PlugState.OCCUPIED, "SuspendedEV", at + timedelta(seconds=3)))
    live.apply(sample(Q.POWER_KW, 10.9, at + timedelta(seconds=5)))  # the meter, newer than the status, says it draws
    assert live.observe(at + timedelta(seconds=6)).sessions[0].max_power_kw is None
    live.apply(ev.StatusChanged("cp-a", 1, ev.PlugState.OCCUPIED, "SuspendedEV", at + timedelta(seconds=7)))
    live.apply(ev.StatusChanged("cp-a", 1, ev.PlugState.OCCUPIED, "Charging", at + timedelta(seconds=8)))
    assert live.chargers["cp-a"].connectors[1].session.ev_suspended_at is None  # type: ignore[union-attr]


def test_a_suspended_ev_status_older_than_the_session_is_no_stop() -> None:
    live = commanded_live()
    live.apply(ev.StatusChanged("cp-a", 1, ev.PlugState.OCCUPIED, "Charging", T0))
    replayed = ev.StatusChanged("cp-a", 1, ev.PlugState.OCCUPIED, "SuspendedEV", T0 - timedelta(minutes=5))
    assert vehicle_stops.status_stop(live, replayed, "Charging") is None
    live.apply(replayed)
    assert live.chargers["cp-a"].connectors[1].session.ev_suspended_at is None  # type: ignore[union-attr]


def refused_on(live: LiveState, s: ev.MeterSample) -> VehicleStop | None:
    """What the controller does with a meter sample, for a vehicle offered a new command: apply, then judge."""
    live.apply(s)
    return vehicle_stops.offer_refused(live, s, live_judgements.follow_time(live.site.ocpp.meter_interval_s))


def test_a_vehicle_that_takes_nothing_of_a_new_command_is_a_stop_once_it_had_time_to_follow() -> None:
    live = commanded_live()  # 11 kW sent at T0
    settle = live_judgements.follow_time(live.site.ocpp.meter_interval_s)
    assert refused_on(live, sample(Q.POWER_KW, 0.0, T0 + settle / 2)) is None  # too soon to judge
    stop = refused_on(live, sample(Q.POWER_KW, 0.0, T0 + settle))
    assert stop == VehicleStop("cp-a", 1, T0 + settle, "refused")
    # Judged once per command: later zero readings are the same refusal.
    assert refused_on(live, sample(Q.POWER_KW, 0.0, T0 + settle * 2)) is None
    # A new command watches again; the vehicle takes it this time.
    at = T0 + settle * 3
    live.record_command("cp-a", 1, Command(7.0, 10.0, at, "7", at))
    assert refused_on(live, sample(Q.POWER_KW, 6.9, at + settle)) is None
    assert refused_on(live, sample(Q.POWER_KW, 0.0, at + settle * 2)) is None  # a stop now: meter_stop's to tell


def test_a_vehicle_that_takes_clearly_less_of_a_new_command_is_a_stop() -> None:
    # Offered 11 kW in the middle of its taper, it takes 6: the other 5 kW stay idle until the next tick, so the
    # controller brings it forward, as for a vehicle that takes nothing (the same rule as the benchmark plant's).
    live = commanded_live()  # 11 kW sent at T0
    settle = live_judgements.follow_time(live.site.ocpp.meter_interval_s)
    assert refused_on(live, sample(Q.POWER_KW, 6.0, T0 + settle)) == VehicleStop("cp-a", 1, T0 + settle, "refused")
    # Taking over 90 % of a new command is following it (a meter's error, a vehicle's own rounding): no stop.
    at = T0 + settle * 2
    live.record_command("cp-a", 1, Command(7.0, 10.0, at, "7", at))
    assert refused_on(live, sample(Q.POWER_KW, 6.4, at + settle)) is None


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_an_offer_judged_on_garbage_or_on_nothing_is_no_refusal(value: float) -> None:
    live = commanded_live()
    settle = live_judgements.follow_time(live.site.ocpp.meter_interval_s)
    assert refused_on(live, sample(Q.POWER_KW, value, T0 + settle)) is None
    assert refused_on(live, sample(Q.ENERGY_KWH, 0.0, T0 + settle)) is None  # not a draw reading
    assert refused_on(live, sample(Q.POWER_KW, 0.0, T0 + settle, location="Inlet")) is None


def test_a_command_below_what_the_memory_judges_is_not_watched() -> None:
    live = commanded_live(MIN_JUDGED_KW - 0.01)
    settle = live_judgements.follow_time(live.site.ocpp.meter_interval_s)
    assert refused_on(live, sample(Q.POWER_KW, 0.0, T0 + settle)) is None
