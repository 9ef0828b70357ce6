"""The ambient temperature a plan uses: a live reading while it is fresh, else the site file's value or profile.

Pure: the caller passes the time and the last reading. The result fills ``Snapshot.ambient_c`` and
``Snapshot.ambient_forecast_c`` (hourly from now, two days, so any horizon is covered); ``warmest_over_steps``
turns such a forecast into the ambient of each step of a plan.

How a forecast is read: sample k is the ambient at k hours from its origin, and between two samples the air may
have moved anywhere between them (a site file's hourly profile and the benchmark's days change once an hour,
at a moment the samples do not show). The ambient over a stretch of time is therefore taken as the warmer of the
samples around it: never below the real air while it moves monotonically between samples. Warmer is the
conservative side: a battery cools more slowly in warmer air (docs/battery.md, "Ambient temperature").
"""

from __future__ import annotations

import math
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from optimizer.site_model import Site

FORECAST_HOURS = 48
# A step boundary computed as a sum of step lengths lands a rounding error off the hour; within this it is on it.
ON_THE_HOUR_H = 1e-9


class AmbientSource(StrEnum):
    MEASURED = "measured"  # a live reading younger than the site's ambient.max_age_s
    SITE_FILE = "site_file"


@dataclass(frozen=True, slots=True)
class AmbientReading:
    """A live reading, optionally with an hourly forecast from ``measured_at`` on (a weather service's)."""

    temp_c: float
    measured_at: datetime
    forecast_c: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class AmbientNow:
    ambient_c: float
    forecast_c: tuple[float, ...]  # hourly from now; empty when constant
    source: AmbientSource
    age_s: float | None  # of the live reading in use (None: the site file's value)


def ambient_now(site: Site, now: datetime, reading: AmbientReading | None) -> AmbientNow:
    """The ambient at ``now``: ``reading`` when it is at most ``site.ambient.max_age_s`` old (and not from the future),
    the site file's value otherwise. Later hours come from the reading's forecast, else from the site's profile."""
    profile = site.ambient.profile_c
    fresh = reading is not None and timedelta(0) <= now - reading.measured_at <= timedelta(seconds=site.ambient.max_age_s)
    if len(profile) == 1:
        hourly: tuple[float, ...] = ()
        base = profile[0]
    else:
        tz = zoneinfo.ZoneInfo(site.timezone)
        hourly = tuple(site.ambient.at_hour((now + timedelta(hours=k)).astimezone(tz).hour) for k in range(FORECAST_HOURS))
        base = hourly[0]
    if reading is not None and fresh:
        age = (now - reading.measured_at).total_seconds()
        if reading.forecast_c:
            forecast = _from_now(reading.temp_c, reading.forecast_c, age / 3600.0)
        else:
            forecast = (reading.temp_c, *hourly[1:]) if hourly else ()
        return AmbientNow(reading.temp_c, forecast, AmbientSource.MEASURED, age)
    return AmbientNow(base, hourly, AmbientSource.SITE_FILE, None)


def _from_now(temp_c: float, samples: Sequence[float], age_h: float) -> tuple[float, ...]:
    """A reading's forecast (hourly from the reading, ``age_h`` hours ago) as hourly samples from now: sample 0 is
    the reading itself, sample k ≥ 1 the warmer of the reading's two samples around now + k hours (the hours
    already past are dropped; the last sample holds beyond the end). Empty when nothing is left after now."""
    first = math.floor(age_h + ON_THE_HOUR_H)
    on_the_hour = age_h - first < ON_THE_HOUR_H
    last = len(samples) - 1
    ahead = [samples[j] if on_the_hour else max(samples[j], samples[min(j + 1, last)]) for j in range(first + 1, last + 1)]
    return (temp_c, *ahead) if ahead else ()


def warmest_over_steps(forecast_c: Sequence[float], start_h: NDArray[np.float64],
                       length_h: NDArray[np.float64]) -> NDArray[np.float64]:
    """The ambient (°C) of each step [start_h, start_h + length_h) of a plan, hours from the forecast's origin: the
    warmest of the samples from the last one at or before the step's start to the first one at or after its end
    (the last sample holds beyond the forecast). Raises ValueError for an empty forecast or a sample that is not
    a finite number.

    Why not the samples interpolated at the step's ends: between two samples the air may change at any moment
    (an hourly profile steps once an hour), so an interpolation understates a rising hour by up to the whole
    change; the bracketing samples never do. What it costs: on a rising day each step plans with the next
    sample's air up to an hour early; on a falling day a step uses the sample at or before its start, as before."""
    samples = np.asarray(forecast_c, dtype=np.float64)
    if samples.size == 0:
        raise ValueError("an ambient forecast needs at least one sample")
    bad = np.flatnonzero(~np.isfinite(samples))
    if bad.size:
        raise ValueError(f"ambient forecast sample {int(bad[0])} ({samples[bad[0]]!r}) is not a finite temperature")
    last = samples.size - 1
    first_sample = np.clip(np.floor(start_h + ON_THE_HOUR_H), 0, last).astype(np.int64)
    last_sample = np.clip(np.ceil(start_h + length_h - ON_THE_HOUR_H), 0, last).astype(np.int64)
    index = np.arange(samples.size)
    around = (index >= first_sample[:, None]) & (index <= last_sample[:, None])
    warmest: NDArray[np.float64] = np.where(around, samples, -np.inf).max(axis=1)
    return warmest
