"""The depot LP of DESIGN.md §4, built from arrays into one sparse matrix.

One formulation, two builders downstream (``solver_backend``): HiGHS fed the matrix directly, and PuLP
fed the same rows. Rows that cannot bind are left out (solver-notes.md §2): taper rows only for
sessions that can pass their knee SoC, thermal rows only for batteries whose temperature could reach
the ceiling with everything they still need delivered.

Variables, in this order:
    p[i, t]   grid-side power of session i in step t (kW; in step 0 the commanded power)
    u[i]      energy still missing at departure (kWh)
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
# Plan this far below a battery's ceiling: measured temperatures are noisy and the vehicle's own power
# varies inside a step (the benchmark's bus depot overshot by 0.1-0.3 °C without it).
THERMAL_MARGIN_C = 0.5
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
    theta_cols: list[tuple[int, int, NDArray[np.int64]]] = field(default_factory=list)
    objective_offset: float = 0.0

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
    for i, s in enumerate(sessions):
        th = s.thermal
        if not th.is_modelled:
            continue
        a0 = arrival_step(s, horizon)
        free = free_trajectory(s.temp0_c, th.cooling_per_h, horizon.length_h[a0:], series.ambient_c[a0:])
        ceiling[i, a0:] = np.maximum(th.max_temp_c - THERMAL_MARGIN_C, free)
    return SessionArrays(
        energy_h=energy_h,
        pmax_kw=pmax,
        need_kwh=need,
        extra_kwh=extra,
        first_step_max_kw=first_max,
        below_minimum=below_minimum,
        efficiency=np.array([s.efficiency for s in sessions], dtype=np.float64),
        priority=np.array([s.priority for s in sessions], dtype=np.float64),
        temp_ceiling_c=ceiling,
    )


def taper_bound_kw(s: ResolvedSession, soc_start: float, battery_h: float) -> float:
    """Most power over a step of ``battery_h`` (hours × efficiency) starting at ``soc_start`` with the
    taper judged at the step's *end*: p ≤ pmax(1 − soc_end)/(1 − knee). Judging it at the start would
    let long steps overfill the battery, and make the LP prefer to charge late."""
    if s.knee_soc >= 1.0:
        return s.max_kw
    denom = (1.0 - s.knee_soc) + s.max_kw * battery_h / s.battery_kwh
    return min(s.max_kw, max(0.0, s.max_kw * (1.0 - soc_start) / denom))


def arrival_step(s: ResolvedSession, horizon: Horizon) -> int:
    """The step in which the vehicle arrives (0 when it is plugged in now)."""
    if s.arrival_h <= 0:
        return 0
    index = int(np.searchsorted(horizon.start_h, s.arrival_h, side="right")) - 1
    return min(max(index, 0), horizon.steps - 1)


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


def _taper_window(s: ResolvedSession, pmax: FloatArray, energy_coef: FloatArray, need_kwh: float) -> tuple[int, int] | None:
    """Steps (first, last) where the taper row can bind: from the first step the knee can be passed
    at full power to the last plugged-in step. None when the knee cannot be reached at all."""
    if s.knee_soc >= 1.0 or pmax.max() <= 0:
        return None
    cumulative = np.minimum(np.cumsum(pmax * energy_coef), need_kwh)  # most energy stored by end of t
    soc_upper = s.soc0 + cumulative / s.battery_kwh  # at the end of t, where the row judges the taper
    plugged = np.nonzero(pmax > 0)[0]
    last = int(plugged[-1])
    reach = np.nonzero(soc_upper > s.knee_soc + 1e-9)[0]
    if reach.size == 0:
        return None
    first = max(1, int(reach[0]))  # step 0 is a column bound
    return (first, last) if first <= last else None


def _thermal_window(
    s: ResolvedSession, pmax: FloatArray, end_h: FloatArray, need_kwh: float, ambient_max_c: float, ceiling: FloatArray
) -> tuple[int, int] | None:
    """Steps (first, last) where the temperature ceiling can bind, from a rigorous upper bound. With
    A = the warmest ambient, P = the most power and E = the most energy, every schedule keeps
    θ(τ) ≤ max(θ0, A) + (heating·P/cooling)·(1 − exp(−cooling·min(E/P, τ)))
    (θ' = heating·p − cooling·(θ − θa) ≤ heating·p − cooling·(θ − A); the worst p puts all its energy
    last). Cooling is what makes it tight: ``heating·E`` alone kept rows for batteries that cannot bind."""
    th = s.thermal
    top_kw = float(pmax.max())
    if not th.is_modelled or top_kw <= 0:
        return None
    energy_kwh = need_kwh / max(s.efficiency, 1e-9)
    heat_time_h = np.minimum(energy_kwh / top_kw, end_h)
    if th.cooling_per_h > 0:
        rise = th.heating_c_per_kwh * top_kw / th.cooling_per_h * (1.0 - np.exp(-th.cooling_per_h * heat_time_h))
    else:
        rise = th.heating_c_per_kwh * top_kw * heat_time_h
    upper = max(s.temp0_c, ambient_max_c) + rise
    plugged = np.nonzero(pmax > 0)[0]
    last = int(plugged[-1])
    can = np.nonzero(upper > ceiling - 1e-9)[0]
    if can.size == 0 or int(can[0]) > last:
        return None
    return int(can[0]), last


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
) -> LinearProgram:
    n, steps = len(sessions), horizon.steps
    arr = arrays if arrays is not None else session_arrays(sessions, horizon, series)
    # The estimated-SoC extra energy (arr.extra_kwh) is not in the LP: as a second, lower-weighted
    # tranche it made 500-session ticks 6x slower. The plan gives it first-step capacity nobody else
    # wants instead (strategies.base.fill_spare_capacity).
    first_max = arr.first_step_max_kw if arr.first_step_max_kw is not None else arr.pmax_kw[:, 0].copy()
    eta = arr.efficiency.reshape(n, 1)
    energy_coef = eta * arr.energy_h  # kWh into the battery per kW (commanded) in step t
    ambient_max = float(series.ambient_c.max())
    step_end_h = horizon.start_h + horizon.length_h

    # ---- which sessions need taper / thermal rows, and over which steps
    taper_win: list[tuple[int, int, int]] = []  # (session, first, last)
    thermal_win: list[tuple[int, int, int]] = []
    for i, s in enumerate(sessions):
        # Only the known need decides whether taper rows are worth their cost; the estimated-SoC tranche
        # is a guess, and tapering rows for it made large sites 5x slower to solve.
        tw = _taper_window(s, arr.pmax_kw[i], energy_coef[i], float(arr.need_kwh[i]))
        if tw is not None:
            taper_win.append((i, *tw))
        hw = _thermal_window(
            s, arr.pmax_kw[i], step_end_h, float(arr.need_kwh[i]), ambient_max, arr.temp_ceiling_c[i]
        )
        if hw is not None:
            thermal_win.append((i, *hw))
    taper = np.array([w[0] for w in taper_win], dtype=np.int64)
    thermal = np.array([w[0] for w in thermal_win], dtype=np.int64)

    price_on = objective.price > 0 and float(series.price_per_kwh.max()) > 0
    peak_weight = objective.peak + objective.price * demand_charge_per_kw
    peak_on = peak_weight > 0

    # ---- columns
    n_p = n * steps
    off_u = n_p
    off_th = off_u + n
    n_th_cols = sum(last - first + 1 for _, first, last in thermal_win)
    peak_col = off_th + n_th_cols if peak_on else None
    n_cols = off_th + n_th_cols + (1 if peak_on else 0)

    cost = np.zeros(n_cols)
    col_lb = np.zeros(n_cols)
    col_ub = np.full(n_cols, INF)

    # Rewarding only the dispatched step keeps the LP non-degenerate (solver-notes.md §3): a reward
    # falling along the horizon made it 10x slower, and later steps are re-planned every tick anyway.
    early = np.zeros(steps)
    early[0] = objective.early * EARLY_REWARD_PER_KWH
    p_cost = -early.reshape(1, steps) * energy_coef
    if price_on:
        p_cost = p_cost + objective.price * series.price_per_kwh.reshape(1, steps) * arr.energy_h
    cost[:n_p] = p_cost.ravel()
    col_ub[:n_p] = arr.pmax_kw.ravel()
    col_ub[np.arange(n, dtype=np.int64) * steps] = first_max
    need_weight = np.maximum(arr.need_kwh, MIN_NEED_FOR_WEIGHT_KWH)
    if objective.unmet_per == "kwh":
        # Every kWh alike, scaled by the mean need so the weight stays comparable to price and peak terms.
        need_weight = np.full(n, max(float(need_weight.mean()) if n else 1.0, MIN_NEED_FOR_WEIGHT_KWH))
    unmet_weight = objective.unmet * arr.priority / need_weight
    cost[off_u:off_th] = unmet_weight
    col_ub[off_u:off_th] = arr.need_kwh
    if peak_col is not None:
        cost[peak_col] = peak_weight
        # A peak already reached this billing period is paid for: only power above it costs.
        col_lb[peak_col] = max(0.0, peak_so_far_kw)

    rows: list[NDArray[np.int64]] = []
    cols: list[NDArray[np.int64]] = []
    vals: list[FloatArray] = []
    row_lb: list[FloatArray] = []
    row_ub: list[FloatArray] = []
    groups: list[RowGroup] = []
    next_row = 0

    def add(r: NDArray[np.int64], c: NDArray[np.int64], v: FloatArray) -> None:
        rows.append(np.asarray(r, dtype=np.int64))
        cols.append(np.asarray(c, dtype=np.int64))
        vals.append(np.asarray(v, dtype=np.float64))

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
    add(next_row + np.tile(np.arange(steps, dtype=np.int64), n), p_index.ravel(), np.ones(n_p))
    row_lb.append(np.full(steps, -INF))
    row_ub.append(np.maximum(site_rhs, 0.0))
    groups.append(RowGroup("site_import_limit", next_row, ("site",), steps))
    next_row += steps

    # ---- circuits: kron(coef, I_H)
    if limits.rows:
        block = sp.kron(limits.coef, sp.identity(steps, format="csr"), format="coo")
        add(next_row + block.row, block.col, block.data)
        row_lb.append(np.full(limits.rows * steps, -INF))
        row_ub.append(np.repeat(np.maximum(limits.rhs, 0.0), steps))
        for r, name in enumerate(limits.names):
            kind, _, rest = name.partition("[")
            groups.append(RowGroup(kind, next_row + r * steps, (rest.rstrip("]"),), steps))
        next_row += limits.rows * steps

    # ---- taper over its window [f, l], one row per step with the energy stored so far written out:
    #   p[t] + slope·(Σ_{s<t} ηE_s p[s] + ηE_t p[t]) <= head
    # (soc at the end of step t; ηE_t already holds the plugged-in fraction of each step). An energy state per step
    # (e[t] = e[t-1] + ηE p[t-1], two rows per step) has fewer nonzeros but made the simplex twice as slow on
    # 1,000 live sessions (1,063 → 516 ms, same objective) and on the 1,000 × 96 benchmark (619 → 330 ms).
    first_taper_row = next_row
    for i, first, last in taper_win:
        s = sessions[i]
        slope = s.max_kw / (s.battery_kwh * (1.0 - s.knee_soc))
        head = s.max_kw * (1.0 - s.soc0) / (1.0 - s.knee_soc)
        width = last - first + 1
        at, before = np.tril_indices(last + 1)  # every (t, s) with s <= t ...
        keep = at >= first  # ... for the rows of the window
        at, before = at[keep], before[keep]
        add(next_row + at - first, p_index[i, before], slope * energy_coef[i, before] + (at == before))
        row_lb.append(np.full(width, -INF))
        row_ub.append(np.full(width, head))
        next_row += width
    if taper_win:
        groups.append(RowGroup("soc_taper", first_taper_row, tuple(labels[w[0]] for w in taper_win), 0))

    # ---- thermal over its window [f, l]: θ[t] is the temperature at the end of step t.
    #   θ[f] = Π α θ0 + Σ_{s<=f} (a g frac)_s Π_{s<j<=f} α_j p[s] + ambient terms   (one dense row)
    #   θ[t] - α_t θ[t-1] - (a g frac)_t p[t] = θa_t (1 - α_t)                      (t in (f, l])
    th_next = off_th
    first_th_row = next_row
    theta_cols: list[tuple[int, int, NDArray[np.int64]]] = []
    for i, first, last in thermal_win:
        s = sessions[i]
        alpha, gain = thermal_coefficients(s.thermal.cooling_per_h, horizon.length_h)
        frac = arr.energy_h[i] / horizon.length_h
        heat = s.thermal.heating_c_per_kwh * gain * frac
        width = last - first + 1
        th_cols = th_next + np.arange(width, dtype=np.int64)
        th_next += width
        theta_cols.append((i, first, th_cols))
        col_lb[th_cols] = -INF
        col_ub[th_cols] = arr.temp_ceiling_c[i, first : last + 1]
        # The battery's temperature is known from its arrival step a0 on (0 for a vehicle plugged in now).
        # decay[s] = Π_{s<j<=first} α_j for s in a0..first
        a0 = min(arrival_step(s, horizon), first)
        decay = np.ones(first + 1)
        for t in range(first - 1, a0 - 1, -1):
            decay[t] = decay[t + 1] * alpha[t + 1]
        span = slice(a0, first + 1)
        row0 = next_row
        add(np.array([row0]), th_cols[:1], np.ones(1))
        add(np.full(first + 1 - a0, row0), p_index[i, span], -heat[span] * decay[span])
        const0 = s.temp0_c * decay[a0] * alpha[a0] + float(np.sum(series.ambient_c[span] * (1.0 - alpha[span]) * decay[span]))
        if width > 1:
            rec = next_row + 1 + np.arange(width - 1, dtype=np.int64)
            ts = np.arange(first + 1, last + 1)
            add(rec, th_cols[1:], np.ones(width - 1))
            add(rec, th_cols[:-1], -alpha[ts])
            add(rec, p_index[i, ts], -heat[ts])
            rhs = series.ambient_c[ts] * (1.0 - alpha[ts])
            row_lb.append(np.concatenate(([const0], rhs)))
            row_ub.append(np.concatenate(([const0], rhs)))
        else:
            row_lb.append(np.array([const0]))
            row_ub.append(np.array([const0]))
        next_row += width
    if thermal_win:
        groups.append(RowGroup("battery_temperature_state", first_th_row, tuple(labels[w[0]] for w in thermal_win), 0))

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
        theta_cols=theta_cols,
    )
