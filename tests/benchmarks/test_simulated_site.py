"""The simulated site behind the live dispatch rules: rounding, deadband, live station max, plug-in slots."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_bench_plant import QUIET, command

from benchmarks.plant import SimulatedDepot
from benchmarks.scenario import load_scenario
from benchmarks.simulated_site import SimulatedSite
from optimizer.domain import Plan, PlanStatus, PlugInAllowance
from optimizer.tick import complete_now


def amps_plan(depot: SimulatedDepot, amps: float, plug_in: tuple[PlugInAllowance, ...] = ()) -> Plan:
    """ac-1 (the only vehicle at 08:00) planned ``amps`` per phase."""
    site = depot.scenario.site
    kw = site.charger("ac-1").power_kw_at(amps, 3)
    return Plan(PlanStatus.OPTIMAL, "test", depot.now, 300.0, (300.0,), (command("ac-1", kw, amps),), plug_in=plug_in)


def test_limits_are_rounded_down_and_small_changes_are_not_resent(tiny_scenario_path: Path) -> None:
    depot = SimulatedDepot(load_scenario(tiny_scenario_path), QUIET)
    site = SimulatedSite(depot)
    ac1 = depot.scenario.site.charger("ac-1")
    snapshot = complete_now(site.observe(depot.now))
    applied = complete_now(site.apply(amps_plan(depot, 10.07), snapshot, depot.now))
    assert applied.sent == 1 and applied.allowed_kw[0] == pytest.approx(ac1.power_kw_at(10.0, 3))  # 10.07 → 10.0 A
    depot.advance()
    # 0.3 A more is within the 0.5 A deadband: not sent, the charger keeps its 10.0 A.
    applied = complete_now(site.apply(amps_plan(depot, 10.3), complete_now(site.observe(depot.now)), depot.now))
    assert applied.unchanged == 1 and applied.allowed_kw[0] == pytest.approx(ac1.power_kw_at(10.0, 3))
    depot.advance()
    applied = complete_now(site.apply(amps_plan(depot, 12.0), complete_now(site.observe(depot.now)), depot.now))
    assert applied.sent == 1 and applied.allowed_kw[0] == pytest.approx(ac1.power_kw_at(12.0, 3))


def test_a_lowering_is_sent_even_inside_the_deadband(tiny_scenario_path: Path) -> None:
    depot = SimulatedDepot(load_scenario(tiny_scenario_path), QUIET)
    site = SimulatedSite(depot)
    ac1 = depot.scenario.site.charger("ac-1")
    complete_now(site.apply(amps_plan(depot, 10.0), complete_now(site.observe(depot.now)), depot.now))
    depot.advance()
    # 9.6 A: only 0.4 A lower, but a charger kept at 10.0 A would draw more than the plan counted with.
    applied = complete_now(site.apply(amps_plan(depot, 9.6), complete_now(site.observe(depot.now)), depot.now))
    assert applied.sent == 1 and applied.allowed_kw[0] == pytest.approx(ac1.power_kw_at(9.6, 3))


def test_chargers_with_free_connectors_are_reported_as_plug_in_slots(tiny_scenario_path: Path) -> None:
    depot = SimulatedDepot(load_scenario(tiny_scenario_path), QUIET)
    snapshot = complete_now(SimulatedSite(depot).observe(depot.now))
    assert {s.charger_id for s in snapshot.plug_in} == {"ac-2", "dc-1"}  # ac-1 has its vehicle
    (dc,) = [s for s in snapshot.plug_in if s.charger_id == "dc-1"]
    assert dc.wanted_kw == pytest.approx(50.0) and dc.phases == 3


def test_observing_at_another_time_than_the_plant_is_refused(tiny_scenario_path: Path) -> None:
    depot = SimulatedDepot(load_scenario(tiny_scenario_path), QUIET)
    depot.advance()
    with pytest.raises(ValueError, match="not"):
        complete_now(SimulatedSite(depot).observe(depot.scenario.start))


def test_the_vehicle_plot_names_a_temperature_ceiling_only_when_it_draws_one(tiny_scenario_path: Path) -> None:
    from benchmarks.plots import vehicles_title

    trace = SimulatedDepot(load_scenario(tiny_scenario_path), QUIET).trace
    ac_rows, dc_row = [0, 1], 2  # only the DC bus has a thermal model
    assert "ceiling" not in vehicles_title("tiny", "lp", trace, ac_rows)
    assert "dotted: temperature ceiling" in vehicles_title("tiny", "lp", trace, [*ac_rows, dc_row])
