"""The simulated plant: charger behaviour, energy conservation, taper and temperature."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from benchmarks.plant import PlantOptions, SimulatedDepot, charger_allows_kw
from benchmarks.scenario import Scenario, load_scenario
from optimizer.domain import ConnectorPlan, Plan, PlanStatus, ValueSource

QUIET = PlantOptions(soc_noise=0.0, temp_noise_c=0.0, meter_noise=0.0)


def command(charger: str, limit_kw: float, limit_a: float | None, phases: int = 3) -> ConnectorPlan:
    return ConnectorPlan(
        charger,
        1,
        limit_kw,
        limit_a,
        phases,
        (limit_kw,),
        0.0,
        0.0,
        None,
        None,
        datetime(2026, 1, 1, tzinfo=UTC),
        ValueSource.MEASURED,
    )


def plan_of(depot: SimulatedDepot, kw: dict[str, float]) -> Plan:
    snapshot = depot.observe()
    connectors = []
    for s in snapshot.sessions:
        charger = depot.scenario.site.charger(s.charger_id)
        limit = kw.get(s.charger_id, 0.0)
        amps = None if charger.dc else charger.current_a_at(limit, charger.phases)
        connectors.append(command(s.charger_id, limit, amps))
    return Plan(PlanStatus.OPTIMAL, "test", snapshot.time, 300.0, (300.0,), tuple(connectors))


def run_fixed(scenario: Scenario, kw: dict[str, float], options: PlantOptions = QUIET) -> SimulatedDepot:
    depot = SimulatedDepot(scenario, options)
    while not depot.done:
        depot.apply(plan_of(depot, kw))
        depot.advance()
    return depot


def test_charger_applies_limit_minimum_and_maximum(tiny_scenario_path: Path) -> None:
    site = load_scenario(tiny_scenario_path).site
    ac, dc = site.charger("ac-1"), site.charger("dc-1")
    assert charger_allows_kw(ac, command("ac-1", 6.9, 10.0)) == pytest.approx(10 * 230 * 3 / 1000)
    assert charger_allows_kw(ac, command("ac-1", 3.4, 5.0)) == 0.0  # below 6 A the charger pauses
    assert charger_allows_kw(ac, command("ac-1", 30.0, 40.0)) == pytest.approx(16 * 230 * 3 / 1000)
    assert charger_allows_kw(ac, command("ac-1", 2.3, 10.0, phases=1)) == pytest.approx(2.3)
    assert charger_allows_kw(dc, command("dc-1", 80.0, None)) == 50.0
    assert charger_allows_kw(ac, None) == 0.0


def test_energy_is_conserved_and_requests_are_never_exceeded(tiny_scenario_path: Path) -> None:
    scenario = load_scenario(tiny_scenario_path)
    depot = run_fixed(scenario, {"ac-1": 11.0, "ac-2": 11.0, "dc-1": 50.0})
    trace = depot.trace
    # grid-side energy = Σ step power × step length, per session
    assert trace.drawn_kwh == pytest.approx(trace.power_kw.sum(axis=1) * trace.step_h)
    # battery side = grid side × efficiency (1.0 here), and nobody gets more than requested
    assert trace.delivered_kwh == pytest.approx(trace.drawn_kwh)
    assert (trace.delivered_kwh <= trace.requested_kwh + 1e-9).all()
    # SoC rises by exactly the stored energy
    for i, s in enumerate(scenario.sessions):
        last = np.nanmax(trace.soc_end[i])
        assert last == pytest.approx(s.soc_arrival + trace.delivered_kwh[i] / s.battery_kwh)
    # no power outside the plugged-in window, and none before the first tick after arrival
    assert (trace.power_kw[trace.plugged_h == 0] == 0).all()
    assert trace.plugged_h[1, :2].sum() == 0 and trace.plugged_h[1, 2] > 0  # ac-2 arrives 08:10


def test_departure_mid_step_charges_only_until_departure(tiny_scenario_path: Path) -> None:
    scenario = load_scenario(tiny_scenario_path)
    first = scenario.sessions[0]
    short = dataclasses.replace(first, departure=first.arrival + timedelta(minutes=7), energy_kwh=50.0, target_soc=1.0)
    depot = run_fixed(dataclasses.replace(scenario, sessions=(short,)), {"ac-1": 11.0})
    assert depot.trace.plugged_h[0, :2] == pytest.approx([5 / 60, 2 / 60])
    assert depot.trace.delivered_kwh[0] == pytest.approx(11.0 * 7 / 60, rel=1e-6)  # the vehicle's 11 kW


def test_taper_above_the_knee(tiny_scenario_path: Path) -> None:
    scenario = load_scenario(tiny_scenario_path)
    first = scenario.sessions[0]
    # from SoC 0.9 (above the 0.8 knee) with a big request: acceptance 11·(1−soc)/0.2 < 11 kW and falling
    tapered = dataclasses.replace(first, soc_arrival=0.9, energy_kwh=6.0, target_soc=1.0, max_kw=11.0)
    depot = run_fixed(dataclasses.replace(scenario, sessions=(tapered,)), {"ac-1": 11.04})
    power = depot.trace.power_kw[0][depot.trace.plugged_h[0] > 0]
    assert power[0] < 11.0 * 0.1 / 0.2 + 1e-9
    assert (np.diff(power[power > 0]) < 0).all()


def test_temperature_rises_while_charging_and_relaxes_to_ambient(tiny_scenario_path: Path) -> None:
    scenario = load_scenario(tiny_scenario_path)
    bus = scenario.sessions[2]  # 38 °C, heating 0.3 °C/kWh, cooling 0.5/h, ambient 20..25
    charging = run_fixed(dataclasses.replace(scenario, sessions=(bus,)), {"dc-1": 50.0})
    resting = run_fixed(dataclasses.replace(scenario, sessions=(bus,)), {})
    hot = charging.trace.temp_end_c[0][charging.trace.plugged_h[0] > 0]
    cold = resting.trace.temp_end_c[0][resting.trace.plugged_h[0] > 0]
    # 50 kW heats ≈ 15 °C/h, faster than it cools; once the 20 kWh are in, it cools again
    peak = int(np.argmax(hot))
    assert (np.diff(hot[: peak + 1]) > 0).all() and hot[peak] > 39.5
    assert (np.diff(hot[peak:]) < 0).all()
    # idle from 08:30 (ambient 20 °C in the first hour): 38 → 20 + 18·e^(−0.5/12) after 5 minutes
    assert cold[0] == pytest.approx(20 + 18 * np.exp(-0.5 / 12), abs=1e-6)
    assert (np.diff(cold) < 0).all()


def test_thermal_mismatch_heats_the_real_battery_faster(tiny_scenario_path: Path) -> None:
    scenario = load_scenario(tiny_scenario_path)
    bus = dataclasses.replace(scenario, sessions=(scenario.sessions[2],))
    exact = run_fixed(bus, {"dc-1": 50.0})
    off = run_fixed(bus, {"dc-1": 50.0}, dataclasses.replace(QUIET, thermal_mismatch=0.3))
    assert np.nanmax(off.trace.temp_end_c) > np.nanmax(exact.trace.temp_end_c) + 1.0


def test_strategies_see_what_a_live_controller_sees(tiny_scenario_path: Path) -> None:
    scenario = load_scenario(tiny_scenario_path)
    depot = SimulatedDepot(scenario, PlantOptions(seed=3))
    for _ in range(7):  # to 08:35: all three plugged in
        depot.apply(plan_of(depot, {"ac-1": 11.0, "ac-2": 11.0, "dc-1": 50.0}))
        depot.advance()
    seen = {s.charger_id: s for s in depot.observe().sessions}
    assert seen["ac-1"].soc is None and seen["ac-1"].energy_delivered_kwh > 0  # AC: no SoC
    assert seen["ac-2"].soc is not None  # reports_soc: true
    assert seen["dc-1"].soc is not None and seen["dc-1"].battery_temp_c is not None
    assert seen["ac-1"].battery_temp_c is None  # no thermal model, no telemetry
    truth = depot.true_state(2)
    assert seen["dc-1"].soc != truth.soc and abs(seen["dc-1"].soc - truth.soc) < 0.02  # noisy, close
    everyone = SimulatedDepot(scenario, dataclasses.replace(QUIET, hide_soc=False))
    assert all(s.soc is not None for s in everyone.observe().sessions)


def test_noise_is_seeded(tiny_scenario_path: Path) -> None:
    scenario = load_scenario(tiny_scenario_path)
    readings = [
        SimulatedDepot(scenario, PlantOptions(seed=s)).observe().sessions[0].energy_delivered_kwh for s in (1, 1)
    ]
    socs = []
    for seed in (5, 5, 6):
        depot = SimulatedDepot(scenario, dataclasses.replace(PlantOptions(seed=seed), hide_soc=False))
        socs.append(depot.observe().sessions[0].soc)
    assert readings[0] == readings[1]
    assert socs[0] == socs[1] != socs[2]


def test_a_vehicle_drawing_clearly_less_than_allowed_is_planned_at_its_draw(tiny_scenario_path: Path) -> None:
    scenario = load_scenario(tiny_scenario_path)
    ac1, ac2 = scenario.sessions[0], scenario.sessions[1]
    # ac-1 asks for 0.5 kWh only: at 11 kW it is full after ~2.7 minutes of the first 5-minute step.
    nearly_full = dataclasses.replace(ac1, energy_kwh=0.5, target_soc=ac1.soc_arrival + 0.5 / ac1.battery_kwh)
    early = dataclasses.replace(ac2, arrival=ac1.arrival)  # plugged in from the start, asks for 15 kWh
    depot = SimulatedDepot(dataclasses.replace(scenario, sessions=(nearly_full, early)), QUIET)

    def limits() -> dict[str, float | None]:
        return {s.charger_id: s.max_power_kw for s in depot.observe().sessions}

    assert limits() == {"ac-1": 11.0, "ac-2": 11.0}  # nothing measured yet: the vehicle's nameplate
    # ac-1 may draw 11 kW and takes 0.5 kWh in 5 minutes (6 kW); ac-2 is held at 6 A (≈4.1 kW) and takes it all.
    depot.apply(plan_of(depot, {"ac-1": 11.0, "ac-2": 6 * 230 * 3 / 1000}))
    depot.advance()
    seen = limits()
    # The meter's latest sample: ac-1 stopped 2.7 minutes in and draws nothing now (its step average was 6 kW).
    assert seen["ac-1"] == 0.0
    assert depot.trace.power_kw[0, 0] == pytest.approx(0.5 / (5 / 60))
    assert seen["ac-2"] == 11.0  # drew what it was allowed: a controller limit, not the vehicle's
    # still full: planned at nothing; a connector paused by the controller keeps its nameplate
    depot.apply(plan_of(depot, {"ac-1": 11.0, "ac-2": 0.0}))
    depot.advance()
    assert limits() == {"ac-1": 0.0, "ac-2": 11.0}


def test_a_vehicle_that_stops_drawing_brings_the_next_tick_to_the_end_of_that_fifth(tiny_scenario_path: Path) -> None:
    scenario = load_scenario(tiny_scenario_path)
    ac1, ac2 = scenario.sessions[0], scenario.sessions[1]
    # ac-1 is full after ~2.7 minutes at 11 kW: in the third fifth of the first 5-minute step.
    nearly_full = dataclasses.replace(ac1, energy_kwh=0.5, target_soc=ac1.soc_arrival + 0.5 / ac1.battery_kwh)
    early = dataclasses.replace(ac2, arrival=ac1.arrival)
    day = dataclasses.replace(scenario, sessions=(nearly_full, early))
    start = day.time_at(0)

    depot = SimulatedDepot(day, QUIET)
    depot.apply(plan_of(depot, {"ac-1": 11.0, "ac-2": 4.2}))
    assert depot.advance_to_next_tick() is False  # a tick inside the step
    assert depot.now == start + timedelta(minutes=3) and depot.step == 0
    assert {s.charger_id: s.power_kw for s in depot.observe().sessions}["ac-1"] == 0.0
    depot.apply(plan_of(depot, {"ac-1": 0.0, "ac-2": 11.0}))  # what ac-1 had goes to ac-2 for the last 2 minutes
    assert depot.advance_to_next_tick() is True
    assert depot.now == start + timedelta(minutes=5) and depot.step == 1
    assert depot.trace.power_kw[0, 0] == pytest.approx(0.5 / (5 / 60))  # still the step's average
    assert depot.trace.power_kw[1, 0] == pytest.approx((4.2 * 3 + 11.0 * 2) / 5, rel=1e-6)
    assert depot.trace.plugged_h[1, 0] == pytest.approx(5 / 60)

    # Offered power again at the next tick, the full vehicle takes none: the tick comes one fifth later.
    depot.apply(plan_of(depot, {"ac-1": 4.2, "ac-2": 6.0}))
    assert depot.advance_to_next_tick() is False
    assert depot.now == start + timedelta(minutes=6)
    # Nothing stops in the rest of the step: the next tick is at its end.
    depot.apply(plan_of(depot, {"ac-1": 0.0, "ac-2": 6.0}))
    assert depot.advance_to_next_tick() is True and depot.now == start + timedelta(minutes=10)
    # A refusal is judged once per limit, as the live controller judges each new command once: the same limit
    # offered again at the next tick brings nothing forward.
    depot.apply(plan_of(depot, {"ac-1": 4.2, "ac-2": 6.0}))
    assert depot.advance_to_next_tick() is False and depot.now == start + timedelta(minutes=11)
    depot.apply(plan_of(depot, {"ac-1": 4.2, "ac-2": 6.0}))
    assert depot.advance_to_next_tick() is True and depot.now == start + timedelta(minutes=15)

    # Without the reaction, the controller ticks only at each step.
    steady = SimulatedDepot(day, dataclasses.replace(QUIET, react_to_stops=False))
    steady.apply(plan_of(steady, {"ac-1": 11.0, "ac-2": 4.2}))
    assert steady.advance_to_next_tick() is True and steady.now == start + timedelta(minutes=5)
    assert steady.trace.power_kw[0, 0] == pytest.approx(depot.trace.power_kw[0, 0])


def test_a_vehicle_that_takes_clearly_less_of_a_new_offer_brings_the_next_tick_forward(tiny_scenario_path: Path) -> None:
    # A DC vehicle deep in its taper (it accepts about 12 kW at SoC 0.9) with its SoC hidden, offered the charger's
    # 50 kW (its memory was just lifted): the 38 kW it leaves idle would wait for the end of the step. It takes under
    # 90 % of the new offer, so the controller ticks one fifth in, as for a vehicle that takes nothing of it.
    scenario = load_scenario(tiny_scenario_path)
    dc = next(s for s in scenario.sessions if s.charger_id == "dc-1")
    tapering = dataclasses.replace(dc, soc_arrival=0.9, energy_kwh=0.05 * 80, target_soc=0.95, reports_soc=False,
                                   max_kw=50.0, arrival=scenario.start,
                                   thermal=dataclasses.replace(dc.thermal, max_temp_c=99.0))
    day = dataclasses.replace(scenario, sessions=(tapering,))
    depot = SimulatedDepot(day, QUIET)
    depot.apply(plan_of(depot, {"dc-1": 50.0}))
    assert depot.advance_to_next_tick() is False and depot.now == day.time_at(0) + timedelta(minutes=1)
    drawn_kw = depot.observe().sessions[0].power_kw
    assert drawn_kw is not None and 0.5 < drawn_kw < 0.9 * 50.0
    # Offered (nearly) what it takes, nothing is idle: the next tick is at the step's end.
    depot.apply(plan_of(depot, {"dc-1": drawn_kw}))
    assert depot.advance_to_next_tick() is True and depot.now == day.time_at(1)


def _phases_seen(options: PlantOptions, scenario: Scenario, kw: dict[str, float]) -> dict[str, list[tuple[object, object]]]:
    """Per charger, the (phases, site_phases) the plant reported at every step a session was plugged in."""
    depot = SimulatedDepot(scenario, options)
    seen: dict[str, list[tuple[object, object]]] = {}
    while not depot.done:
        for s in depot.observe().sessions:
            seen.setdefault(s.charger_id, []).append((s.phases, s.site_phases))
        depot.apply(plan_of(depot, kw))
        depot.advance()
    return seen


def test_phases_are_learnt_from_per_phase_metering_once_the_vehicle_draws(tiny_scenario_path: Path) -> None:
    scenario = load_scenario(tiny_scenario_path)
    ac = scenario.site.charger("ac-1")
    seen = _phases_seen(QUIET, scenario, {"ac-1": 11.0, "dc-1": 50.0})
    # Unknown on arrival (nothing metered yet), the charger's wired phases from the first step it drew on.
    assert seen["ac-1"][0] == (None, None)
    assert (3, ac.phase_rotation[:3]) in seen["ac-1"][1:]
    # Never learnt while the vehicle draws nothing (ac-2 gets 0 kW), nor for DC.
    assert set(seen["ac-2"]) == {(None, None)}
    assert set(seen["dc-1"]) == {(None, None)}


def test_without_phase_metering_phases_stay_unknown(tiny_scenario_path: Path) -> None:
    scenario = load_scenario(tiny_scenario_path)
    options = dataclasses.replace(QUIET, phase_metering=False)
    seen = _phases_seen(options, scenario, {"ac-1": 11.0, "dc-1": 50.0})
    assert {value for values in seen.values() for value in values} == {(None, None)}


def commanded_not_drawn_in_taper(scenario: Scenario) -> tuple[float, float]:
    """(kWh commanded and not drawn, kWh drawn) over the steps a vehicle tapers from start to end (not the step the
    taper begins, nor the one it reaches its target in), when every step it is commanded what the plant's snapshot
    says it takes (``max_power_kw``: the vehicle-limit memory), as a strategy with room would."""
    depot = SimulatedDepot(scenario, QUIET)
    wasted = drawn = 0.0
    while not depot.done:
        snapshot = depot.observe()
        kw = {s.charger_id: min(s.max_power_kw or 0.0, 50.0) for s in snapshot.sessions}
        depot.apply(plan_of(depot, kw))
        allowed = {v.row: (v.allowed_kw, v.state.soc, v.session.target_soc) for v in depot.plugged()}
        k = depot.step
        depot.advance()
        for row, (allowed_kw, soc, target) in allowed.items():
            got = float(depot.trace.power_kw[row, k]) * depot.trace.step_h
            if soc > 0.81 and depot.trace.soc_end[row, k] < target - 1e-6 and allowed_kw > 0:
                wasted += allowed_kw * depot.trace.plugged_h[row, k] - got
                drawn += got
    return wasted, drawn


def test_a_tapering_vehicle_is_commanded_about_what_it_draws(tiny_scenario_path: Path) -> None:
    # A DC vehicle tapering fast (its acceptance falls by a quarter each 5-minute step) with its SoC hidden: the
    # controller only sees its meter. Each step's draw, seen against the step before, predicts the next one, so
    # what is commanded and not drawn stays under a tenth of what it draws (planned at its last draw, the
    # vehicle left a quarter of each command unused).
    scenario = load_scenario(tiny_scenario_path)
    dc = next(s for s in scenario.sessions if s.charger_id == "dc-1")
    tapering = dataclasses.replace(dc, soc_arrival=0.75, energy_kwh=0.2 * 80, target_soc=0.95, reports_soc=False,
                                   thermal=dataclasses.replace(dc.thermal, max_temp_c=99.0))
    wasted, drawn = commanded_not_drawn_in_taper(dataclasses.replace(scenario, sessions=(tapering,)))
    assert drawn > 6.0  # it tapered for several steps
    assert wasted < 0.12 * drawn


def test_a_tapering_vehicle_held_below_its_limit_is_not_offered_its_nameplate_again(tiny_scenario_path: Path) -> None:
    # A site that fills now and then: once its taper is seen, the vehicle is commanded half of what its memory says
    # every third step, and what the memory says otherwise. It takes all of the half, which says nothing about
    # whether it would take more than the memory: the offer after a hold is never above the offer before it (a taper
    # only falls), and in particular never the charger's 50 kW again.
    scenario = load_scenario(tiny_scenario_path)
    dc = next(s for s in scenario.sessions if s.charger_id == "dc-1")
    tapering = dataclasses.replace(dc, soc_arrival=0.8, energy_kwh=0.15 * 80, target_soc=0.95, reports_soc=False,
                                   max_kw=40.0, thermal=dataclasses.replace(dc.thermal, max_temp_c=99.0))
    depot = SimulatedDepot(dataclasses.replace(scenario, sessions=(tapering,)), QUIET)
    offers: list[tuple[float, bool]] = []  # (what the snapshot says it takes, whether it was held at half of it)
    while not depot.done:
        sessions = depot.observe().sessions
        if not sessions:
            depot.apply(plan_of(depot, {}))
            depot.advance()
            continue
        takes_kw = min(sessions[0].max_power_kw or 0.0, 50.0)
        held = takes_kw < tapering.max_kw and len(offers) % 3 == 1
        depot.apply(plan_of(depot, {"dc-1": takes_kw / 2 if held else takes_kw}))
        offers.append((takes_kw, held))
        depot.advance()
    after_holds = [(offers[k - 1][0], offers[k + 1][0]) for k in range(1, len(offers) - 1) if offers[k][1]]
    assert len(after_holds) >= 3  # it was held several times during its taper
    assert all(after <= before + 1e-9 for before, after in after_holds)
