"""Solver benchmark (issue 2): model build, solve and total time of the depot LP for growing sites.

For each size it prints the production path (arrays → HiGHS through highspy), the PuLP path (the same
rows built as a PuLP problem, solved by HiGHS through PuLP) and the floor: HiGHS solving the very same
matrix with no model building at all. Ratios are path total / floor. Medians over --repeats runs.

    python -m benchmarks.solver_bench [--sizes 10,100,1000,5000] [--steps 1,24,96] [--repeats 3]

Steps are nominal 15-minute steps (96 = 24 h); the LP's own grid is coarser further out (5/15/60 min,
docs/lp.md, "Time"), shown as "LP steps". The 54 × 288 row is a day in 5-minute steps.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

from benchmarks.synthetic_site import synthetic_site, synthetic_snapshot
from optimizer.domain import Snapshot
from optimizer.lp_model import build_lp, session_arrays
from optimizer.solver_backend import HighsSolver, PulpSolver
from optimizer.strategies.base import prepare_tick

PULP_MAX_NONZEROS = 400_000  # PuLP costs ~3.5 µs per nonzero: beyond this it is minutes per run


@dataclass
class Row:
    connectors: int
    nominal_steps: int
    step_min: float
    lp_steps: int
    nonzeros: int
    taper: int
    thermal: int
    build_ms: float
    solve_ms: float
    floor_ms: float
    pulp_build_ms: float | None
    pulp_solve_ms: float | None
    objective: float
    pulp_objective: float | None


def measure(connectors: int, nominal_steps: int, step_min: float, repeats: int, with_pulp: bool) -> Row:
    horizon_h = nominal_steps * step_min / 60.0
    site = synthetic_site(connectors, step_min=step_min, horizon_h=horizon_h, uniform_steps=False)
    snapshot: Snapshot = synthetic_snapshot(connectors, horizon_h)
    builds, solves, floors = [], [], []
    lp = None
    objective = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        tick = prepare_tick(site, snapshot)
        arrays = session_arrays(tick.sessions, tick.horizon, tick.series)
        lp = build_lp(tick.sessions, tick.horizon, tick.series, tick.limits, site.control.objective,
                      tick.uncontrolled_kw, 0.0, arrays)
        build_ms = (time.perf_counter() - started) * 1000.0
        solver = HighsSolver(time_limit_s=600.0)
        solver.load(lp)
        solution = solver.solve()
        builds.append(build_ms + solution.build_ms)
        solves.append(solution.solve_ms)
        floors.append(solution.solve_ms)  # HiGHS run on the passed matrix: nothing of ours inside
        objective = solution.objective
    assert lp is not None
    pulp_build = pulp_solve = pulp_objective = None
    if with_pulp and lp.matrix.nnz <= PULP_MAX_NONZEROS:
        pulp = PulpSolver("highs", time_limit_s=600.0)
        started = time.perf_counter()
        pulp.load(lp)
        pulp_build = (time.perf_counter() - started) * 1000.0
        pulp_solution = pulp.solve()
        pulp_solve = pulp_solution.solve_ms
        pulp_objective = pulp_solution.objective
    return Row(
        connectors, nominal_steps, step_min, lp.steps, lp.matrix.nnz, int(lp.taper_sessions.size),
        int(lp.thermal_sessions.size), statistics.median(builds), statistics.median(solves),
        statistics.median(floors), pulp_build, pulp_solve, objective, pulp_objective,
    )


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def print_table(rows: list[Row]) -> None:
    print("| connectors × steps | LP steps | nonzeros | taper/thermal rows for | build ms | solve ms | total ms "
          "| floor ms | total/floor | PuLP build ms | PuLP solve ms | PuLP total/floor |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        total = r.build_ms + r.solve_ms
        pulp_total = None if r.pulp_build_ms is None or r.pulp_solve_ms is None else r.pulp_build_ms + r.pulp_solve_ms
        pulp_ratio = "—" if pulp_total is None else f"{pulp_total / max(r.floor_ms, 1e-9):.1f}×"
        step = "" if r.step_min == 15 else f" ({r.step_min:g}-min)"
        print(f"| {r.connectors:,} × {r.nominal_steps}{step} | {r.lp_steps} | {r.nonzeros:,} | {r.taper}/{r.thermal} "
              f"| {_fmt(r.build_ms)} | {_fmt(r.solve_ms)} | {_fmt(total)} | {_fmt(r.floor_ms)} "
              f"| {total / max(r.floor_ms, 1e-9):.2f}× | {_fmt(r.pulp_build_ms)} | {_fmt(r.pulp_solve_ms)} | {pulp_ratio} |",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100,1000,5000")
    parser.add_argument("--steps", default="1,24,96")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-pulp", action="store_true")
    parser.add_argument("--no-day", action="store_true", help="skip the 54 × 288 (5-minute) row")
    args = parser.parse_args()
    rows = []
    if not args.no_day:
        rows.append(measure(54, 288, 5.0, args.repeats, not args.no_pulp))
        print_table(rows[-1:])
    for size in (int(s) for s in args.sizes.split(",")):
        for steps in (int(s) for s in args.steps.split(",")):
            repeats = args.repeats if size * steps <= 100_000 else 1
            rows.append(measure(size, steps, 15.0, repeats, not args.no_pulp))
            print_table(rows[-1:])
    print()
    print_table(rows)


if __name__ == "__main__":
    main()
