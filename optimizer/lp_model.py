"""The depot LP of DESIGN.md §4, built from arrays into one sparse matrix.

One formulation, two builders downstream (``solver_backend``): HiGHS fed the matrix directly, and PuLP
fed the same rows. Rows that cannot bind are left out (solver-notes.md §2): taper rows only for
sessions that can pass their knee SoC, thermal rows only for batteries whose temperature could reach
the ceiling with everything they still need delivered.

Variables, in this order:
    p[i, t]   grid-side power of session i in step t (kW)
    u[i]      energy still missing at departure (kWh)
    e[k, t]   energy put into battery k before step t, t = 1..H-1 (taper sessions only)
    θ[m, t]   battery temperature of m at the end of step t, t = 0..H-1 (thermal sessions only)
    P̂         site peak (kW), only when the objective prices the peak
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from optimizer.domain import Objective
from optimizer.horizon import FloatArray, Horizon, SiteSeries
from optimizer.infrastructure import CircuitLimits
from optimizer.needs import ResolvedSession

# The early-charging reward per kWh, relative to the objective's 'early' weight. Small enough never to
# trade delivered energy for earliness, large enough that HiGHS sees it; solver-notes.md §3.
EARLY_REWARD_PER_KWH = 1e-2
MIN_NEED_FOR_WEIGHT_KWH = 1.0
INF = math.inf


@dataclass(frozen=True, slots=True)
class RowGroup:
    """A named family of rows; ``first``..``first+count`` in the matrix, one row per ``labels`` entry."""

    kind: str
    first: int
    labels: tuple[str, ...]
    per_step: int  # rows per label (H for time-indexed families, 1 otherwise)


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
    objective_offset: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def columns(self) -> int:
        return int(self.cost.size)

    def p_col(self, session: int, step: int) -> int:
        return session * self.steps + step

    def u_col(self, session: int) -> int:
        return self.sessions * self.steps + session


@dataclass(frozen=True, slots=True)
class SessionArrays:
    """Per-session, per-step data of one plan (sessions × steps)."""

    energy_h: FloatArray  # hours of step t the vehicle is still plugged in (Δ·fraction)
    pmax_kw: FloatArray
    need_kwh: FloatArray
    efficiency: FloatArray
    priority: FloatArray
    temp_ceiling_c: FloatArray  # per session × step: max(θmax, free-cooling trajectory)
    hot_excess_c: FloatArray  # per session: how far the start temperature is above the ceiling


def session_arrays(sessions: list[ResolvedSession], horizon: Horizon, series: SiteSeries) -> SessionArrays:
    n, steps = len(sessions), horizon.steps
    departure = np.array([s.departure_h for s in sessions], dtype=np.float64).reshape(n, 1)
    frac = np.clip((departure - horizon.start_h.reshape(1, steps)) / horizon.length_h.reshape(1, steps), 0.0, 1.0)
    energy_h = frac * horizon.length_h.reshape(1, steps)
    pmax = np.array([s.max_kw for s in sessions], dtype=np.float64).reshape(n, 1) * (frac > 0)
    ceiling = np.full((n, steps), INF)
    hot = np.zeros(n)
    for i, s in enumerate(sessions):
        th = s.thermal
        if not th.is_modelled:
            continue
        free = free_trajectory(s.temp0_c, th.cooling_per_h, horizon.length_h, series.ambient_c)
        ceiling[i] = np.maximum(th.max_temp_c, free)
        hot[i] = max(0.0, s.temp0_c - th.max_temp_c)
    return SessionArrays(
        energy_h=energy_h,
        pmax_kw=pmax,
        need_kwh=np.array([s.need_kwh for s in sessions], dtype=np.float64),
        efficiency=np.array([s.efficiency for s in sessions], dtype=np.float64),
        priority=np.array([s.priority for s in sessions], dtype=np.float64),
        temp_ceiling_c=ceiling,
        hot_excess_c=hot,
    )


def thermal_coefficients(cooling_per_h: float, length_h: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Exact discretisation of dθ/dt = a·P − b(θ − θa) over steps of ``length_h``:
    θ' = θa + α(θ − θa) + a·g·P. Returns (α, g) per step."""
    if cooling_per_h <= 0:
        return np.ones_like(length_h), length_h.copy()
    alpha = np.exp(-cooling_per_h * length_h)
    return alpha, (1.0 - alpha) / cooling_per_h


def free_trajectory(temp0_c: float, cooling_per_h: float, length_h: FloatArray, ambient_c: FloatArray) -> FloatArray:
    """Temperature at the end of each step with no charging."""
    alpha, _ = thermal_coefficients(cooling_per_h, length_h)
    out = np.empty_like(length_h)
    theta = temp0_c
    for t in range(length_h.size):
        theta = ambient_c[t] + alpha[t] * (theta - ambient_c[t])
        out[t] = theta
    return out


