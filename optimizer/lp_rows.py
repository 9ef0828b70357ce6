"""The row families of the depot LP (docs/lp.md), one function each, written into one ``RowBuilder``.

Each ``add_*`` function appends its coefficients, its row bounds and its ``RowGroup`` and advances the row
counter; ``lp_model.build_lp`` calls them in a fixed order, so row numbers are the same on every build.
Rows that cannot bind are left out: taper rows only over ``taper_window``, thermal rows only over
``thermal_window``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from optimizer.horizon import FloatArray, Horizon, SiteSeries
from optimizer.infrastructure import CircuitLimits
from optimizer.lp_columns import ColumnLayout
from optimizer.lp_sessions import SessionArrays, arrival_step
from optimizer.lp_stress import HighSocBlock
from optimizer.needs import ResolvedSession
from optimizer.thermal import rise_upper_bound, step_coefficients

INF = np.inf


@dataclass(frozen=True, slots=True)
class RowGroup:
    """A named family of rows; ``first``..``first+count`` in the matrix, one row per ``labels`` entry."""

    kind: str
    first: int
    labels: tuple[str, ...]
    per_step: int  # rows per label (H for time-indexed families, 1 otherwise)


@dataclass(slots=True)
class RowBuilder:
    """Coefficients (row, column, value), row bounds and named groups, appended family by family."""

    rows: list[NDArray[np.int64]] = field(default_factory=list)
    cols: list[NDArray[np.int64]] = field(default_factory=list)
    vals: list[FloatArray] = field(default_factory=list)
    row_lb: list[FloatArray] = field(default_factory=list)
    row_ub: list[FloatArray] = field(default_factory=list)
    groups: list[RowGroup] = field(default_factory=list)
    next_row: int = 0

    def add(self, r: NDArray[np.int64], c: NDArray[np.int64], v: FloatArray) -> None:
        self.rows.append(np.asarray(r, dtype=np.int64))
        self.cols.append(np.asarray(c, dtype=np.int64))
        self.vals.append(np.asarray(v, dtype=np.float64))

    def bounds(self, lower: FloatArray, upper: FloatArray) -> None:
        self.row_lb.append(lower)
        self.row_ub.append(upper)

    def matrix(self, columns: int) -> sp.csr_matrix:
        matrix = sp.csr_matrix(
            (np.concatenate(self.vals), (np.concatenate(self.rows), np.concatenate(self.cols))),
            shape=(self.next_row, columns),
            dtype=np.float64,
        )
        matrix.sum_duplicates()
        return matrix


def taper_window(s: ResolvedSession, pmax: FloatArray, energy_coef: FloatArray, need_kwh: float) -> tuple[int, int] | None:
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


def thermal_window(
    s: ResolvedSession, pmax: FloatArray, end_h: FloatArray, need_kwh: float, ambient_max_c: float, ceiling: FloatArray
) -> tuple[int, int] | None:
    """Steps (first, last) where the temperature ceiling can bind, from a rigorous upper bound. With
    A = the warmest ambient, P = the most power and E = the most energy, every schedule keeps
    θ(τ) ≤ max(θ0, A) + (heating·P/cooling)·(1 − exp(−cooling·min(E/P, τ)))   (``thermal.rise_upper_bound``)."""
    th = s.thermal
    top_kw = float(pmax.max())
    if not th.is_modelled or top_kw <= 0:
        return None
    upper = max(s.temp0_c, ambient_max_c) + rise_upper_bound(th, top_kw, need_kwh / max(s.efficiency, 1e-9), end_h)
    plugged = np.nonzero(pmax > 0)[0]
    last = int(plugged[-1])
    can = np.nonzero(upper > ceiling - 1e-9)[0]
    if can.size == 0 or int(can[0]) > last:
        return None
    return int(can[0]), last


def add_departure_rows(b: RowBuilder, layout: ColumnLayout, energy_coef: FloatArray, planned_kwh: FloatArray,
                       labels: tuple[str, ...]) -> None:
    """Σ_t η E p + u + m = need + margin, one row per session."""
    n, steps = layout.sessions, layout.steps
    b.add(np.repeat(np.arange(n, dtype=np.int64), steps), layout.p_index.ravel(), energy_coef.ravel())
    b.add(np.arange(n, dtype=np.int64), layout.off_u + np.arange(n, dtype=np.int64), np.ones(n))
    m = layout.margin_rows
    b.add(m, layout.off_m + np.arange(m.size, dtype=np.int64), np.ones(m.size))
    b.bounds(planned_kwh.copy(), planned_kwh.copy())
    b.groups.append(RowGroup("departure_energy", b.next_row, labels, 1))
    b.next_row += n


def add_site_rows(b: RowBuilder, layout: ColumnLayout, site_rhs_kw: FloatArray) -> None:
    """Σ_i p[i, t] <= import limit − base load − uncontrolled load, one row per step."""
    n, steps = layout.sessions, layout.steps
    b.add(b.next_row + np.tile(np.arange(steps, dtype=np.int64), n), layout.p_index.ravel(), np.ones(n * steps))
    b.bounds(np.full(steps, -INF), np.maximum(site_rhs_kw, 0.0))
    b.groups.append(RowGroup("site_import_limit", b.next_row, ("site",), steps))
    b.next_row += steps


def add_circuit_rows(b: RowBuilder, limits: CircuitLimits, steps: int) -> None:
    """Every circuit row of ``limits`` in every step: kron(coef, I_H)."""
    if not limits.rows:
        return
    block = sp.kron(limits.coef, sp.identity(steps, format="csr"), format="coo")
    b.add(b.next_row + block.row, block.col, block.data)
    b.bounds(np.full(limits.rows * steps, -INF), np.repeat(np.maximum(limits.rhs, 0.0), steps))
    for r, name in enumerate(limits.names):
        kind, _, rest = name.partition("[")
        b.groups.append(RowGroup(kind, b.next_row + r * steps, (rest.rstrip("]"),), steps))
    b.next_row += limits.rows * steps


def add_taper_rows(b: RowBuilder, sessions: list[ResolvedSession], windows: list[tuple[int, int, int]],
                   p_index: NDArray[np.int64], energy_coef: FloatArray, labels: tuple[str, ...],
                   at_step_start: bool) -> None:
    """The taper over each window [f, l], one row per step with the energy stored so far written out:
        p[t] + slope·(Σ_{s<t} ηE_s p[s] + ηE_t p[t]) <= head
    (SoC at the end of step t; ηE_t already holds the plugged-in fraction of each step). An energy state per step
    (e[t] = e[t-1] + ηE p[t-1], two rows per step) has fewer nonzeros but made the simplex twice as slow on
    1,000 live sessions (1,063 → 516 ms, same objective) and on the 1,000 × 96 benchmark (619 → 330 ms).
    ``at_step_start`` judges the SoC at the step's start instead (a relaxation, for the hindsight bound)."""
    first_row = b.next_row
    if windows:
        # All windows at once: the entries of window [f, l] are rows f..l of the lower triangle (t, s <= t), one
        # contiguous slice of ``np.tril_indices`` in its row-major order. A loop over 1,000 sessions cost 0.15 s.
        session = np.array([w[0] for w in windows], dtype=np.int64)
        first = np.array([w[1] for w in windows], dtype=np.int64)
        last = np.array([w[2] for w in windows], dtype=np.int64)
        width = last - first + 1
        knee = np.array([sessions[i].knee_soc for i in session.tolist()], dtype=np.float64)
        max_kw = np.array([sessions[i].max_kw for i in session.tolist()], dtype=np.float64)
        battery_kwh = np.array([sessions[i].battery_kwh for i in session.tolist()], dtype=np.float64)
        soc0 = np.array([sessions[i].soc0 for i in session.tolist()], dtype=np.float64)
        slope = max_kw / (battery_kwh * (1.0 - knee))
        head = max_kw * (1.0 - soc0) / (1.0 - knee)
        at_all, before_all = np.tril_indices(int(last.max()) + 1)
        start = first * (first + 1) // 2  # entries of the triangle's rows above row f
        count = (last + 1) * (last + 2) // 2 - start
        window = np.repeat(np.arange(len(windows), dtype=np.int64), count)
        entry = np.arange(int(count.sum()), dtype=np.int64) - np.repeat(np.cumsum(count) - count, count) + start[window]
        at, before = at_all[entry], before_all[entry]
        stored = (before < at) if at_step_start else np.ones(at.size, dtype=np.bool_)
        row0 = b.next_row + np.cumsum(width) - width
        b.add(row0[window] + at - first[window], p_index[session[window], before],
              slope[window] * energy_coef[session[window], before] * stored + (at == before))
        b.bounds(np.full(int(width.sum()), -INF), np.repeat(head, width))
        b.next_row += int(width.sum())
        b.groups.append(RowGroup("soc_taper", first_row, tuple(labels[w[0]] for w in windows), 0))


