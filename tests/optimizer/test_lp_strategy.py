from __future__ import annotations

import math
from dataclasses import replace

import pytest

from optimizer.domain import PlanStatus, Site, Snapshot, ThermalModel
from optimizer.lp_columns import KWH_SESSION_SHARE
from optimizer.lp_model import build_lp
from optimizer.plan_check import assert_plan_feasible, check_plan
from optimizer.strategies import STRATEGY_NAMES, get_strategy, plan
from optimizer.strategies.base import prepare_tick
from optimizer.strategies.lp import LpStrategy
from tests.optimizer.helpers import session, site_section, site_with, snapshot

THERMAL = ThermalModel(max_temp_c=45.0, heating_c_per_kwh=0.5, cooling_per_h=0.3)


def roomy_site():  # type: ignore[no-untyped-def]
    """The test site with one generous circuit, so the 35 kW of grid room is what binds."""
    return site_with(site=site_section(circuits=[
        {"id": "main", "max_current_a": 200, "chargers": ["cp-1", "cp-2", "cp-3", "cp-4"]}]))


def test_lp_is_work_conserving_when_everyone_needs_more_than_the_site_gives() -> None:
    site = roomy_site()
    snap = snapshot(*(session(c, soc=0.05, hours=2.0, battery_kwh=200.0) for c in ("cp-1", "cp-2", "cp-3", "cp-4")))
    result = plan(site, snap, "lp")
    assert_plan_feasible(site, snap, result)
    assert result.status == PlanStatus.OPTIMAL
    room_kw = 40 - 5
    assert result.total_limit_kw == pytest.approx(room_kw, rel=1e-3)
    assert "site_import_limit" in result.binding


def test_hot_battery_gets_lower_limit_than_cool_one() -> None:
    site = roomy_site()
    cool = session("cp-4", soc=0.2, hours=3.0, battery_temp_c=25.0, thermal=THERMAL)
    hot = replace(cool, battery_temp_c=43.5)
    cool_plan = plan(site, snapshot(cool), "lp")
    hot_plan = plan(site, snapshot(hot), "lp")
    assert hot_plan.connectors[0].limit_kw < cool_plan.connectors[0].limit_kw
    assert hot_plan.connectors[0].expected_max_temp_c is not None
    assert hot_plan.connectors[0].expected_max_temp_c <= 45.0 + 1e-4
    assert any(name.startswith("battery_temperature[cp-4/1]") for name in hot_plan.binding)


def test_battery_above_its_ceiling_gets_nothing_and_a_reason() -> None:
    site = site_with()
    snap = snapshot(session("cp-4", battery_temp_c=47.0, thermal=THERMAL), session("cp-1"))
    result = plan(site, snap, "lp")
    assert result.status == PlanStatus.INFEASIBLE_SAFE
    assert result.reason is not None and "battery_temperature[cp-4/1]" in result.reason and "2.0 °C" in result.reason
    assert result.for_connector("cp-4", 1) is not None
    assert result.for_connector("cp-4", 1).limit_kw == 0.0  # type: ignore[union-attr]
    assert result.for_connector("cp-1", 1).limit_kw > 0  # type: ignore[union-attr]


def test_base_load_above_import_limit_gives_safe_zero_plan() -> None:
    site = site_with()
    snap = snapshot(session("cp-1"), session("cp-3"), base_load_kw=45.0)
    result = plan(site, snap, "lp")
    assert result.status == PlanStatus.INFEASIBLE_SAFE
    assert result.reason is not None and "site_import_limit" in result.reason and "5.000 kW" in result.reason
    assert result.total_limit_kw == 0.0


def test_no_current_between_zero_and_minimum() -> None:
    # 32 A of feeder-a shared by a 3-phase 16 A and a 1-phase 32 A charger on L2, plus a tight site.
    site = site_with(site=site_section(grid={"import_limit_kw": 12}, base_load={"kw": 0}, circuits=[
        {"id": "main", "max_current_a": 14, "chargers": ["cp-1", "cp-2", "cp-3", "cp-4"]}]))
    snap = snapshot(*(session(c, soc=0.1, hours=1.0, battery_kwh=100.0) for c in ("cp-1", "cp-2", "cp-3")))
    result = plan(site, snap, "lp")
    assert_plan_feasible(site, snap, result)
    for c in result.connectors:
        assert c.limit_a == 0.0 or c.limit_a >= 6.0


