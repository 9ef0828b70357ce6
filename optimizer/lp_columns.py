"""The columns of the depot LP (docs/lp.md): where each family sits, and what each column costs.

Columns, in this order:
    p[i, t]   grid-side power of session i in step t (kW; in step 0 the commanded power)
    u[i]      energy still missing at departure (kWh)
    θ[m, t]   battery temperature of m at the end of step t, over its window (thermal sessions only)
    z[k]      stored energy above 80 % SoC (kWh), only with the high-SoC stress weight (``lp_stress``)
    P̂         site peak (kW), only when the objective prices the peak
    m[i]      margin still missing at departure (kWh), only for sessions with a margin (needs.py)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from optimizer.horizon import FloatArray
from optimizer.lp_sessions import SessionArrays
from optimizer.lp_stress import HighSocBlock
from optimizer.site_model import Objective

INF = np.inf
# The early-charging reward per kWh, relative to the objective's 'early' weight. Small enough never to
# trade delivered energy for earliness, large enough that HiGHS sees it; docs/lp.md, "What keeps it fast".
EARLY_REWARD_PER_KWH = 1e-2
MIN_NEED_FOR_WEIGHT_KWH = 1.0
# A kWh of margin (needs.py: the upper end of a need above its central value) is worth this share of the
# cheapest kWh of any central need, so the margin is given up first when capacity is short.
MARGIN_WEIGHT_SHARE = 0.5
# Under ``unmet_per: kwh``, the margin of a need that is read costs as much as the cheapest central kWh: it is the
# reading's noise, and a vehicle planned without it misses its target by about that noise, so it is not met
# (docs/benchmarks-robust.md, section 5). Every kWh alike is still the kWh objective's rule.
READ_MARGIN_WEIGHT_SHARE = 1.0
# Under ``unmet_per: kwh``, this share of the weight of a kWh is the session weight (1/need): the LP prefers plans
# that finish vehicles at (nearly) no cost in energy (docs/benchmarks-robust.md, section 5).
KWH_SESSION_SHARE = 0.005


@dataclass(frozen=True, slots=True)
class ColumnLayout:
    sessions: int
    steps: int
    p_index: NDArray[np.int64]  # sessions × steps: the column of p[i, t]
    off_u: int
    theta_cols: list[tuple[int, int, NDArray[np.int64]]]  # (session, first step, its θ columns)
    off_z: int
    z_columns: int
    peak_col: int | None
    off_m: int
    margin_rows: NDArray[np.int64]  # the sessions with a margin column, in column order
    columns: int


def column_layout(sessions: int, steps: int, thermal_windows: list[tuple[int, int, int]], high_soc_columns: int,
                  peak_on: bool, margin_kwh: FloatArray) -> ColumnLayout:
    n_p = sessions * steps
    off_u = n_p
    theta_cols: list[tuple[int, int, NDArray[np.int64]]] = []
    next_col = off_u + sessions
    for i, first, last in thermal_windows:
        width = last - first + 1
        theta_cols.append((i, first, next_col + np.arange(width, dtype=np.int64)))
        next_col += width
    off_z = next_col
    peak_col = off_z + high_soc_columns if peak_on else None
    off_m = off_z + high_soc_columns + (1 if peak_on else 0)
    margin_rows = np.flatnonzero(margin_kwh > 0)
    return ColumnLayout(
        sessions=sessions, steps=steps, p_index=np.arange(n_p, dtype=np.int64).reshape(sessions, steps),
        off_u=off_u, theta_cols=theta_cols, off_z=off_z, z_columns=high_soc_columns, peak_col=peak_col,
        off_m=off_m, margin_rows=margin_rows, columns=off_m + margin_rows.size,
    )


def unmet_weights(need_kwh: FloatArray, priority: FloatArray, objective: Objective) -> FloatArray:
    """The cost of a kWh missing at departure, per session (docs/lp.md, "Objective")."""
    n = need_kwh.size
    need_weight = np.maximum(need_kwh, MIN_NEED_FOR_WEIGHT_KWH)
    per_kwh: FloatArray = 1.0 / need_weight
    if objective.unmet_per == "kwh":
        # Every kWh alike, scaled by the mean need so the weight stays comparable to price and peak terms; a small
        # share of the session weight breaks ties towards finishing vehicles. That holds for an assumed need too:
        # power it concentrates on a vehicle that turns out full is given to others as soon as the meter shows
        # the vehicle stopped (docs/benchmarks-robust.md, section 5).
        mean_need = max(float(need_weight.mean()) if n else 1.0, MIN_NEED_FOR_WEIGHT_KWH)
        share = KWH_SESSION_SHARE
        per_kwh = (1.0 - share) / mean_need + share / need_weight
    weights: FloatArray = objective.unmet * priority * per_kwh
    return weights


@dataclass(frozen=True, slots=True)
class ColumnCosts:
    cost: FloatArray
    lower: FloatArray
    upper: FloatArray


def column_costs(layout: ColumnLayout, arr: SessionArrays, p_cost: FloatArray, first_max_kw: FloatArray,
                 objective: Objective, high_soc: HighSocBlock | None, peak_weight: float,
                 peak_so_far_kw: float) -> ColumnCosts:
    """Costs and bounds of every column; ``p_cost`` (sessions × steps) is the cost per kW of p[i, t]."""
    n, n_p = layout.sessions, layout.sessions * layout.steps
    cost = np.zeros(layout.columns)
    lower = np.zeros(layout.columns)
    upper = np.full(layout.columns, INF)
    cost[:n_p] = p_cost.ravel()
    upper[:n_p] = arr.pmax_kw.ravel()
    upper[np.arange(n, dtype=np.int64) * layout.steps] = first_max_kw
    u = slice(layout.off_u, layout.off_u + n)
    unmet = unmet_weights(arr.need_kwh, arr.priority, objective)
    cost[u] = unmet
    upper[u] = arr.need_kwh
    for i, first, cols in layout.theta_cols:
        lower[cols] = -INF
        upper[cols] = arr.temp_ceiling_c[i, first : first + cols.size]
    if high_soc is not None:
        cost[layout.off_z : layout.off_z + layout.z_columns] = high_soc.cost
    if layout.peak_col is not None:
        cost[layout.peak_col] = peak_weight
        # A peak already reached this billing period is paid for: only power above it costs.
        lower[layout.peak_col] = max(0.0, peak_so_far_kw)
    if layout.margin_rows.size:
        margin = arr.margin_kwh if arr.margin_kwh is not None else np.zeros(n)
        share = np.full(n, MARGIN_WEIGHT_SHARE)
        if objective.unmet_per == "kwh" and arr.need_read is not None:
            share[arr.need_read] = READ_MARGIN_WEIGHT_SHARE
        cost[layout.off_m :] = share[layout.margin_rows] * float(unmet.min())
        upper[layout.off_m :] = margin[layout.margin_rows]
    return ColumnCosts(cost, lower, upper)
