"""The one circuit model: topology, the worst-case phase rule, and the LP planning per phase with it."""

from __future__ import annotations

import pytest

from optimizer.circuits import PhaseLoad, compile_circuits, limit_matrix, phase_load
from optimizer.domain import Phase, RateUnit
from optimizer.plan_check import Violation, check_plan
from optimizer.strategies import plan
from tests.optimizer.helpers import session, site_section, site_with, snapshot

L1, L2, L3 = Phase.L1, Phase.L2, Phase.L3


@pytest.mark.parametrize(
    ("charger", "unit", "vehicle_phases", "known", "expected"),
    [
        # 3-phase AC rotated L2L3L1: in A the command holds every phase; in W a 1-phase vehicle may take it all.
        ("cp-3", RateUnit.AMPS, None, None, PhaseLoad((L2, L3, L1), 3)),
        ("cp-3", None, None, None, PhaseLoad((L2, L3, L1), 3)),
        ("cp-3", RateUnit.WATTS, None, None, PhaseLoad((L2, L3, L1), 1)),
        # A count without placement: that many phases, any of them.
        ("cp-3", RateUnit.WATTS, 2, None, PhaseLoad((L2, L3, L1), 2)),
        ("cp-3", RateUnit.AMPS, 1, None, PhaseLoad((L2, L3, L1), 1)),
        # Measured placement: only those phases, in the charger's order; foreign phases ignored.
        ("cp-3", RateUnit.WATTS, None, (L2,), PhaseLoad((L2,), 1)),
        ("cp-3", RateUnit.WATTS, 1, (L1, L3), PhaseLoad((L3, L1), 2)),
        ("cp-2", RateUnit.WATTS, None, (L1,), PhaseLoad((L2,), 1)),  # cp-2 is wired to L2 only
        # 1-phase charger on its rotated phase; DC balanced over its rotation whatever is said.
        ("cp-2", RateUnit.WATTS, None, None, PhaseLoad((L2,), 1)),
        ("cp-4", RateUnit.WATTS, 1, (L1,), PhaseLoad((L1, L2, L3), 3)),
    ],
)
def test_phase_rule(charger: str, unit: RateUnit | None, vehicle_phases: int | None, known: tuple[Phase, ...] | None,
                    expected: PhaseLoad) -> None:
    site = site_with()
    assert phase_load(site.charger(charger), unit=unit, vehicle_phases=vehicle_phases,
                      known_phases=known) == expected


def test_topology_is_compiled_once_with_paths_and_subtrees() -> None:
    model = compile_circuits(site_with())
    assert model.below["main"] == {"cp-1", "cp-2", "cp-3", "cp-4"}
    assert model.below["feeder-a"] == {"cp-1", "cp-2"}
    assert model.path("cp-3") == ("feeder-b", "main")
    assert model.path("nowhere") == ()


def test_limit_matrix_counts_a_w_load_on_every_phase_it_may_use() -> None:
    site = site_with()
    model = compile_circuits(site)
    matrix = limit_matrix(model, [("cp-3", PhaseLoad((L2, L3, L1), 1))])
    rows = dict(zip(matrix.names, matrix.coef.toarray()[:, 0], strict=True))
    for phase in ("L1", "L2", "L3"):
        assert rows[f"circuit_phase_limit[main,{phase}]"] == pytest.approx(1000 / 230)
    assert rows["circuit_kw_limit[feeder-b]"] == 1.0
    assert "circuit_phase_limit[feeder-a,L1]" not in [n for n, v in rows.items() if v]


def _tight_site() -> object:
    return site_with(site=site_section(grid={"import_limit_kw": 200}, base_load={"kw": 0}, circuits=[
        {"id": "main", "max_current_a": 200, "children": [
            {"id": "sub", "max_current_a": 20, "chargers": ["cp-1", "cp-3"]}]},
        {"id": "other", "max_kw": 100, "chargers": ["cp-2", "cp-4"]}]),
        chargers=[
            {"id": "cp-1", "phases": 3, "max_current_a": 32, "max_power_kw": 22},
            {"id": "cp-2", "phases": 1, "phase_rotation": "L2", "max_current_a": 32},
            {"id": "cp-3", "phases": 3, "phase_rotation": "L2L3L1", "max_current_a": 32, "max_power_kw": 22},
            {"id": "cp-4", "dc": True, "max_power_kw": 50},
        ])


def _phase_currents_a(site: object, result: object, unit: RateUnit, vehicle_phases: int) -> dict[Phase, float]:
    """What 'sub' really carries per site phase with ``vehicle_phases``-phase vehicles wired as IEC 61851 says
    (the charger's first phases), each drawing what its command lets it."""
    from optimizer.domain import Plan, Site

    assert isinstance(site, Site) and isinstance(result, Plan)
    out = dict.fromkeys((L1, L2, L3), 0.0)
    for cp in result.connectors:
        charger = site.charger(cp.charger_id)
        per_phase = (cp.limit_a or 0.0) if unit is RateUnit.AMPS else cp.limit_kw * 1000 / (230 * vehicle_phases)
        for phase in charger.phase_rotation[:vehicle_phases]:
            out[phase] += per_phase
    return out


