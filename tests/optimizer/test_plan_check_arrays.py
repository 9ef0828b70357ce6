"""The plan check computes over all sessions at once: each broken rule must still be found on its own connector,
in session order, among many sound ones; the circuit sums follow the tree; and a basis prepared ahead (while the
solver works) is only used for the snapshot it was made for."""

from __future__ import annotations

import dataclasses

import pytest

from optimizer.domain import ConnectorPlan, Plan, SessionState, Site, Snapshot, ThermalModel
from optimizer.errors import SnapshotError
from optimizer.plan_check import check_plan, prepare_check
from optimizer.strategies import plan as make_plan
from tests.optimizer.helpers import session, site_with, snapshot


def _broken(plan: Plan, key: tuple[str, int], **changes: object) -> Plan:
    connectors = tuple(dataclasses.replace(c, **changes) if (c.charger_id, c.connector_id) == key else c  # type: ignore[arg-type]
                       for c in plan.connectors)
    return dataclasses.replace(plan, connectors=connectors)


def _scaled(cp: ConnectorPlan, factor: float) -> dict[str, object]:
    schedule = tuple(kw * factor for kw in cp.schedule_kw)
    return {"schedule_kw": schedule, "limit_kw": schedule[0]}


def _depot() -> tuple[list[SessionState], Plan, tuple[Site, Snapshot]]:
    site = site_with()
    sessions = [session("cp-1", soc=0.3, battery_kwh=40.0), session("cp-2", soc=0.5, battery_kwh=30.0, hours=3.0),
                session("cp-3", soc=0.4, battery_kwh=50.0), session("cp-4", soc=0.2, battery_kwh=80.0)]
    snap = snapshot(*sessions)
    return sessions, make_plan(site, snap, "lp"), (site, snap)


def test_a_sound_plan_passes_and_each_broken_rule_is_named_on_its_own_connector_in_order() -> None:
    _, plan, (site, snap) = _depot()
    assert check_plan(site, snap, plan) == []
    by_key = {(c.charger_id, c.connector_id): c for c in plan.connectors}
    steps = len(plan.schedule_step_s)
    # cp-2 leaves after 3 h: power in its last step is power after departure. cp-4: a negative step.
    late = list(by_key[("cp-2", 1)].schedule_kw)
    late[-1] = 2.0
    negative = list(by_key[("cp-4", 1)].schedule_kw)
    negative[5] = -0.5
    broken = _broken(plan, ("cp-2", 1), schedule_kw=tuple(late))
    broken = _broken(broken, ("cp-4", 1), schedule_kw=tuple(negative))
    broken = _broken(broken, ("cp-1", 1), schedule_kw=(60.0,) * steps, limit_kw=60.0)
    found = [(v.constraint, v.index) for v in check_plan(site, snap, broken, limits=False)]
    assert found == [("connector_max", "cp-1/1"), ("limit_consistency", "cp-1/1"), ("departure_energy", "cp-1/1"),
                     ("departure", "cp-2/1"), ("schedule", "cp-4/1")]
    negative_found = [v for v in check_plan(site, snap, broken, limits=False) if v.index == "cp-4/1"]
    assert negative_found[0].excess == pytest.approx(0.5) and negative_found[0].detail == "negative power"


def test_a_missing_or_short_schedule_is_named_and_the_rest_still_checked() -> None:
    _, plan, (site, snap) = _depot()
    short = _broken(plan, ("cp-3", 1), schedule_kw=plan.connectors[2].schedule_kw[:-1])
    missing = dataclasses.replace(short, connectors=tuple(c for c in short.connectors if c.charger_id != "cp-1"))
    overdrawn = _broken(missing, ("cp-4", 1), **_scaled(next(c for c in plan.connectors if c.charger_id == "cp-4"), 9.0))
    found = [(v.constraint, v.index) for v in check_plan(site, snap, overdrawn, limits=False)]
    assert found[:2] == [("connectors", "cp-1/1"), ("schedule", "cp-3/1")]
    assert ("connector_max", "cp-4/1") in found


def test_circuit_sums_follow_the_tree_and_name_the_excess() -> None:
    """feeder-a (32 A per phase) holds cp-1 (3-phase) and cp-2 (1-phase on L2): 20 A on each is 40 A on L2 there,
    and 40 A on L2 of main (100 A): only feeder-a's L2 row breaks, by 8 A."""
    site = site_with()
    snap = snapshot(session("cp-1", soc=0.1, battery_kwh=200.0), session("cp-2", soc=0.1, battery_kwh=200.0))
    plan = make_plan(site, snap, "lp")
    amps = {"cp-1": 20.0, "cp-2": 20.0}
    phases = {"cp-1": 3, "cp-2": 1}
    connectors = []
    for c in plan.connectors:
        kw = amps[c.charger_id] * 230 * phases[c.charger_id] / 1000
        connectors.append(dataclasses.replace(c, limit_kw=kw, limit_a=amps[c.charger_id],
                                              schedule_kw=(kw,) + (0.0,) * (len(c.schedule_kw) - 1)))
    over = dataclasses.replace(plan, connectors=tuple(connectors))
    rows = [v for v in check_plan(site, snap, over) if v.constraint.startswith("circuit")]
    assert [(v.constraint, v.index) for v in rows] == [("circuit_phase_limit[feeder-a,L2]", "step 0")]
    assert rows[0].excess == pytest.approx(8.0, abs=1e-6)


def test_a_basis_made_ahead_gives_the_same_verdicts() -> None:
    _, plan, (site, snap) = _depot()
    broken = _broken(plan, ("cp-1", 1), schedule_kw=(60.0,) * len(plan.schedule_step_s), limit_kw=60.0)
    basis = prepare_check(site, snap)
    assert [str(v) for v in check_plan(site, snap, broken, basis=basis)] == [str(v) for v in check_plan(site, snap, broken)]
    assert [s.key for s in basis.sessions] == [("cp-1", 1), ("cp-2", 1), ("cp-3", 1), ("cp-4", 1)]


def test_a_basis_of_another_snapshot_is_not_used() -> None:
    """Had the check trusted a basis of an earlier snapshot, the vehicle that plugged in since would go unchecked."""
    sessions, _, (site, snap) = _depot()
    earlier = snapshot(*sessions[:2])
    plan = make_plan(site, earlier, "lp")
    assert check_plan(site, earlier, plan, basis=prepare_check(site, earlier)) == []
    found = [(v.constraint, v.index) for v in check_plan(site, snap, plan, basis=prepare_check(site, earlier))]
    assert found == [("connectors", "cp-3/1"), ("connectors", "cp-4/1")]


@pytest.mark.parametrize("garbage", [
    session("cp-9"),  # not in the site
    session("cp-1", connector=7),  # no such connector
    session("cp-1", soc=float("nan")),
    session("cp-1", battery_temp_c=1e9, thermal=ThermalModel.none()),
])
def test_a_snapshot_the_check_cannot_resolve_is_refused_ahead_as_by_the_check(garbage: SessionState) -> None:
    site = site_with()
    _, plan, _ = _depot()
    bad = snapshot(garbage)
    with pytest.raises(SnapshotError):
        prepare_check(site, bad)
    with pytest.raises(SnapshotError):
        check_plan(site, bad, plan)
