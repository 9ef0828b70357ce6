"""Turn readings of the emulated chargers' physical state into the ``PlantTrace`` the metrics read.

The live run cannot stop time at a step boundary: it reads each plugged-in vehicle whenever it can (at
plug-in, at every step boundary, right before unplugging), a little after the instant it aimed for.
Every reading carries the emulated time its physics were advanced to, and the cumulative quantities
(energy drawn and stored since plug-in) are interpolated onto the scenario's step grid, so a late
reading shifts nothing, it only makes the interpolation slightly coarser. Pure numbers, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from benchmarks.plant import PlantTrace, empty_trace
from benchmarks.scenario import Scenario


@dataclass(frozen=True, slots=True)
class Reading:
    """One vehicle's physical state at emulated time ``at``; energies count from its plug-in."""

    at: datetime
    drawn_kwh: float  # grid side, from the charger's energy register
    stored_kwh: float  # battery side
    soc: float
    temp_c: float


@dataclass(slots=True)
class _Visit:
    readings: list[Reading] = field(default_factory=list)
    unplugged: bool = False


class TraceRecorder:
    """Collects readings per session (by its row in ``scenario.sessions``) and builds the trace."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self._visits = [_Visit() for _ in scenario.sessions]

    def plugged(self, row: int) -> bool:
        visit = self._visits[row]
        return bool(visit.readings) and not visit.unplugged

    def first(self, row: int) -> Reading:
        """The plug-in reading of session ``row``."""
        return self._visits[row].readings[0]

    def record(self, row: int, reading: Reading, *, unplugged: bool = False) -> None:
        """A reading of session ``row`` (the first one is its plug-in; ``unplugged`` marks the last)."""
        visit = self._visits[row]
        if visit.unplugged:
            raise ValueError(f"session {row} already left")
        if visit.readings and reading.at < visit.readings[-1].at:
            raise ValueError(f"session {row}: reading at {reading.at} is older than the previous one")
        visit.readings.append(reading)
        visit.unplugged = unplugged

    def trace(self) -> PlantTrace:
        """The trace of what was read; a vehicle still plugged in at the end counts up to its last reading."""
        sc = self.scenario
        trace = empty_trace(sc)
        starts = np.array([(sc.time_at(k) - sc.start).total_seconds() for k in range(sc.steps)])
        ends = np.minimum(starts + sc.step_s, (sc.end - sc.start).total_seconds())
        for row, visit in enumerate(self._visits):
            if not visit.readings:
                continue
            t = np.array([(r.at - sc.start).total_seconds() for r in visit.readings])
            drawn = np.array([r.drawn_kwh for r in visit.readings])
            soc = np.array([r.soc for r in visit.readings])
            temp = np.array([r.temp_c for r in visit.readings])
            lo, hi = np.maximum(starts, t[0]), np.minimum(ends, t[-1])
            inside = hi > lo
            trace.plugged_h[row, inside] = (hi - lo)[inside] / 3600.0
            step_kwh = np.interp(hi, t, drawn) - np.interp(lo, t, drawn)
            trace.power_kw[row, inside] = step_kwh[inside] / trace.step_h
            trace.soc_end[row, inside] = np.interp(hi, t, soc)[inside]
            trace.temp_end_c[row, inside] = np.interp(hi, t, temp)[inside]
            trace.drawn_kwh[row] = visit.readings[-1].drawn_kwh
            trace.delivered_kwh[row] = visit.readings[-1].stored_kwh
        return trace
