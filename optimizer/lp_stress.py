"""The LP's optional battery-stress terms (``Objective.stress_high_soc``, ``Objective.stress_temperature``).

Both are off by default and cost nothing then: no columns, no rows. Their weights are small beside the unmet-need
weight, so they only choose among plans that deliver the same energy ("reach a high target late when nothing else
is lost").

- High SoC: for sessions whose target is above ``battery_stress.HIGH_SOC``, a column z[t] ≥ 0 per step with
  z[t] ≥ stored energy at the end of t − HIGH_SOC · capacity, costed per kWh·h. Energy above 80 % is then put in
  as late as the stay allows. Rows only from the first step the SoC could pass 80 % at full power.
- Temperature: each kWh charged in step t costs (factor(θ̂[t]) − 1)⁺, factor from ``battery_stress``, θ̂ the
  battery's free-cooling trajectory (its temperature if charging stopped: a lower bound that keeps the term
  linear). Charging moves to cooler hours when the fleet can afford it, but not into the last quarter of the stay
  (at least its last hour), which stays the receding plan's reserve for catching up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from optimizer.battery_stress import HIGH_SOC, temperature_factor
from optimizer.horizon import FloatArray, Horizon, SiteSeries
from optimizer.needs import ResolvedSession
from optimizer.thermal import free_trajectory

RESERVE_SHARE = 0.25  # of the stay left, kept free of deferred energy (temperature term)
RESERVE_MIN_H = 1.0


def temperature_cost(sessions: list[ResolvedSession], horizon: Horizon, series: SiteSeries,
                     energy_coef: FloatArray, weight: float) -> FloatArray:
    """Cost per kW of p[i, t] (sessions × steps); zeros when ``weight`` is 0."""
    cost = np.zeros((len(sessions), horizon.steps))
    if weight <= 0:
        return cost
    for i, s in enumerate(sessions):
        if s.thermal.is_modelled or s.thermal.cooling_per_h > 0:
            temps = free_trajectory(s.temp0_c, s.thermal.cooling_per_h, horizon.length_h, series.ambient_c)
        else:
            temps = np.full(horizon.steps, s.temp0_c)
        excess = np.maximum(temperature_factor(temps) - 1.0, 0.0)
        # The end of the stay is the receding plan's reserve: energy deferred into it cannot be caught up when the
        # plant falls behind (a hotter battery, a noisy meter). Costed like the stay's dearest step, it is never
        # a reason to defer, so the term only moves energy between hours that leave the reserve free.
        reserve = horizon.start_h + horizon.length_h > s.departure_h - reserve_h(s.departure_h)
        if reserve.any():
            excess[reserve] = excess.max()
        cost[i] = weight * excess * energy_coef[i]
    return cost


def reserve_h(departure_h: float) -> float:
    """The last part of a stay the temperature term does not defer into: a quarter of it, at least an hour."""
    return max(RESERVE_MIN_H, RESERVE_SHARE * departure_h)


@dataclass(frozen=True, slots=True)
class HighSocBlock:
    """z columns (``columns`` of them, costed ``cost``) and their rows: rows[k] · x ≤ rhs[k]; row and z indices are
    local (0-based), p indices absolute."""

    columns: int
    cost: FloatArray
    row: NDArray[np.int64]
    p_col: NDArray[np.int64]
    p_val: FloatArray
    z_row: NDArray[np.int64]
    z_col: NDArray[np.int64]
    rhs: FloatArray
    labels: tuple[int, ...]  # the sessions with rows


def high_soc_block(sessions: list[ResolvedSession], pmax_kw: FloatArray, energy_coef: FloatArray, horizon: Horizon,
                   p_index: NDArray[np.int64], weight: float) -> HighSocBlock | None:
    """The rows Σ_{s≤t} ηE_s p[s] − z[t] ≤ (HIGH_SOC − soc0)·capacity over each session's window; None when off."""
    if weight <= 0:
        return None
    rows: list[NDArray[np.int64]] = []
    p_cols: list[NDArray[np.int64]] = []
    p_vals: list[FloatArray] = []
    rhs: list[FloatArray] = []
    costs: list[FloatArray] = []
    labels: list[int] = []
    next_row = 0
    for i, s in enumerate(sessions):
        if s.target_soc <= HIGH_SOC or s.need_kwh <= 0 or pmax_kw[i].max() <= 0:
            continue
        most = s.soc0 + np.minimum(np.cumsum(pmax_kw[i] * energy_coef[i]), s.need_kwh) / s.battery_kwh
        reach = np.nonzero(most > HIGH_SOC + 1e-9)[0]
        plugged = np.nonzero(pmax_kw[i] > 0)[0]
        if reach.size == 0:
            continue
        first, last = int(reach[0]), int(plugged[-1])
        if first > last:
            continue
        at, before = np.tril_indices(last + 1)
        keep = at >= first
        at, before = at[keep], before[keep]
        rows.append(next_row + at - first)
        p_cols.append(p_index[i, before])
        p_vals.append(energy_coef[i, before])
        width = last - first + 1
        rhs.append(np.full(width, (HIGH_SOC - s.soc0) * s.battery_kwh))
        # kWh·h above the threshold, over the plugged-in part of each step.
        costs.append(weight * energy_coef[i, first : last + 1] / max(s.efficiency, 1e-9))
        labels.append(i)
        next_row += width
    if not labels:
        return None
    n_z = next_row
    return HighSocBlock(
        columns=n_z,
        cost=np.concatenate(costs),
        row=np.concatenate(rows).astype(np.int64),
        p_col=np.concatenate(p_cols).astype(np.int64),
        p_val=np.concatenate(p_vals),
        z_row=np.arange(n_z, dtype=np.int64),
        z_col=np.arange(n_z, dtype=np.int64),
        rhs=np.concatenate(rhs),
        labels=tuple(labels),
    )
