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

from optimizer.domain import Objective, ThermalModel
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
    arrival_step,
    taper_window,
    thermal_window,
)
from optimizer.lp_stress import high_soc_block, temperature_cost
from optimizer.needs import ResolvedSession
from optimizer.thermal import free_trajectory, trajectories

__all__ = ["THERMAL_MARGIN_C", "LinearProgram", "RowGroup", "SessionArrays", "arrival_step", "build_lp",
           "session_arrays", "taper_bound_kw"]

# Plan this far below a battery's ceiling: measured temperatures are noisy and the vehicle's own power
# varies inside a step (the benchmark's bus depot overshot by 0.1-0.3 °C without it).
THERMAL_MARGIN_C = 0.5
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


@dataclass(frozen=True, slots=True)
class SessionArrays:
    """Per-session, per-step data of one plan (sessions × steps)."""

    energy_h: FloatArray  # hours of step t the vehicle is still plugged in (Δ·fraction)
    pmax_kw: FloatArray
    need_kwh: FloatArray
    efficiency: FloatArray
    priority: FloatArray
    temp_ceiling_c: FloatArray  # per session × step: max(θmax, free-cooling trajectory)
    extra_kwh: FloatArray | None = None  # None: zeros
    first_step_max_kw: FloatArray | None = None  # None: pmax_kw[:, 0]
    # Vehicles that take less than their charger's minimum current in step 0 (the tail of a taper): the LP
    # gives them nothing then; they get the minimum only from capacity nobody else was planned
    # (strategies.base.give_minimum_from_spare). None: no such vehicle.
    below_minimum: NDArray[np.bool_] | None = None
    margin_kwh: FloatArray | None = None  # None: zeros
    # Sessions whose need comes from a SoC reading or the vehicle's own figure (needs.py), not from the assumed
    # arrival SoC: only these can be told to be nearly finished. None: all.
    need_read: NDArray[np.bool_] | None = None


def session_arrays(sessions: list[ResolvedSession], horizon: Horizon, series: SiteSeries,
                   caps_kw: FloatArray | None = None) -> SessionArrays:
    """``caps_kw`` (sessions × steps, ``inf`` = none): limits set outside depotctl (``optimizer.external_limits``)."""
    n, steps = len(sessions), horizon.steps
    departure = np.array([s.departure_h for s in sessions], dtype=np.float64).reshape(n, 1)
    arrival = np.array([s.arrival_h for s in sessions], dtype=np.float64).reshape(n, 1)
    start, length = horizon.start_h.reshape(1, steps), horizon.length_h.reshape(1, steps)
    energy_h = np.maximum(np.clip(departure - start, 0.0, length) - np.clip(arrival - start, 0.0, length), 0.0)
    frac = energy_h / length
    pmax = np.array([s.max_kw for s in sessions], dtype=np.float64).reshape(n, 1) * (frac > 0)
    if caps_kw is not None:
        pmax = np.minimum(pmax, caps_kw)
    need = np.array([s.need_kwh for s in sessions], dtype=np.float64)
    extra = np.array([s.extra_kwh for s in sessions], dtype=np.float64)
    # Step 0: what the vehicle will really take (taper, what it still needs). When that is below the
    # charger's minimum current, the charger must be commanded its minimum and the vehicle draws only what
    # it takes: the site would budget the minimum for less. On a congested site that capacity delivers more
    # to any other vehicle (the congested benchmark day lost 32 kWh this way), so such a vehicle is left
    # out of step 0 and offered its minimum only from capacity the plan leaves unused.
    below_minimum = np.zeros(n, dtype=np.bool_)
    first_max = pmax[:, 0].copy()
    for i, s in enumerate(sessions):
        if first_max[i] <= 0:
            continue
        if caps_kw is not None and caps_kw[i, 0] < s.min_kw - 1e-9:
            first_max[i] = 0.0  # an external limit below the minimum current: the charger cannot hold it, it stops
            continue
        accept = first_max[i]
        plugged_h = energy_h[i, 0] * s.efficiency
        if s.knee_soc < 1.0:
            accept = min(accept, taper_bound_kw(s, s.soc0, plugged_h))
        if plugged_h > 0:
            accept = min(accept, (need[i] + extra[i]) / plugged_h)
        charger_max = s.charger.max_power_kw_for(s.phases) if s.max_kw > 0 else 0.0
        if 0.0 < accept < s.min_kw <= charger_max:
            below_minimum[i] = True
            first_max[i] = 0.0
        else:
            first_max[i] = min(first_max[i], max(accept, 0.0))
    ceiling = np.full((n, steps), INF)
    present: list[int] = []  # modelled and plugged in now: their free cooling in one pass
    for i, s in enumerate(sessions):
        th = s.thermal
        if not th.is_modelled:
            continue
        a0 = arrival_step(s, horizon)
        if a0 == 0:
            present.append(i)
            continue
        free = free_trajectory(s.temp0_c, th.cooling_per_h, horizon.length_h[a0:], series.ambient_c[a0:])
        ceiling[i, a0:] = np.maximum(th.max_temp_c - THERMAL_MARGIN_C, free)
    if present:
        models = [ThermalModel(math.inf, 0.0, sessions[i].thermal.cooling_per_h) for i in present]
        free_all = trajectories(models, np.array([sessions[i].temp0_c for i in present], dtype=np.float64),
                                np.zeros((len(present), steps)), horizon.length_h, series.ambient_c,
                                np.ones((len(present), steps)))
        top_c = np.array([sessions[i].thermal.max_temp_c for i in present], dtype=np.float64).reshape(-1, 1)
        ceiling[present] = np.maximum(top_c - THERMAL_MARGIN_C, free_all)
    return SessionArrays(
        energy_h=energy_h,
        pmax_kw=pmax,
        need_kwh=need,
        extra_kwh=extra,
        first_step_max_kw=first_max,
        below_minimum=below_minimum,
        margin_kwh=np.array([s.margin_kwh for s in sessions], dtype=np.float64),
        efficiency=np.array([s.efficiency for s in sessions], dtype=np.float64),
        priority=np.array([s.priority for s in sessions], dtype=np.float64),
        temp_ceiling_c=ceiling,
        need_read=np.array([s.uncertainty is None or not s.uncertainty.estimated for s in sessions], dtype=np.bool_),
    )


def taper_bound_kw(s: ResolvedSession, soc_start: float, battery_h: float) -> float:
    """Most power over a step of ``battery_h`` (hours × efficiency) starting at ``soc_start`` with the
    taper judged at the step's *end*: p ≤ pmax(1 − soc_end)/(1 − knee). Judging it at the start would
    let long steps overfill the battery, and make the LP prefer to charge late."""
    if s.knee_soc >= 1.0:
        return s.max_kw
    denom = (1.0 - s.knee_soc) + s.max_kw * battery_h / s.battery_kwh
    return min(s.max_kw, max(0.0, s.max_kw * (1.0 - soc_start) / denom))


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
