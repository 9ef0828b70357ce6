"""The LP strategy: build the depot LP, solve it, make the minimum current hold, assemble the plan.

Minimum current is not convex. After a solve, connectors whose first-step current lands between 0 and
their minimum are raised to the minimum (highest priority, then earliest departure, first); if that
makes the LP infeasible the lowest of them is switched off, and the LP is re-solved warm with those
decisions fixed as column bounds. The loop is bounded; what is still undecided at the end is switched
off, which is always feasible.

One ``LpStrategy`` plans one site tick after tick (the live controller's solver process, a benchmark run): it
starts each solve from the last tick's basis (``optimizer.lp_warm_start``), which is what keeps a
1,000-connector tick well under a second.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from optimizer.domain import Plan, PlanStatus, Site, Snapshot
from optimizer.errors import ModelInfeasible, SolverFailed
from optimizer.lp_model import LinearProgram, build_lp, session_arrays
from optimizer.lp_warm_start import WarmStart
from optimizer.solver_backend import LpSolver, Solution, make_solver
from optimizer.strategies.base import EPS, Tick, input_infeasibilities, prepare_tick
from optimizer.strategies.commands import CommandInput, PlanDiagnostics, commands_for
from optimizer.strategies.thermal_first_step import cautious_first_step

MAX_MIN_CURRENT_SOLVES = 25
BIND_TOL = 1e-6


class LpStrategy:
    name = "lp"

    def __init__(self, solver: str | None = None, *, warm_start: bool = True) -> None:
        """``warm_start=False``: every solve starts cold, as a fresh strategy's first does (for comparisons)."""
        self.solver_name = solver
        self.warm_start: WarmStart | None = WarmStart() if warm_start else None

    def plan(self, site: Site, snapshot: Snapshot) -> Plan:
        # The hindsight bound and the solver benchmark plan a prepared tick as it is (``plan_tick``).
        return self.plan_tick(cautious_first_step(prepare_tick(site, snapshot)))

    def plan_tick(self, tick: Tick) -> Plan:
        started = time.perf_counter()
        reasons = input_infeasibilities(tick)
        status_if_ok = PlanStatus.INFEASIBLE_SAFE if reasons else PlanStatus.OPTIMAL
        if not tick.sessions:
            return commands_for(CommandInput(tick, self.name, np.zeros((0, tick.horizon.steps)), status_if_ok,
                                             PlanDiagnostics(reason="; ".join(reasons) or None)))
        arrays = session_arrays(tick.sessions, tick.horizon, tick.series, tick.caps_kw)
        lp = build_lp(
            tick.sessions, tick.horizon, tick.series, tick.limits, tick.site.control.objective,
            tick.uncontrolled_kw, tick.site.tariff.demand_charge_per_kw, arrays,
            tick.snapshot.peak_so_far_kw or 0.0,
        )
        build_ms = (time.perf_counter() - started) * 1000.0
        try:
            try:
                solution, rounds = self._solve(tick, lp, warm=True)
            except SolverFailed:
                if self.warm_start is None:
                    raise
                # Whatever went wrong, a start from the last tick must not be why: once more, cold.
                solution, rounds = self._solve(tick, lp, warm=False)
        except SolverFailed as exc:
            # Never leave the depot without a plan: fall back to a limit-respecting baseline.
            from optimizer.strategies.baselines import EqualShare

            fallback = EqualShare().plan_tick(tick)
            return replace(fallback, strategy=self.name, status=PlanStatus.FEASIBLE,
                           reason=f"solver failed ({exc}); equal_share fallback")
        power = solution.x[: lp.sessions * lp.steps].reshape(lp.sessions, lp.steps)
        status = status_if_ok if solution.optimal else PlanStatus.FEASIBLE
        total_ms = (time.perf_counter() - started) * 1000.0
        diagnostics = PlanDiagnostics(
            solve_ms=total_ms, build_ms=build_ms + solution.build_ms,
            objective=solution.objective, binding=binding_at_step0(lp, solution),
            reason="; ".join(reasons) or None, solver=solution.solver, min_current_rounds=rounds,
        )
        return commands_for(CommandInput(tick, self.name, power, status, diagnostics, below_minimum=arrays.below_minimum))


    def _solve(self, tick: Tick, lp: LinearProgram, *, warm: bool) -> tuple[Solution, int]:
        solver = make_solver(self.solver_name or tick.site.control.solver, tick.site.control.solver_time_limit_s)
        solver.load(lp)
        memory = self.warm_start
        if memory is not None:
            start = memory.basis_for(lp) if warm else None
            if start is not None:
                solver.start_from(start)
            memory.forget()  # until this solve has ended well
        solution = solver.solve()
        if memory is not None and solution.optimal:
            memory.remember(lp, solver.basis())
        return enforce_min_current(tick, lp, solver, solution)


def enforce_min_current(tick: Tick, lp: LinearProgram, solver: LpSolver, solution: Solution) -> tuple[Solution, int]:
    """Re-solve until no first-step power lies strictly between 0 and the connector's minimum."""
    sessions = tick.sessions
    min_kw = np.array([s.min_kw for s in sessions])
    if not (min_kw > 0).any():
        return solution, 0
    first_cols = np.arange(lp.sessions, dtype=np.int64) * lp.steps
    lower = lp.col_lb[first_cols].copy()
    upper = lp.col_ub[first_cols].copy()
    rank = {i: (-s.priority, s.departure_h, i) for i, s in enumerate(sessions)}
    rounds = 0
    while True:
        p0 = solution.x[first_cols]
        stuck = [i for i in range(lp.sessions) if min_kw[i] > 0 and EPS < p0[i] < min_kw[i] - EPS]
        if not stuck:
            return solution, rounds
        if rounds >= MAX_MIN_CURRENT_SOLVES:
            # Out of rounds: switching the stuck ones off only lowers loads, so it is always feasible.
            lower[stuck] = 0.0
            upper[stuck] = 0.0
            solver.set_col_bounds(first_cols, lower, upper)
            return solver.solve(), rounds + 1
        batch = sorted(stuck, key=rank.__getitem__)
        lower[batch] = min_kw[batch]
        while True:
            rounds += 1
            solver.set_col_bounds(first_cols, lower, upper)
            try:
                solution = solver.solve()
                break
            except ModelInfeasible:
                if not batch:
                    raise
                lowest = batch.pop()
                lower[lowest] = 0.0
                upper[lowest] = 0.0
                if rounds >= MAX_MIN_CURRENT_SOLVES:
                    lower[batch] = 0.0
                    upper[batch] = 0.0
                    batch = []


def binding_at_step0(lp: LinearProgram, solution: Solution) -> tuple[str, ...]:
    """Names of the constraint families that hold the first step (and battery ceilings anywhere)."""
    names: list[str] = []
    activity = solution.row_activity
    labels = next(g.labels for g in lp.groups if g.kind == "departure_energy")
    for group in lp.groups:
        if group.kind == "departure_energy":
            continue
        if group.kind in ("soc_taper", "battery_temperature_state", "stress_high_soc"):
            continue  # reported per connector below
        for k, label in enumerate(group.labels):
            row = group.first + k * group.per_step
            upper = lp.row_ub[row]
            if np.isfinite(upper) and activity[row] >= upper - max(BIND_TOL, 1e-7 * abs(upper)):
                names.append(group.kind if label == "site" else f"{group.kind}[{label}]")
    for session, _first, cols in lp.theta_cols:
        if (solution.x[cols] >= lp.col_ub[cols] - 1e-6).any():
            names.append(f"battery_temperature[{labels[session]}]")
    return tuple(names)
