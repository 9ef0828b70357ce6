"""The depot LP of docs/lp.md, built from arrays into one sparse matrix.

One formulation, two builders downstream (``solver_backend``): HiGHS fed the matrix directly, and PuLP
fed the same rows. ``build_lp`` lays out the columns and their costs (``lp_columns``), then writes one row
family after another (``lp_rows``). Rows that cannot bind are left out (docs/lp.md, "What keeps it fast"):
taper rows only for sessions that can pass their knee SoC, thermal rows only for batteries whose temperature
could reach the ceiling with everything they still need delivered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from optimizer.horizon import FloatArray, Horizon, SiteSeries
from optimizer.infrastructure import CircuitLimits
from optimizer.lp_columns import EARLY_REWARD_PER_KWH, column_costs, column_layout
from optimizer.lp_rows import (
    RowBuilder,
    RowGroup,
    add_circuit_rows,
    add_departure_rows,
    add_high_soc_rows,
    add_peak_rows,
    add_site_rows,
    add_taper_rows,
    add_thermal_rows,
    taper_window,
    thermal_window,
)
from optimizer.lp_sessions import THERMAL_MARGIN_C, SessionArrays, arrival_step, session_arrays, taper_bound_kw
from optimizer.lp_stress import high_soc_block, temperature_cost
from optimizer.needs import ResolvedSession
from optimizer.site_model import Objective

# The session arrays live in lp_sessions; they are handed on here for the callers that build a plan in one import.
__all__ = ["THERMAL_MARGIN_C", "LinearProgram", "RowGroup", "SessionArrays", "arrival_step", "build_lp",
           "session_arrays", "taper_bound_kw"]

INF = math.inf


@dataclass(slots=True)
class LinearProgram:
    """min c·x  s.t.  row_lb <= A x <= row_ub,  col_lb <= x <= col_ub."""

    cost: FloatArray
    col_lb: FloatArray
    col_ub: FloatArray
    matrix: sp.csr_matrix
    row_lb: FloatArray
    row_ub: FloatArray
    groups: list[RowGroup]
    sessions: int
    steps: int
    taper_sessions: NDArray[np.int64]
    thermal_sessions: NDArray[np.int64]
    peak_col: int | None
    theta_cols: list[tuple[int, int, NDArray[np.int64]]] = field(default_factory=list)
    objective_offset: float = 0.0
    taper_windows: tuple[tuple[int, int, int], ...] = ()  # (session, first step, last step) of each taper window

    @property
    def columns(self) -> int:
        return int(self.cost.size)


def build_lp(
    sessions: list[ResolvedSession],
    horizon: Horizon,
    series: SiteSeries,
    limits: CircuitLimits,
    objective: Objective,
    uncontrolled_kw: float,
    demand_charge_per_kw: float = 0.0,
    arrays: SessionArrays | None = None,
    peak_so_far_kw: float = 0.0,
    *,
    taper_at_step_start: bool = False,
) -> LinearProgram:
    """``taper_at_step_start``: judge the taper at each step's start SoC, which every real charging path obeys
    (acceptance only falls as the SoC rises): a relaxation, for the hindsight bound (benchmarks/bound.py)."""
    n, steps = len(sessions), horizon.steps
    arr = arrays if arrays is not None else session_arrays(sessions, horizon, series)
    first_max = arr.first_step_max_kw if arr.first_step_max_kw is not None else arr.pmax_kw[:, 0].copy()
    energy_coef = arr.efficiency.reshape(n, 1) * arr.energy_h  # kWh into the battery per kW (commanded) in step t
    margin = arr.margin_kwh if arr.margin_kwh is not None else np.zeros(n)
    planned_kwh = arr.need_kwh + margin  # the most the rows below may see delivered
    taper_win, thermal_win = _row_windows(sessions, horizon, series, arr, energy_coef, planned_kwh)

    price_on = objective.price > 0 and float(series.price_per_kwh.max()) > 0
    peak_weight = objective.peak + objective.price * demand_charge_per_kw
    p_index = np.arange(n * steps, dtype=np.int64).reshape(n, steps)
    high_soc = high_soc_block(sessions, arr.pmax_kw, energy_coef, horizon, p_index, objective.stress_high_soc)
    layout = column_layout(n, steps, thermal_win, high_soc.columns if high_soc is not None else 0, peak_weight > 0, margin)

    # Rewarding only the dispatched step keeps the LP non-degenerate (docs/lp.md, "What keeps it fast"): a reward
    # falling along the horizon made it 10x slower, and later steps are re-planned every tick anyway.
    early = np.zeros(steps)
    early[0] = objective.early * EARLY_REWARD_PER_KWH
    p_cost = -early.reshape(1, steps) * energy_coef
    if price_on:
        p_cost = p_cost + objective.price * series.price_per_kwh.reshape(1, steps) * arr.energy_h
    if objective.stress_temperature > 0:
        p_cost = p_cost + temperature_cost(sessions, horizon, series, energy_coef, objective.stress_temperature)
    columns = column_costs(layout, arr, p_cost, first_max, objective, high_soc, peak_weight, peak_so_far_kw)

    labels = tuple(f"{s.charger.id}/{s.connector_id}" for s in sessions)
    rows = RowBuilder()
    add_departure_rows(rows, layout, energy_coef, planned_kwh, labels)
    add_site_rows(rows, layout, series.import_limit_kw - series.base_load_kw - uncontrolled_kw)
    add_circuit_rows(rows, limits, steps)
    add_taper_rows(rows, sessions, taper_win, p_index, energy_coef, labels, taper_at_step_start)
    add_thermal_rows(rows, sessions, layout, arr, horizon, series, labels)
    add_high_soc_rows(rows, layout, high_soc, labels)
    add_peak_rows(rows, layout, series.base_load_kw + uncontrolled_kw)
    return LinearProgram(
        cost=columns.cost,
        col_lb=columns.lower,
        col_ub=columns.upper,
        matrix=rows.matrix(layout.columns),
        row_lb=np.concatenate(rows.row_lb),
        row_ub=np.concatenate(rows.row_ub),
        groups=rows.groups,
        sessions=n,
        steps=steps,
        taper_sessions=np.array([w[0] for w in taper_win], dtype=np.int64),
        thermal_sessions=np.array([w[0] for w in thermal_win], dtype=np.int64),
        peak_col=layout.peak_col,
        theta_cols=layout.theta_cols,
        taper_windows=tuple(taper_win),
    )


def _row_windows(sessions: list[ResolvedSession], horizon: Horizon, series: SiteSeries, arr: SessionArrays,
                 energy_coef: FloatArray, planned_kwh: FloatArray) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    """(session, first, last) of the taper rows and of the thermal rows that can bind."""
    ambient_max = float(series.ambient_c.max())
    step_end_h = horizon.start_h + horizon.length_h
    taper_win: list[tuple[int, int, int]] = []
    thermal_win: list[tuple[int, int, int]] = []
    for i, s in enumerate(sessions):
        tw = taper_window(s, arr.pmax_kw[i], energy_coef[i], float(planned_kwh[i]))
        if tw is not None:
            taper_win.append((i, *tw))
        hw = thermal_window(s, arr.pmax_kw[i], step_end_h, float(planned_kwh[i]), ambient_max, arr.temp_ceiling_c[i])
        if hw is not None:
            thermal_win.append((i, *hw))
    return taper_win, thermal_win
