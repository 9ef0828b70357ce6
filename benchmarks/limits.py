"""The site's physical limits as the plant measures them: every circuit phase-current limit and kW
limit as one row in kW, so that an excess can be reported as energy (kWh over).

This is computed from the site alone, independently of ``optimizer.infrastructure``: the benchmark
must not grade a strategy with the optimizer's own bookkeeping. It takes only the topology from
``optimizer.circuits``; the plant's vehicles draw balanced over their charger's phases (the benchmark's
chargers are commanded in A), so a phase row counts power/phases, not the planner's worst case.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from optimizer.circuits import compile_circuits, wired_phases
from optimizer.domain import ALL_PHASES, Site
from optimizer.horizon import import_limit_by_minute

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class LimitRows:
    """``coef[r, i]``: kW on row r per kW drawn by connector i; ``limit_kw[r]``: the row's limit in kW
    (a phase-current limit I becomes I·V/1000, the power one phase carries at that current)."""

    names: tuple[str, ...]
    coef: FloatArray
    limit_kw: FloatArray


def limit_rows(site: Site, connector_chargers: Sequence[str]) -> LimitRows:
    """Rows for connectors drawing power, identified by the id of their charger (one entry each)."""
    model = compile_circuits(site)
    names: list[str] = []
    coef_rows: list[FloatArray] = []
    limits: list[float] = []
    chargers = [site.charger(cid) for cid in connector_chargers]
    for circuit in site.circuits:
        below = np.array([ch.id in model.below[circuit.id] for ch in chargers], dtype=bool)
        if circuit.max_current_a is not None:
            for phase in ALL_PHASES:
                share = np.array([1.0 / len(wired_phases(ch)) if phase in wired_phases(ch) else 0.0 for ch in chargers])
                names.append(f"circuit_phase_limit[{circuit.id},{phase}]")
                coef_rows.append(np.where(below, share, 0.0))
                limits.append(circuit.max_current_a * site.voltage_v / 1000.0)
        if circuit.max_kw is not None:
            names.append(f"circuit_kw_limit[{circuit.id}]")
            coef_rows.append(below.astype(np.float64))
            limits.append(circuit.max_kw)
    coef = np.vstack(coef_rows) if coef_rows else np.zeros((0, len(chargers)))
    return LimitRows(tuple(names), coef, np.array(limits, dtype=np.float64))


def import_limit_per_step(site: Site, start: datetime, step_s: int, steps: int) -> FloatArray:
    """The grid import limit (kW) of each step: the lowest value of any minute inside it."""
    by_minute = import_limit_by_minute(site)
    tz = zoneinfo.ZoneInfo(site.timezone)
    out = np.empty(steps)
    minutes = max(1, step_s // 60)
    for k in range(steps):
        local = (start + timedelta(seconds=k * step_s)).astimezone(tz)
        first = local.hour * 60 + local.minute
        out[k] = by_minute[(first + np.arange(minutes)) % 1440].min()
    return out


def hourly_value_per_step(
    site: Site, values_by_hour: Sequence[float], start: datetime, step_s: int, steps: int
) -> FloatArray:
    """A 24-hour local-time profile (or one constant) sampled at each step's start."""
    tz = zoneinfo.ZoneInfo(site.timezone)
    out = np.empty(steps)
    for k in range(steps):
        hour = (start + timedelta(seconds=k * step_s)).astimezone(tz).hour
        out[k] = values_by_hour[0] if len(values_by_hour) == 1 else values_by_hour[hour % 24]
    return out