def test_priority_wins_when_capacity_is_short() -> None:
    site = site_with()
    low = session("cp-3", soc=0.1, hours=1.0, battery_kwh=100.0, priority=1.0)
    high = session("cp-4", soc=0.1, hours=1.0, battery_kwh=100.0, priority=5.0)
    result = plan(site, snapshot(low, high), "lp")
    assert result.for_connector("cp-4", 1).limit_kw >= result.for_connector("cp-3", 1).limit_kw  # type: ignore[union-attr]


def test_energy_need_caps_the_plan_and_nothing_after_departure() -> None:
    site = site_with()
    snap = snapshot(session("cp-4", energy_needed_kwh=5.0, hours=1.0))
    result = plan(site, snap, "lp")
    c = result.connectors[0]
    assert c.energy_planned_kwh == pytest.approx(5.0, abs=0.01)
    assert check_plan(site, snap, result) == []


def test_limits_are_rounded_down_to_a_tenth_of_an_amp() -> None:
    site = site_with()
    result = plan(site, snapshot(session("cp-2", soc=0.1, max_power_kw=5.0)), "lp")
    c = result.connectors[0]
    assert c.limit_a == pytest.approx(21.7)  # 5000 W / 230 V = 21.74 A → 21.7 A, never 21.8
    assert c.limit_kw <= 5.0
    assert math.isclose(c.limit_a * 10, round(c.limit_a * 10))


def test_direct_highs_and_pulp_give_the_same_objective() -> None:
    site = site_with()
    snap = snapshot(
        session("cp-1", soc=0.1, hours=3.0, battery_temp_c=30.0, thermal=THERMAL),
        session("cp-2", soc=0.7, hours=2.0),
        session("cp-3", soc=0.5, hours=4.0, knee_soc=0.6),
        session("cp-4", soc=0.3, hours=1.5, battery_temp_c=40.0, thermal=THERMAL),
    )
    direct = LpStrategy(solver="highs").plan(site, snap)
    via_pulp = LpStrategy(solver="pulp-highs").plan(site, snap)
    via_cbc = LpStrategy(solver="pulp-cbc").plan(site, snap)
    assert direct.objective is not None and via_pulp.objective is not None and via_cbc.objective is not None
    assert via_pulp.objective == pytest.approx(direct.objective, rel=1e-6, abs=1e-6)
    assert via_cbc.objective == pytest.approx(direct.objective, rel=1e-5, abs=1e-5)
    assert direct.solver.startswith("highs") and via_pulp.solver == "pulp-highs"


def test_taper_lowers_power_above_the_knee() -> None:
    site = roomy_site()
    below = plan(site, snapshot(session("cp-4", soc=0.5, target_soc=1.0, knee_soc=0.8)), "lp").connectors[0]
    above = plan(site, snapshot(session("cp-4", soc=0.9, target_soc=1.0, knee_soc=0.8, battery_kwh=200.0)), "lp").connectors[0]
    assert below.limit_kw == pytest.approx(35.0, rel=1e-3)  # site room (40 - 5), below the 50 kW charger
    # judged at the end of the 15-minute step: p = pmax (1 - soc0) / ((1 - knee) + pmax Δ / capacity)
    assert above.limit_kw == pytest.approx(50.0 * (1 - 0.9) / ((1 - 0.8) + 50.0 * 0.25 / 200.0), rel=1e-3)


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_every_strategy_plans_every_session(name: str) -> None:
    site = site_with()
    snap = snapshot(*(session(c, soc=0.3) for c in ("cp-1", "cp-2", "cp-3", "cp-4")))
    result = get_strategy(name).plan(site, snap)
    assert {(c.charger_id, c.connector_id) for c in result.connectors} == {(c, 1) for c in ("cp-1", "cp-2", "cp-3", "cp-4")}
    problems = check_plan(site, snap, result, limits=name != "uncontrolled", temperature=name == "lp")
    assert problems == []
    assert result.connectors[0].schedule_kw[0] == result.connectors[0].limit_kw


def test_empty_snapshot_gives_empty_optimal_plan() -> None:
    result = plan(site_with(), snapshot(), "lp")
    assert result.status == PlanStatus.OPTIMAL and result.connectors == ()


def test_phase_rotation_puts_single_phase_load_on_its_site_phase() -> None:
    tick = prepare_tick(site_with(), snapshot(session("cp-2")))
    names = [n for n, row in zip(tick.limits.names, tick.limits.coef.toarray(), strict=True) if row[0] > 0]
    assert "circuit_phase_limit[feeder-a,L2]" in names
    assert "circuit_phase_limit[feeder-a,L1]" not in names


