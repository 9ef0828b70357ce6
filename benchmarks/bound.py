"""The hindsight bound: what no strategy that respects the site's limits and the batteries' ceilings can beat.

One LP over the whole day with perfect knowledge of every arrival, true SoC, battery and departure, on the
optimizer's own model (``lp_model.build_lp``), with everything a real run must obey and nothing it need not:
no minimum current, no rounding, no sensor noise, the taper judged at each step's start (acceptance only falls
as the SoC rises, so every real charging path satisfies it) and the battery ceilings without the planning
margin. Its optimum is a true upper bound of the energy any limit-respecting run delivers; a second objective
on the same rows (the LP relaxation of "number of sessions met") bounds the sessions met. Its replay through the
plant is another matter: that is the ``offline_optimal`` strategy, a row of the table like the others.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from benchmarks.metrics import MET_TOLERANCE_KWH
from benchmarks.offline import OFFLINE_TIME_LIMIT_S, OfflineOptimal, exact_ambient
from benchmarks.plant import PlantOptions
from benchmarks.scenario import Scenario
from optimizer.domain import Objective, Snapshot
from optimizer.horizon import Horizon, site_series
from optimizer.infrastructure import compile_limits
from optimizer.lp_model import THERMAL_MARGIN_C, LinearProgram, build_lp, session_arrays
from optimizer.solver_backend import HighsSolver

# Every kWh alike, nothing else priced: the optimum is the most energy.
ENERGY_OBJECTIVE = Objective(unmet=1.0, early=0.0, price=0.0, peak=0.0, unmet_per="kwh")


@dataclass(frozen=True, slots=True)
class HindsightBound:
    scenario: str
    energy_kwh: float  # most battery-side energy any limit-respecting run delivers (each session capped at its request)
    energy_pct: float  # of the energy requested
    sessions_met: float  # most sessions any such run meets (an LP relaxation: may be fractional)
    sessions_met_pct: float
    objective: float  # the energy LP's optimum (kWh left undelivered)
    solve_ms: float


def bound_lp(scenario: Scenario, options: PlantOptions | None = None) -> LinearProgram:
    """The day's relaxed LP, from the first step, every session known (maximises energy)."""
    opts = options or PlantOptions()
    site = scenario.site
    steps = scenario.steps
    step_h = scenario.step_s / 3600.0
    now = scenario.start
    horizon = Horizon(start=now, length_h=np.full(steps, step_h), start_h=np.arange(steps, dtype=np.float64) * step_h)
    snapshot = Snapshot(time=now, ambient_c=scenario.ambient_at(now), ambient_forecast_c=scenario.ambient_forecast(now))
    series = exact_ambient(site_series(site, snapshot, horizon), scenario, 0)
    hindsight = OfflineOptimal(scenario, opts)
    sessions = [hindsight.resolved_session(site, s, r, now, hindsight.available_h(s)) for r, s in enumerate(scenario.sessions)]
    arrays = session_arrays(sessions, horizon, series)
    # Step 0 free of the taper and minimum-current rules of a live tick; the ceilings without the planning margin.
    arrays = replace(arrays, first_step_max_kw=arrays.pmax_kw[:, 0].copy(), below_minimum=None,
                     temp_ceiling_c=arrays.temp_ceiling_c + THERMAL_MARGIN_C)
    limits = compile_limits(site, sessions)
    lp = build_lp(sessions, horizon, series, limits, ENERGY_OBJECTIVE, 0.0, 0.0, arrays, 0.0, taper_at_step_start=True)
    # Every undelivered kWh costs exactly 1, whatever tie-breaks the planning objective adds.
    off_u = lp.sessions * lp.steps
    lp.cost[:] = 0.0
    lp.cost[off_u : off_u + lp.sessions] = 1.0
    return lp


def sessions_met_lp(lp: LinearProgram, need_kwh: np.ndarray) -> LinearProgram:
    """``lp`` with one more column z[i] ∈ [0, 1] per session, u[i] + (need − tolerance)·z[i] ≤ need, and the
    objective −Σ z: a met session (less than the tolerance missing) can set z = 1, so the optimum bounds the count."""
    n = lp.sessions
    off_u = n * lp.steps
    met_need = np.maximum(need_kwh - MET_TOLERANCE_KWH, 0.0)
    z_cols = lp.columns + np.arange(n)
    rows = sp.csr_matrix(
        (np.concatenate([np.ones(n), met_need]),
         (np.concatenate([np.arange(n), np.arange(n)]), np.concatenate([off_u + np.arange(n), z_cols]))),
        shape=(n, lp.columns + n),
    )
    matrix = sp.vstack([sp.hstack([lp.matrix, sp.csr_matrix((lp.matrix.shape[0], n))]), rows], format="csr")
    cost = np.concatenate([np.zeros(lp.columns), -np.ones(n)])
    return replace(
        lp,
        cost=cost,
        col_lb=np.concatenate([lp.col_lb, np.zeros(n)]),
        col_ub=np.concatenate([lp.col_ub, np.ones(n)]),
        matrix=matrix,
        row_lb=np.concatenate([lp.row_lb, np.full(n, -np.inf)]),
        row_ub=np.concatenate([lp.row_ub, need_kwh]),
        objective_offset=0.0,
    )


def hindsight_bound(scenario: Scenario, options: PlantOptions | None = None) -> HindsightBound:
    """Solve both bounds of ``scenario`` (the plant's ``thermal_mismatch`` decides the true batteries)."""
    started = time.perf_counter()
    requested = np.array([s.energy_kwh for s in scenario.sessions], dtype=np.float64)
    n = requested.size
    if n == 0:
        return HindsightBound(scenario.name, 0.0, 100.0, 0.0, 100.0, 0.0, 0.0)
    lp = bound_lp(scenario, options)
    solver = HighsSolver(time_limit_s=OFFLINE_TIME_LIMIT_S)
    solver.load(lp)
    energy = solver.solve()
    off_u = n * lp.steps
    undelivered = energy.x[off_u : off_u + n]
    energy_kwh = float(np.minimum(requested - undelivered, requested).sum())
    met = HighsSolver(time_limit_s=OFFLINE_TIME_LIMIT_S)
    met.load(sessions_met_lp(lp, requested))
    met_count = min(float(n), -met.solve().objective)
    total = float(requested.sum())
    return HindsightBound(
        scenario=scenario.name,
        energy_kwh=energy_kwh,
        energy_pct=100.0 * energy_kwh / total if total > 0 else 100.0,
        sessions_met=met_count,
        sessions_met_pct=100.0 * met_count / n,
        objective=energy.objective,
        solve_ms=(time.perf_counter() - started) * 1000.0,
    )