def build_lp(
    sessions: list[ResolvedSession],
    horizon: Horizon,
    series: SiteSeries,
    limits: CircuitLimits,
    objective: Objective,
    uncontrolled_kw: float,
    demand_charge_per_kw: float = 0.0,
    arrays: SessionArrays | None = None,
) -> LinearProgram:
    n, steps = len(sessions), horizon.steps
    arr = arrays if arrays is not None else session_arrays(sessions, horizon, series)
    eta = arr.efficiency.reshape(n, 1)
    energy_coef = eta * arr.energy_h  # kWh into the battery per kW in step t

    # ---- which sessions need taper / thermal rows
    full_energy = (arr.pmax_kw * energy_coef).sum(axis=1)
    deliverable = np.minimum(arr.need_kwh, full_energy)
    taper_idx = []
    thermal_idx = []
    for i, s in enumerate(sessions):
        if s.knee_soc < 1.0 and s.soc0 + deliverable[i] / s.battery_kwh > s.knee_soc + 1e-9 and arr.pmax_kw[i].max() > 0:
            taper_idx.append(i)
        th = s.thermal
        if th.is_modelled and arr.pmax_kw[i].max() > 0:
            bound = max(s.temp0_c, float(series.ambient_c.max())) + th.heating_c_per_kwh * deliverable[i] / max(s.efficiency, 1e-9)
            if bound > th.max_temp_c - 1e-9:
                thermal_idx.append(i)
    taper = np.array(taper_idx, dtype=np.int64)
    thermal = np.array(thermal_idx, dtype=np.int64)
    n_tap, n_th = taper.size, thermal.size

    price_on = objective.price > 0 and float(series.price_per_kwh.max()) > 0
    peak_weight = objective.peak + objective.price * demand_charge_per_kw
    peak_on = peak_weight > 0

    # ---- columns
    n_p = n * steps
    off_u = n_p
    off_e = off_u + n
    n_e = n_tap * max(steps - 1, 0)
    off_th = off_e + n_e
    n_th_cols = n_th * steps
    peak_col = off_th + n_th_cols if peak_on else None
    n_cols = off_th + n_th_cols + (1 if peak_on else 0)

    cost = np.zeros(n_cols)
    col_lb = np.zeros(n_cols)
    col_ub = np.full(n_cols, INF)

    end_h = horizon.end_h
    mid = horizon.start_h + horizon.length_h / 2.0
    early = objective.early * EARLY_REWARD_PER_KWH * (1.0 - mid / max(end_h, 1e-9))
    p_cost = -early.reshape(1, steps) * energy_coef
    if price_on:
        p_cost = p_cost + objective.price * series.price_per_kwh.reshape(1, steps) * arr.energy_h
    cost[:n_p] = p_cost.ravel()
    col_ub[:n_p] = arr.pmax_kw.ravel()
    cost[off_u:off_e] = objective.unmet * arr.priority / np.maximum(arr.need_kwh, MIN_NEED_FOR_WEIGHT_KWH)
    if n_th:
        ceil = arr.temp_ceiling_c[thermal]  # n_th × steps
        col_ub[off_th : off_th + n_th_cols] = ceil.ravel()
        col_lb[off_th : off_th + n_th_cols] = -INF
    if peak_col is not None:
        cost[peak_col] = peak_weight

    rows: list[NDArray[np.int64]] = []
    cols: list[NDArray[np.int64]] = []
    vals: list[FloatArray] = []
    row_lb: list[FloatArray] = []
    row_ub: list[FloatArray] = []
    groups: list[RowGroup] = []
    next_row = 0

    def add(r: NDArray[np.int64], c: NDArray[np.int64], v: FloatArray) -> None:
        rows.append(r)
        cols.append(c)
        vals.append(v)

    labels = tuple(f"{s.charger.id}/{s.connector_id}" for s in sessions)
    p_index = np.arange(n_p, dtype=np.int64).reshape(n, steps)

    # ---- departure energy: Σ_t η E p + u = need
    add(np.repeat(np.arange(n, dtype=np.int64), steps), p_index.ravel(), energy_coef.ravel())
    add(np.arange(n, dtype=np.int64), off_u + np.arange(n, dtype=np.int64), np.ones(n))
    row_lb.append(arr.need_kwh.copy())
    row_ub.append(arr.need_kwh.copy())
    groups.append(RowGroup("departure_energy", next_row, labels, 1))
    next_row += n

    # ---- site import limit per step
    site_rhs = series.import_limit_kw - series.base_load_kw - uncontrolled_kw
    add(
        next_row + np.tile(np.arange(steps, dtype=np.int64), n),
        p_index.ravel(),
        np.ones(n_p),
    )
    row_lb.append(np.full(steps, -INF))
    row_ub.append(np.maximum(site_rhs, 0.0))
    groups.append(RowGroup("site_import_limit", next_row, ("site",), steps))
    next_row += steps

    # ---- circuits: kron(coef, I_H)
    if limits.rows:
        block = sp.kron(limits.coef, sp.identity(steps, format="csr"), format="coo")
        add(next_row + block.row.astype(np.int64), block.col.astype(np.int64), block.data.astype(np.float64))
        rhs = np.repeat(np.maximum(limits.rhs, 0.0), steps)
        row_lb.append(np.full(limits.rows * steps, -INF))
        row_ub.append(rhs)
        for r, name in enumerate(limits.names):
            kind, _, rest = name.partition("[")
            groups.append(RowGroup(kind, next_row + r * steps, (rest.rstrip("]"),), steps))
        next_row += limits.rows * steps

    # ---- taper: e[k,t] = e[k,t-1] + ηE p[t-1];  p[t] + pmax/(cap(1-knee)) e[t] <= pmax(1-soc0)/(1-knee)
    if n_tap:
        tap_labels = []
        for k, i in enumerate(taper):
            s = sessions[int(i)]
            tap_labels.append(labels[int(i)])
            slope = s.max_kw / (s.battery_kwh * (1.0 - s.knee_soc))
            head = s.max_kw * (1.0 - s.soc0) / (1.0 - s.knee_soc)
            # step 0 needs no row: it is a column bound
            col_ub[p_index[i, 0]] = min(col_ub[p_index[i, 0]], max(head, 0.0))
            if steps > 1:
                e_cols = off_e + k * (steps - 1) + np.arange(steps - 1, dtype=np.int64)  # e at t = 1..H-1
                # recurrence rows: e[t] - e[t-1] - ηE[t-1] p[t-1] = 0
                base = next_row + 2 * k * (steps - 1)
                rec_rows = base + np.arange(steps - 1, dtype=np.int64)
                add(rec_rows, e_cols, np.ones(steps - 1))
                if steps > 2:
                    add(rec_rows[1:], e_cols[:-1], -np.ones(steps - 2))
                add(rec_rows, p_index[i, : steps - 1], -energy_coef[i, : steps - 1])
                # taper rows for t = 1..H-1
                tap_rows = base + (steps - 1) + np.arange(steps - 1, dtype=np.int64)
                add(tap_rows, p_index[i, 1:], np.ones(steps - 1))
                add(tap_rows, e_cols, np.full(steps - 1, slope))
                row_lb.append(np.zeros(steps - 1))
                row_ub.append(np.zeros(steps - 1))
                row_lb.append(np.full(steps - 1, -INF))
                row_ub.append(np.full(steps - 1, head))
        if steps > 1:
            groups.append(RowGroup("soc_taper_state", next_row, tuple(tap_labels), 2 * (steps - 1)))
            next_row += 2 * n_tap * (steps - 1)

    # ---- thermal: θ[t] - α θ[t-1] - a g p[t] = θa (1-α)  (θ[-1] = θ0 moves to the right-hand side)
    if n_th:
        th_labels = []
        for m, i in enumerate(thermal):
            s = sessions[int(i)]
            th_labels.append(labels[int(i)])
            alpha, gain = thermal_coefficients(s.thermal.cooling_per_h, horizon.length_h)
            frac = np.divide(arr.energy_h[i], horizon.length_h)
            th_cols = off_th + m * steps + np.arange(steps, dtype=np.int64)
            th_rows = next_row + m * steps + np.arange(steps, dtype=np.int64)
            add(th_rows, th_cols, np.ones(steps))
            if steps > 1:
                add(th_rows[1:], th_cols[:-1], -alpha[1:])
            add(th_rows, p_index[i], -s.thermal.heating_c_per_kwh * gain * frac)
            rhs_t = series.ambient_c * (1.0 - alpha)
            rhs_t = rhs_t.copy()
            rhs_t[0] += alpha[0] * s.temp0_c
            row_lb.append(rhs_t)
            row_ub.append(rhs_t.copy())
        groups.append(RowGroup("battery_temperature_state", next_row, tuple(th_labels), steps))
        next_row += n_th * steps

    # ---- peak: Σ_i p[i,t] - P̂ <= -(base + uncontrolled)
    if peak_col is not None:
        add(next_row + np.tile(np.arange(steps, dtype=np.int64), n), p_index.ravel(), np.ones(n_p))
        add(next_row + np.arange(steps, dtype=np.int64), np.full(steps, peak_col, dtype=np.int64), -np.ones(steps))
        row_lb.append(np.full(steps, -INF))
        row_ub.append(-(series.base_load_kw + uncontrolled_kw))
        groups.append(RowGroup("site_peak", next_row, ("site",), steps))
        next_row += steps

    matrix = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(next_row, n_cols),
        dtype=np.float64,
    )
    matrix.sum_duplicates()
    return LinearProgram(
        cost=cost,
        col_lb=col_lb,
        col_ub=col_ub,
        matrix=matrix,
        row_lb=np.concatenate(row_lb),
        row_ub=np.concatenate(row_ub),
        groups=groups,
        sessions=n,
        steps=steps,
        taper_sessions=taper,
        thermal_sessions=thermal,
        peak_col=peak_col,
    )