def test_external_grid_cap_applies_until_its_end_time() -> None:
    from datetime import timedelta

    from tests.optimizer.helpers import NOW

    site = roomy_site()
    sessions = [session(c, soc=0.05, hours=6.0, battery_kwh=200.0) for c in ("cp-1", "cp-3", "cp-4")]
    capped = plan(site, snapshot(*sessions, grid_cap_kw=20.0, grid_cap_until=NOW + timedelta(hours=1)), "lp")
    assert capped.total_limit_kw <= 20.0 - 5.0 + 1e-6  # the cap includes the 5 kW base load
    starts = [0.0]
    for length in capped.schedule_step_s[:-1]:
        starts.append(starts[-1] + length)
    limits = dict(zip(starts, capped.import_limit_kw, strict=True))
    assert all(v == 20.0 for t, v in limits.items() if t < 3600)
    assert all(v == 40.0 for t, v in limits.items() if t >= 3600)


def _tail_and_hungry_site(import_limit_kw: float) -> tuple[Site, Snapshot]:
    site = site_with(site=site_section(grid={"import_limit_kw": import_limit_kw}, base_load={"kw": 0}, circuits=[
        {"id": "main", "max_current_a": 100, "chargers": ["cp-1", "cp-2", "cp-3", "cp-4"]}]))
    # cp-1's vehicle takes 2 kW (the tail of its taper), below the charger's 6 A minimum (4.14 kW on 3 phases).
    tail = session("cp-1", soc=0.5, target_soc=0.9, battery_kwh=60.0, max_power_kw=2.0, hours=2.0)
    hungry = session("cp-3", soc=0.1, target_soc=0.9, battery_kwh=100.0, hours=2.0)
    return site, snapshot(tail, hungry)


def test_a_vehicle_taking_less_than_the_minimum_does_not_displace_one_that_takes_it_all() -> None:
    # Budgeting 4.14 kW for 2 kW drawn on a full site would waste 2.14 kW that cp-3 takes.
    site, snap = _tail_and_hungry_site(12.0)
    result = plan(site, snap, "lp")
    assert_plan_feasible(site, snap, result)
    assert result.for_connector("cp-1", 1).limit_kw == 0.0  # type: ignore[union-attr]
    assert result.for_connector("cp-3", 1).limit_kw >= 11.9  # type: ignore[union-attr]


def test_a_vehicle_taking_less_than_the_minimum_gets_the_minimum_from_spare_capacity() -> None:
    site, snap = _tail_and_hungry_site(40.0)
    result = plan(site, snap, "lp")
    assert_plan_feasible(site, snap, result)
    tail = result.for_connector("cp-1", 1)
    assert tail is not None and tail.limit_a == pytest.approx(6.0) and tail.limit_kw == pytest.approx(4.14, abs=0.01)
    assert result.for_connector("cp-3", 1).limit_kw == pytest.approx(22.0, abs=0.1)  # type: ignore[union-attr]


@pytest.mark.parametrize("unmet_per", ["session", "kwh"])
def test_unmet_energy_is_charged_per_session_share_or_per_kwh(unmet_per: str) -> None:
    site = site_with(control={"step_min": 15, "horizon_h": 12, "objective": {"unmet_per": unmet_per}})
    snap = snapshot(session("cp-3", soc=0.7, target_soc=0.8, battery_kwh=50.0),  # needs 5 kWh
                    session("cp-4", soc=0.2, target_soc=0.8, battery_kwh=50.0))  # needs 30 kWh
    tick = prepare_tick(site, snap)
    lp = build_lp(tick.sessions, tick.horizon, tick.series, tick.limits, site.control.objective, 0.0)
    unmet_cost = lp.cost[lp.sessions * lp.steps: lp.sessions * lp.steps + lp.sessions]
    if unmet_per == "session":
        assert unmet_cost == pytest.approx([1000.0 / 5.0, 1000.0 / 30.0])  # the small need is finished first
    else:
        # Every kWh alike (mean need 17.5), plus the small session share for needs that are read.
        f = KWH_SESSION_SHARE
        assert unmet_cost == pytest.approx([1000.0 * ((1 - f) / 17.5 + f / 5.0), 1000.0 * ((1 - f) / 17.5 + f / 30.0)])
