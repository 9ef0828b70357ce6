"""Hypothesis over random sites and snapshots: every plan respects every limit (checked by the shared,
independent plan checker), never commands a current between 0 and the minimum, and the LP never
predicts a temperature above the ceiling for a battery that starts below it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimizer.domain import PlanStatus, SessionState, Snapshot, ThermalModel
from optimizer.plan_check import check_plan
from optimizer.site_loader import parse_site_mapping
from optimizer.strategies import get_strategy
from tests.optimizer.helpers import NOW

ROTATIONS = ["L1L2L3", "L2L3L1", "L3L1L2"]


@st.composite
def depots(draw: st.DrawFn) -> tuple[Any, Snapshot]:
    n = draw(st.integers(1, 7))
    chargers = []
    for k in range(n):
        kind = draw(st.sampled_from(["1p", "3p", "dc"]))
        if kind == "dc":
            chargers.append({"id": f"cp-{k}", "dc": True, "max_power_kw": draw(st.sampled_from([20.0, 50.0, 150.0]))})
        else:
            phases = 1 if kind == "1p" else 3
            rotation = f"L{draw(st.integers(1, 3))}" if phases == 1 else draw(st.sampled_from(ROTATIONS))
            chargers.append({"id": f"cp-{k}", "phases": phases, "phase_rotation": rotation,
                             "max_current_a": draw(st.sampled_from([16.0, 32.0])),
                             "min_current_a": draw(st.sampled_from([0.0, 6.0, 8.0])),
                             "connectors": draw(st.integers(1, 2))})
    split = draw(st.integers(0, n))
    feeders = []
    if split > 0:
        feeders.append({"id": "feeder-a", "max_current_a": draw(st.floats(5, 80)), "chargers": [c["id"] for c in chargers[:split]]})
    if split < n:
        feeders.append({"id": "feeder-b", "max_kw": draw(st.floats(3, 120)), "chargers": [c["id"] for c in chargers[split:]]})
    site = parse_site_mapping({
        "site": {"name": "prop", "timezone": "UTC", "grid": {"import_limit_kw": draw(st.floats(5, 300))},
                 "base_load": {"kw": draw(st.floats(0, 4))},
                 "circuits": [{"id": "main", "max_current_a": draw(st.floats(10, 400)), "children": feeders}]},
        "chargers": chargers,
        "control": {"step_min": draw(st.sampled_from([5, 15])), "horizon_h": 12},
        "ocpp": {"security_profile": 0, "accept_unknown": True},
    }, "prop.yaml")
    sessions = []
    for c in chargers:
        for connector in range(1, (c.get("connectors") or 1) + 1):
            if not draw(st.booleans()):
                continue
            thermal = draw(st.sampled_from([None, ThermalModel(45.0, 0.4, 0.5), ThermalModel(40.0, 1.5, 0.2)]))
            sessions.append(SessionState(
                charger_id=c["id"], connector_id=connector,
                soc=draw(st.floats(0.0, 0.95)), battery_kwh=draw(st.sampled_from([40.0, 75.0, 300.0])),
                target_soc=draw(st.floats(0.5, 1.0)), departure=NOW + timedelta(hours=draw(st.floats(0.1, 14.0))),
                max_power_kw=draw(st.sampled_from([3.7, 11.0, 22.0, 150.0])),
                battery_temp_c=draw(st.floats(0.0, 44.0)), thermal=thermal or ThermalModel.none(),
                knee_soc=draw(st.sampled_from([0.7, 0.8, 1.0])), priority=draw(st.sampled_from([1.0, 2.0])),
                phases=draw(st.sampled_from([None, 1])),
            ))
    snap = Snapshot(time=NOW, sessions=tuple(sessions), ambient_c=draw(st.floats(-10, 35)))
    return site, snap


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(depots())
def test_lp_plans_respect_every_limit_and_ceiling(depot: tuple[Any, Snapshot]) -> None:
    site, snap = depot
    plan = get_strategy("lp").plan(site, snap)
    assert check_plan(site, snap, plan) == []
    assert plan.status in (PlanStatus.OPTIMAL, PlanStatus.INFEASIBLE_SAFE)
    for c in plan.connectors:
        charger = site.charger(c.charger_id)
        if not charger.dc:
            assert c.limit_a == 0.0 or c.limit_a >= charger.min_current_a - 1e-9


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(depots(), st.sampled_from(["equal_share", "edf", "llf"]))
def test_baselines_respect_every_limit(depot: tuple[Any, Snapshot], name: str) -> None:
    site, snap = depot
    plan = get_strategy(name).plan(site, snap)
    assert check_plan(site, snap, plan, temperature=False) == []
