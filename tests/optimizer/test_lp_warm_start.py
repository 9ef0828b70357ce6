"""The warm start across ticks (optimizer.lp_warm_start): it changes where the simplex starts, never what the
plan must respect or the optimum it reaches."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import numpy as np
import pytest

from benchmarks.plan_bench import live_like_snapshot, next_snapshot
from benchmarks.synthetic_site import synthetic_site, synthetic_snapshot
from optimizer import lp_warm_start
from optimizer.domain import Plan, Site, Snapshot
from optimizer.errors import SolverFailed
from optimizer.lp_model import LinearProgram, build_lp, session_arrays
from optimizer.lp_warm_start import BASIC, Basis, WarmStart
from optimizer.plan_check import assert_plan_feasible
from optimizer.solver_backend import HighsSolver
from optimizer.strategies.base import prepare_tick
from optimizer.strategies.lp import LpStrategy


def _site(n: int, seed: int = 0) -> Site:
    return synthetic_site(n, seed, step_min=15.0, horizon_h=12.0, uniform_steps=False)


def _lp(site: Site, snapshot: Snapshot) -> LinearProgram:
    tick = prepare_tick(site, snapshot)
    arrays = session_arrays(tick.sessions, tick.horizon, tick.series, tick.caps_kw)
    return build_lp(tick.sessions, tick.horizon, tick.series, tick.limits, site.control.objective,
                    tick.uncontrolled_kw, 0.0, arrays)


def _solved(lp: LinearProgram, start: Basis | None = None) -> HighsSolver:
    solver = HighsSolver()
    solver.load(lp)
    if start is not None:
        assert solver.start_from(start)
    solver.solve()
    return solver


def test_next_tick_starts_from_the_last_basis_and_reaches_the_same_optimum() -> None:
    site = _site(60)
    first = live_like_snapshot(site)
    warm, cold = LpStrategy(), LpStrategy(warm_start=False)
    plan = warm.plan(site, first)
    second = next_snapshot(first, plan)
    warm_plan, cold_plan = warm.plan(site, second), cold.plan(site, second)
    assert warm_plan.solver.endswith("-warm") and not cold_plan.solver.endswith("-warm")
    assert warm_plan.objective == pytest.approx(cold_plan.objective, rel=1e-9, abs=1e-9)
    assert_plan_feasible(site, second, warm_plan)
    planned = [sum(c.energy_planned_kwh for c in p.connectors) for p in (warm_plan, cold_plan)]
    assert planned[0] == pytest.approx(planned[1], rel=1e-3)


def test_a_warm_start_takes_fewer_iterations_than_a_cold_one() -> None:
    site = _site(60)
    first = live_like_snapshot(site)
    plan = LpStrategy(warm_start=False).plan(site, first)
    before, after = _lp(site, first), _lp(site, next_snapshot(first, plan))
    memory = WarmStart()
    memory.remember(before, _solved(before).basis())
    start = memory.basis_for(after)
    assert start is not None
    cold = HighsSolver()
    cold.load(after)
    cold_solution = cold.solve()
    warm = HighsSolver()
    warm.load(after)
    assert warm.start_from(start)
    warm_solution = warm.solve()
    assert warm_solution.objective == pytest.approx(cold_solution.objective, rel=1e-9, abs=1e-9)
    assert warm_solution.iterations < cold_solution.iterations / 4


def test_the_same_lp_again_needs_no_iteration() -> None:
    site = _site(30)
    lp = _lp(site, live_like_snapshot(site))
    memory = WarmStart()
    memory.remember(lp, _solved(lp).basis())
    start = memory.basis_for(lp)
    assert start is not None
    again = HighsSolver()
    again.load(lp)
    assert again.start_from(start)
    assert again.solve().iterations == 0


@pytest.mark.parametrize("other", ["other depot", "fewer sessions", "sessions arriving later"])
def test_a_basis_of_a_different_lp_still_gives_a_correct_optimal_plan(other: str) -> None:
    """The remembered basis belongs to another LP (another site, vehicles gone, the grid reshaped): the keys match
    few or none of the new rows and columns; the start is patched to a valid count and the result is the cold one."""
    site = _site(40)
    strategy = LpStrategy()
    strategy.plan(site, synthetic_snapshot(40, 12.0))
    if other == "other depot":
        site = _site(25, seed=3)
        snap = synthetic_snapshot(25, 12.0, seed=5)
    elif other == "fewer sessions":
        snap = synthetic_snapshot(40, 12.0)
        snap = dataclasses.replace(snap, sessions=snap.sessions[::3])
    else:
        snap = synthetic_snapshot(40, 12.0)
        later = [dataclasses.replace(s, departure=s.departure + timedelta(hours=2)) if s.departure else s
                 for s in snap.sessions]
        snap = dataclasses.replace(snap, time=snap.time + timedelta(minutes=17), sessions=tuple(later))
    warm_plan = strategy.plan(site, snap)
    cold_plan = LpStrategy(warm_start=False).plan(site, snap)
    assert warm_plan.objective == pytest.approx(cold_plan.objective, rel=1e-7, abs=1e-7)
    assert_plan_feasible(site, snap, warm_plan)


def test_every_start_has_one_basic_variable_per_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lp_warm_start, "MIN_KNOWN_COLUMNS", 0.0)  # patch even starts that are mostly new
    site = _site(40)
    snap = synthetic_snapshot(40, 12.0)
    lp = _lp(site, snap)
    memory = WarmStart()
    memory.remember(lp, _solved(lp).basis())
    for changed in (_lp(site, dataclasses.replace(snap, sessions=snap.sessions[5:])),
                    _lp(_site(25, seed=2), synthetic_snapshot(25, 12.0, seed=2)),
                    _lp(site, dataclasses.replace(snap, time=snap.time + timedelta(hours=1))),
                    _lp(_site(120, seed=4), synthetic_snapshot(120, 12.0, seed=4))):
        start = memory.basis_for(changed)
        assert start is not None
        assert start.columns.size == changed.columns and start.rows.size == changed.matrix.shape[0]
        assert int(np.count_nonzero(start.columns == BASIC) + np.count_nonzero(start.rows == BASIC)) == start.rows.size


def test_an_lp_mostly_new_to_the_last_basis_starts_cold() -> None:
    site = _site(40)
    snap = live_like_snapshot(site)
    small = _lp(site, dataclasses.replace(snap, sessions=snap.sessions[:10]))
    memory = WarmStart()
    memory.remember(small, _solved(small).basis())
    assert memory.basis_for(_lp(site, snap)) is None  # 10 of 40 vehicles known
    assert memory.basis_for(_lp(site, dataclasses.replace(snap, sessions=snap.sessions[:12]))) is not None  # 10 of 12


def test_a_basis_of_the_wrong_size_is_refused_and_forgotten() -> None:
    site = _site(20)
    lp = _lp(site, live_like_snapshot(site))
    solver = HighsSolver()
    solver.load(lp)
    assert not solver.start_from(Basis(np.zeros(3, dtype=np.int8), np.ones(2, dtype=np.int8)))
    memory = WarmStart()
    memory.remember(lp, Basis(np.zeros(3, dtype=np.int8), np.ones(2, dtype=np.int8)))
    assert memory.basis_for(lp) is None


def test_a_solve_failing_from_a_warm_start_is_retried_cold(monkeypatch: pytest.MonkeyPatch) -> None:
    site = _site(30)
    first = live_like_snapshot(site)
    strategy = LpStrategy()
    second = next_snapshot(first, strategy.plan(site, first))
    solve = HighsSolver.solve

    def failing_when_warm(self: HighsSolver):  # type: ignore[no-untyped-def]
        if self.name.endswith("-warm"):
            raise SolverFailed("HiGHS failed: injected")
        return solve(self)

    monkeypatch.setattr(HighsSolver, "solve", failing_when_warm)
    result: Plan = strategy.plan(site, second)
    assert result.reason is None or "fallback" not in result.reason
    assert not result.solver.endswith("-warm")
    assert result.objective == pytest.approx(LpStrategy(warm_start=False).plan(site, second).objective, rel=1e-9)
    assert_plan_feasible(site, second, result)
