"""One SoC from many readings: the recent readings fitted against the energy register (docs/benchmarks-robust.md,
"A SoC fitted, not read").

A vehicle's SoC reading is off by a few tenths of a percent (the BMS's own estimate, then rounded to a whole
percent), while the charger's energy register is exact to the watt-hour. Between two readings the SoC rises by
what the charger delivered × its efficiency / the battery's capacity, so every reading measures the same line,
``soc = a + b · delivered_kwh``. Fitted to the recent readings, the line's value at the register's latest figure
averages their noise away: a single reading of a 60 kWh battery is ±0.12 kWh (1 σ) where a vehicle counts as done
when less than 0.1 kWh is missing; twenty readings fitted are about ±0.04 kWh.

The slope is fitted too, held near efficiency / capacity by a prior: a roster capacity can be wrong by a few
percent, and a line through readings with no spread of energy says nothing of its slope. A reading repeated while
nothing was delivered tells nothing new (a whole-percent SoC of a vehicle at rest reads the same number each time),
so only distinct readings count towards the error. A reading far off the line (the BMS recalibrated) restarts it.

Pure and immutable: the live state keeps one ``SocTrack`` per session, the benchmark's simulated site the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Readings the fit rests on, at most (the live meter samples every minute or so, the benchmark every tick).
MAX_READINGS = 48
# ... and only those within this much SoC of the latest by the energy since: the SoC per kWh is not quite constant
# (efficiency varies with power and temperature), so a long line bends.
WINDOW_SOC = 0.25
# The prior on the slope: efficiency / capacity, known to this relative standard deviation.
SLOPE_PRIOR_REL = 0.05
# A reading further than this many standard deviations (and at least two quanta) off the line restarts it.
JUMP_SIGMAS = 5.0
JUMP_MIN_QUANTA = 2.0
# Readings equal to within this count as one (a whole-percent reading repeated at rest).
SAME_READING = 1e-6


@dataclass(frozen=True, slots=True)
class SocReading:
    soc: float
    delivered_kwh: float  # the session's energy register when the SoC was read


@dataclass(frozen=True, slots=True)
class SocEstimate:
    soc: float
    error: float  # one standard deviation of ``soc`` (fraction of the battery)
    readings: int  # distinct readings it rests on


@dataclass(frozen=True, slots=True)
class SocLine:
    """What the line is fitted with: the battery's slope prior and the readings' quantum."""

    battery_kwh: float
    efficiency: float
    resolution: float  # quantum of a reading (fraction); its rounding error is resolution / √12 at least

    @property
    def slope_per_kwh(self) -> float:
        return self.efficiency / self.battery_kwh

    @property
    def reading_sigma(self) -> float:
        return max(self.resolution / math.sqrt(12.0), 1e-4)


@dataclass(frozen=True, slots=True)
class _Fit:
    mean_kwh: float
    mean_soc: float
    slope: float
    slope_var: float
    sigma: float
    distinct: int

    def at(self, delivered_kwh: float) -> tuple[float, float]:
        """(soc, variance) on the line at ``delivered_kwh``."""
        dx = delivered_kwh - self.mean_kwh
        soc = self.mean_soc + self.slope * dx
        return soc, self.sigma ** 2 / self.distinct + dx * dx * self.slope_var


def _fit(readings: tuple[SocReading, ...], line: SocLine) -> _Fit:
    n = len(readings)
    mean_kwh = sum(r.delivered_kwh for r in readings) / n
    mean_soc = sum(r.soc for r in readings) / n
    sxx = sum((r.delivered_kwh - mean_kwh) ** 2 for r in readings)
    sxy = sum((r.delivered_kwh - mean_kwh) * (r.soc - mean_soc) for r in readings)
    prior = line.slope_per_kwh
    prior_var = (SLOPE_PRIOR_REL * prior) ** 2
    floor = line.reading_sigma

    def slope_at(sigma: float) -> tuple[float, float]:
        """(slope, its precision) with readings of standard deviation ``sigma`` against the prior."""
        precision = sxx / sigma ** 2 + 1.0 / prior_var
        return (sxy / sigma ** 2 + prior / prior_var) / precision, precision

    sigma = floor
    slope, precision = slope_at(sigma)
    if n > 5:
        # The readings' own scatter, once there are enough of them to show it; never below the quantum's rounding.
        for _ in range(2):
            residual = sum((r.soc - mean_soc - slope * (r.delivered_kwh - mean_kwh)) ** 2 for r in readings)
            sigma = max(floor, math.sqrt(residual / (n - 2)))
            slope, precision = slope_at(sigma)
    distinct = len({round(r.soc / SAME_READING) for r in readings})
    return _Fit(mean_kwh, mean_soc, slope, 1.0 / precision, sigma, max(1, distinct))


@dataclass(frozen=True, slots=True)
class SocTrack:
    """The recent SoC readings of one session, oldest first, and the line through them (fitted as each reading
    arrives, so a tick over a thousand sessions only evaluates it)."""

    readings: tuple[SocReading, ...] = ()
    line_fit: _Fit | None = None

    @staticmethod
    def of(readings: tuple[SocReading, ...], line: SocLine) -> SocTrack:
        return SocTrack(readings, _fit(readings, line) if len(readings) > 1 else None)

    def add(self, soc: float, delivered_kwh: float, line: SocLine) -> SocTrack:
        """The track with one more reading. A register that went backwards (a new meter, a reset) or a reading far
        off the line restarts the track at this reading."""
        if not (math.isfinite(soc) and math.isfinite(delivered_kwh)):
            return self
        reading = SocReading(min(1.0, max(0.0, soc)), max(0.0, delivered_kwh))
        kept = self.readings
        if kept and reading.delivered_kwh < kept[-1].delivered_kwh - 1e-3:
            return SocTrack((reading,))
        fit = self.line_fit
        if len(kept) >= 3 and fit is not None:
            expected, variance = fit.at(reading.delivered_kwh)
            allowed = max(JUMP_SIGMAS * math.sqrt(variance + fit.sigma ** 2), JUMP_MIN_QUANTA * max(line.resolution, 0.01))
            if abs(reading.soc - expected) > allowed:
                return SocTrack((reading,))
        window_kwh = WINDOW_SOC / line.slope_per_kwh
        kept = tuple(r for r in kept if reading.delivered_kwh - r.delivered_kwh <= window_kwh)
        return SocTrack.of((*kept, reading)[-MAX_READINGS:], line)

    def repaired(self, delivered_kwh: float, line: SocLine) -> SocTrack:
        """The track with its latest reading paired with ``delivered_kwh`` instead: the register of the same moment
        arrived after the SoC (both sampled together, sent in either order)."""
        if not self.readings or not math.isfinite(delivered_kwh):
            return self
        last = self.readings[-1]
        return SocTrack.of((*self.readings[:-1], SocReading(last.soc, max(0.0, delivered_kwh))), line)

    def fitted(self, delivered_kwh: float, line: SocLine) -> SocEstimate | None:
        """``estimate`` when it rests on more than one distinct reading: only then is it more than the reading itself
        (None otherwise). The live state and the benchmark plan with the fit exactly then."""
        found = self.estimate(delivered_kwh, line)
        return found if found is not None and found.readings > 1 else None

    def estimate(self, delivered_kwh: float, line: SocLine) -> SocEstimate | None:
        """The SoC now, with the register at ``delivered_kwh`` (None: no reading yet)."""
        if not self.readings:
            return None
        if len(self.readings) == 1:
            only = self.readings[0]
            soc = only.soc + (delivered_kwh - only.delivered_kwh) * line.slope_per_kwh
            return SocEstimate(min(1.0, max(0.0, soc)), line.reading_sigma, 1)
        fit = self.line_fit if self.line_fit is not None else _fit(self.readings, line)
        soc, variance = fit.at(delivered_kwh)
        return SocEstimate(min(1.0, max(0.0, soc)), math.sqrt(variance), fit.distinct)
