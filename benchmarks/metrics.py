"""Benchmark metrics. Each is a small pure function of arrays, tested on hand-computed cases;
``summarise`` applies them all to one run.

Conventions: energies are battery-side kWh (what the vehicle asked for), site powers are step averages
at the grid side, percentages are 0–100.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from benchmarks.limits import FloatArray
from benchmarks.plant import PlantTrace
from optimizer.battery_stress import session_stress
from optimizer.domain import BatteryStress

MET_TOLERANCE_KWH = 0.1  # a session is met when less than this is missing at departure
OVER_TOLERANCE_KW = 1e-3  # float noise and meter rounding below this are not violations


def energy_delivered_pct(requested_kwh: FloatArray, delivered_kwh: FloatArray) -> float:
    """Delivered energy as % of requested, each session capped at its request (100 with no requests)."""
    total = float(requested_kwh.sum())
    if total <= 0:
        return 100.0
    return 100.0 * float(np.minimum(delivered_kwh, requested_kwh).sum()) / total


def sessions_met_pct(
    requested_kwh: FloatArray, delivered_kwh: FloatArray, tolerance_kwh: float = MET_TOLERANCE_KWH
) -> float:
    """% of sessions with less than ``tolerance_kwh`` still missing at departure (100 with none)."""
    if requested_kwh.size == 0:
        return 100.0
    return 100.0 * float(((requested_kwh - delivered_kwh) < tolerance_kwh).mean())


def peak_kw(site_kw: FloatArray) -> float:
    """The highest site power of any step (0 for an empty run)."""
    return float(site_kw.max()) if site_kw.size else 0.0


@dataclass(frozen=True, slots=True)
class Violations:
    count: int  # (limit, step) pairs over the limit
    kwh: float  # energy above the limits


def limit_violations(
    load_kw: FloatArray, limit_kw: FloatArray, step_h: float, tolerance_kw: float = OVER_TOLERANCE_KW
) -> Violations:
    """Excess of ``load_kw`` over ``limit_kw`` (same shape, or limits broadcast along the last axis per row)."""
    over = np.asarray(load_kw) - np.asarray(limit_kw)
    hit = over > tolerance_kw
    return Violations(int(hit.sum()), float(over[hit].sum() * step_h))


def temp_violation_c_min(temp_end_c: FloatArray, plugged_h: FloatArray, ceiling_c: FloatArray) -> float:
    """Σ (temperature − ceiling)⁺ × plugged minutes, sampling each step's end temperature (which is the
    step's highest while charging warms the battery). ``ceiling_c`` has one value per session (row)."""
    excess = np.nan_to_num(temp_end_c - np.asarray(ceiling_c).reshape(-1, 1), nan=0.0)
    return float((np.maximum(excess, 0.0) * plugged_h * 60.0).sum())


def energy_cost(site_kw: FloatArray, price_per_kwh: FloatArray, step_h: float) -> float:
    """Σ price × site energy per step."""
    return float((site_kw * price_per_kwh).sum() * step_h)


def demand_charge(site_peak_kw: float, charge_per_kw: float) -> float:
    return site_peak_kw * charge_per_kw


def jain_index(requested_kwh: FloatArray, delivered_kwh: FloatArray) -> float:
    """Jain's fairness index of delivered/requested (capped at 1) over sessions that asked for energy:
    (Σx)² / (n Σx²), 1 when everyone got the same share. 1 by convention when nobody got anything."""
    asked = requested_kwh > 0
    if not asked.any():
        return 1.0
    x = np.minimum(delivered_kwh[asked] / requested_kwh[asked], 1.0)
    squares = float((x * x).sum())
    if squares <= 0:
        return 1.0
    return float(x.sum()) ** 2 / (x.size * squares)