def add_thermal_rows(b: RowBuilder, sessions: list[ResolvedSession], layout: ColumnLayout, arr: SessionArrays,
                     horizon: Horizon, series: SiteSeries, labels: tuple[str, ...]) -> None:
    """The battery temperature over each window [f, l] (``layout.theta_cols``); θ[t] is the temperature at the
    end of step t:
        θ[f] = Π α θ0 + Σ_{s<=f} (a g frac)_s Π_{s<j<=f} α_j p[s] + ambient terms   (one dense row)
        θ[t] - α_t θ[t-1] - (a g frac)_t p[t] = θa_t (1 - α_t)                      (t in (f, l])"""
    first_row = b.next_row
    for i, first, th_cols in layout.theta_cols:
        s = sessions[i]
        alpha, gain = step_coefficients(s.thermal.cooling_per_h, horizon.length_h)
        frac = arr.energy_h[i] / horizon.length_h
        heat = s.thermal.heating_c_per_kwh * gain * frac
        width = th_cols.size
        last = first + width - 1
        # The battery's temperature is known from its arrival step a0 on (0 for a vehicle plugged in now).
        # decay[s] = Π_{s<j<=first} α_j for s in a0..first
        a0 = min(arrival_step(s, horizon), first)
        decay = np.ones(first + 1)
        for t in range(first - 1, a0 - 1, -1):
            decay[t] = decay[t + 1] * alpha[t + 1]
        span = slice(a0, first + 1)
        row0 = b.next_row
        b.add(np.array([row0]), th_cols[:1], np.ones(1))
        b.add(np.full(first + 1 - a0, row0), layout.p_index[i, span], -heat[span] * decay[span])
        const0 = s.temp0_c * decay[a0] * alpha[a0] + float(np.sum(series.ambient_c[span] * (1.0 - alpha[span]) * decay[span]))
        if width > 1:
            rec = b.next_row + 1 + np.arange(width - 1, dtype=np.int64)
            ts = np.arange(first + 1, last + 1)
            b.add(rec, th_cols[1:], np.ones(width - 1))
            b.add(rec, th_cols[:-1], -alpha[ts])
            b.add(rec, layout.p_index[i, ts], -heat[ts])
            rhs = series.ambient_c[ts] * (1.0 - alpha[ts])
            b.bounds(np.concatenate(([const0], rhs)), np.concatenate(([const0], rhs)))
        else:
            b.bounds(np.array([const0]), np.array([const0]))
        b.next_row += width
    if layout.theta_cols:
        b.groups.append(RowGroup("battery_temperature_state", first_row, tuple(labels[c[0]] for c in layout.theta_cols), 0))