@pytest.mark.parametrize("unit", [RateUnit.AMPS, RateUnit.WATTS])
@pytest.mark.parametrize("vehicle_phases", [1, 2, 3])
def test_lp_holds_every_phase_for_any_vehicle_until_its_phases_are_known(unit: RateUnit,
                                                                        vehicle_phases: int) -> None:
    """Two 22 kW chargers behind a 20 A sub-circuit, vehicles' phases unknown. Whatever the vehicles really are, the
    planned power cannot push a phase of 'sub' over 20 A: in A each phase is held to the command; in W a vehicle
    may put all its power on one phase, and both may be on the same one."""
    site = _tight_site()
    snap = snapshot(*(session(c, soc=0.1, battery_kwh=200.0, max_power_kw=22.0, rate_unit=unit)
                      for c in ("cp-1", "cp-3")))
    result = plan(site, snap, "lp")
    assert check_plan(site, snap, result) == []
    assert max(_phase_currents_a(site, result, unit, vehicle_phases).values()) <= 20.0 + 1e-6
    if unit is RateUnit.AMPS:
        assert sum(c.limit_a or 0.0 for c in result.connectors) <= 20.0 + 1e-6  # any wiring: both on one phase
    else:
        assert sum(c.limit_kw for c in result.connectors) * 1000 / 230 <= 20.0 + 1e-6
    assert result.total_limit_kw > 4.0  # the site is not simply shut down


@pytest.mark.parametrize("vehicle_phases", [1, 2, 3])
def test_known_phases_free_the_others_and_the_checker_catches_a_plan_that_ignores_them(vehicle_phases: int) -> None:
    site = _tight_site()
    rotation = (L1, L2, L3)
    known = rotation[:vehicle_phases]
    measured = session("cp-1", soc=0.1, battery_kwh=200.0, max_power_kw=22.0, rate_unit=RateUnit.WATTS,
                       site_phases=known, phases=vehicle_phases)
    snap = snapshot(measured)
    result = plan(site, snap, "lp")
    assert check_plan(site, snap, result) == []
    (cp,) = result.connectors
    # Known phases: the vehicle spreads over them, so 20 A per phase allows 20 A × its phases.
    assert cp.limit_kw == pytest.approx(min(20 * 230 * vehicle_phases / 1000, 22.0), abs=0.01)
    # The same plan checked as if nothing were known (a W charger): the checker names the phase and the excess.
    unknown = snapshot(session("cp-1", soc=0.1, battery_kwh=200.0, max_power_kw=22.0, rate_unit=RateUnit.WATTS))
    problems = check_plan(site, unknown, result)
    if vehicle_phases > 1:
        assert problems and all(isinstance(p, Violation) for p in problems)
        over = [p for p in problems if p.constraint == "circuit_phase_limit[sub,L1]"]
        assert over and over[0].unit == "A" and over[0].index == "step 0"
        assert over[0].excess == pytest.approx(cp.limit_kw * 1000 / 230 - 20, abs=0.05)
    else:
        assert problems == []


def test_learned_phases_let_one_phase_vehicles_share_a_circuit_across_phases() -> None:
    """Phase balancing: two 1-phase vehicles measured on different site phases each get the whole 20 A of their
    phase; unknown, in W, they must share one phase's 20 A (less the 0.1 A rounding of the command)."""
    site = _tight_site()
    known = snapshot(session("cp-1", soc=0.1, battery_kwh=200.0, rate_unit=RateUnit.WATTS, site_phases=(L1,)),
                     session("cp-3", soc=0.1, battery_kwh=200.0, rate_unit=RateUnit.WATTS, site_phases=(L2,)))
    unknown = snapshot(session("cp-1", soc=0.1, battery_kwh=200.0, rate_unit=RateUnit.WATTS),
                       session("cp-3", soc=0.1, battery_kwh=200.0, rate_unit=RateUnit.WATTS))
    balanced = plan(site, known, "lp")
    blind = plan(site, unknown, "lp")
    assert check_plan(site, known, balanced) == [] and check_plan(site, unknown, blind) == []
    assert 2 * 20 * 230 / 1000 - 0.1 <= balanced.total_limit_kw <= 2 * 20 * 230 / 1000 + 1e-6
    assert 20 * 230 / 1000 - 0.1 <= blind.total_limit_kw <= 20 * 230 / 1000 + 1e-6


def test_violation_reads_as_name_place_and_excess() -> None:
    v = Violation("circuit_phase_limit[sub,L1]", "step 2", 3.25, "A", "23.25 A with 20.00 A of room")
    assert str(v) == "circuit_phase_limit[sub,L1][step 2]: 3.2500 A over: 23.25 A with 20.00 A of room"


def test_snapshot_json_carries_measured_phases_and_the_command_unit() -> None:
    from optimizer.snapshot_io import snapshot_from_json

    site = _tight_site()
    snap = snapshot_from_json({"time": "2026-11-25T18:00:00Z", "sessions": [
        {"charger": "cp-1", "site_phases": ["L2", "L2"], "rate_unit": "W"}]}, site)
    (s,) = snap.sessions
    assert s.site_phases == (L2,) and s.rate_unit is RateUnit.WATTS


@pytest.mark.parametrize("bad", [{"site_phases": ["L4"]}, {"site_phases": []}, {"site_phases": "L1"},
                                 {"rate_unit": "kW"}, {"site_phases": ["L1", "L2", "L3", "L1"]}])
def test_snapshot_json_garbage_phases_or_unit_gets_a_clear_error(bad: dict[str, object]) -> None:
    from optimizer.errors import SnapshotError
    from optimizer.snapshot_io import snapshot_from_json

    with pytest.raises(SnapshotError) as info:
        snapshot_from_json({"time": "2026-11-25T18:00:00Z", "sessions": [{"charger": "cp-1", **bad}]},
                           _tight_site())
    assert "sessions" in str(info.value) and next(iter(bad)) in str(info.value)
