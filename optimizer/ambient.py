"""The ambient temperature a plan uses: a live reading while it is fresh, else the site file's value or profile.

Pure: the caller passes the time and the last reading. The result fills ``Snapshot.ambient_c`` and
``Snapshot.ambient_forecast_c`` (hourly from now, two days, so any horizon is covered).
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from optimizer.site_model import Site

FORECAST_HOURS = 48


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
            # Hour k of the forecast started k hours after the reading: drop the hours already past.
            ahead = reading.forecast_c[int(age // 3600):]
            forecast = (reading.temp_c, *ahead[1:]) if len(ahead) > 1 else ()
        else:
            forecast = (reading.temp_c, *hourly[1:]) if hourly else ()
        return AmbientNow(reading.temp_c, forecast, AmbientSource.MEASURED, age)
    return AmbientNow(base, hourly, AmbientSource.SITE_FILE, None)