def add_high_soc_rows(b: RowBuilder, layout: ColumnLayout, high_soc: HighSocBlock | None, labels: tuple[str, ...]) -> None:
    """Stored energy above 80 % SoC (the optional stress term, ``optimizer.lp_stress``)."""
    if high_soc is None:
        return
    b.add(b.next_row + high_soc.row, high_soc.p_col, high_soc.p_val)
    b.add(b.next_row + high_soc.z_row, layout.off_z + high_soc.z_col, -np.ones(high_soc.columns))
    b.bounds(np.full(high_soc.columns, -INF), high_soc.rhs)
    b.groups.append(RowGroup("stress_high_soc", b.next_row, tuple(labels[i] for i in high_soc.labels), 0))
    b.next_row += high_soc.columns


def add_peak_rows(b: RowBuilder, layout: ColumnLayout, fixed_load_kw: FloatArray) -> None:
    """Σ_i p[i,t] - P̂ <= -(base + uncontrolled), one row per step, when the objective prices the peak."""
    if layout.peak_col is None:
        return
    n, steps = layout.sessions, layout.steps
    b.add(b.next_row + np.tile(np.arange(steps, dtype=np.int64), n), layout.p_index.ravel(), np.ones(n * steps))
    b.add(b.next_row + np.arange(steps, dtype=np.int64), np.full(steps, layout.peak_col, dtype=np.int64), -np.ones(steps))
    b.bounds(np.full(steps, -INF), -fixed_load_kw)
    b.groups.append(RowGroup("site_peak", b.next_row, ("site",), steps))
    b.next_row += steps