def trace_stress(trace: PlantTrace) -> list[BatteryStress]:
    """What physically happened to each battery (``optimizer.battery_stress``), from the plant's real power, SoC
    and temperature; the battery's own temperature on arrival starts the trajectory."""
    out = []
    for i, s in enumerate(trace.sessions):
        plugged = trace.plugged_h[i] > 0
        drawn = float(trace.drawn_kwh[i]) if trace.drawn_kwh.size else 0.0
        efficiency = float(trace.delivered_kwh[i]) / drawn if drawn > 0 else 1.0
        temps = trace.temp_end_c[i][plugged]
        out.append(session_stress(trace.power_kw[i][plugged], trace.plugged_h[i][plugged], s.soc_arrival, s.battery_kwh,
                                  efficiency, None if np.isnan(temps).any() else temps, s.battery_temp_c))
    return out


@dataclass(frozen=True, slots=True)
class TickTimes:
    p50_ms: float
    p95_ms: float
    max_ms: float


def tick_times(tick_ms: Sequence[float]) -> TickTimes:
    if not tick_ms:
        return TickTimes(0.0, 0.0, 0.0)
    values = np.asarray(tick_ms, dtype=np.float64)
    return TickTimes(float(np.percentile(values, 50)), float(np.percentile(values, 95)), float(values.max()))


@dataclass(frozen=True, slots=True)
class Metrics:
    energy_requested_kwh: float
    energy_delivered_kwh: float
    energy_delivered_pct: float
    sessions: int
    sessions_met_pct: float
    peak_kw: float
    violation_count: int
    violation_kwh: float
    grid_violation_kwh: float
    circuit_violation_kwh: float
    temp_violation_c_min: float
    energy_cost: float | None
    demand_charge: float | None
    cost: float | None
    jain: float
    tick_ms_p50: float
    tick_ms_p95: float
    tick_ms_max: float
    # Battery stress (docs/battery.md): mean hours above 80 % SoC per session, Σ Arrhenius-weighted kWh, highest C-rate.
    stress_hours_above_80pct: float = 0.0
    stress_arrhenius_kwh: float = 0.0
    stress_peak_c_rate: float = 0.0


def summarise(trace: PlantTrace, tick_ms: Sequence[float], priced: bool, demand_charge_per_kw: float) -> Metrics:
    requested, delivered = trace.requested_kwh, np.minimum(trace.delivered_kwh, trace.requested_kwh)
    site_kw = trace.site_kw
    grid = limit_violations(site_kw, trace.import_limit_kw, trace.step_h)
    circuits = limit_violations(trace.row_load_kw, trace.rows.limit_kw.reshape(-1, 1), trace.step_h)
    peak = peak_kw(site_kw)
    times = tick_times(tick_ms)
    stress = trace_stress(trace)
    energy = energy_cost(site_kw, trace.price_per_kwh, trace.step_h) if priced else None
    demand = demand_charge(peak, demand_charge_per_kw) if priced else None
    return Metrics(
        energy_requested_kwh=float(requested.sum()),
        energy_delivered_kwh=float(delivered.sum()),
        energy_delivered_pct=energy_delivered_pct(requested, delivered),
        sessions=int(requested.size),
        sessions_met_pct=sessions_met_pct(requested, delivered),
        peak_kw=peak,
        violation_count=grid.count + circuits.count,
        violation_kwh=grid.kwh + circuits.kwh,
        grid_violation_kwh=grid.kwh,
        circuit_violation_kwh=circuits.kwh,
        temp_violation_c_min=temp_violation_c_min(trace.temp_end_c, trace.plugged_h, trace.temp_ceiling_c),
        energy_cost=energy,
        demand_charge=demand,
        cost=(energy + demand) if energy is not None and demand is not None else None,
        jain=jain_index(requested, delivered),
        tick_ms_p50=times.p50_ms,
        tick_ms_p95=times.p95_ms,
        tick_ms_max=times.max_ms,
        stress_hours_above_80pct=float(np.mean([b.hours_above_high_soc for b in stress])) if stress else 0.0,
        stress_arrhenius_kwh=float(sum(b.arrhenius_kwh for b in stress)),
        stress_peak_c_rate=max((b.peak_c_rate for b in stress), default=0.0),
    )
