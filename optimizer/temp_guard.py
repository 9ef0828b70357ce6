"""Battery temperature readings the plan can trust: a reading that moved further than the physics allows since the
last trusted one is not planned with as it is.

A sensor reads a little off now and then. Low is the dangerous side: a battery read 0.4 °C under its real
temperature near its ceiling is given a command that takes the real one over (docs/battery.md, "Robust readings").
So each new reading of a battery is compared with the last reading of it that was trusted:

* it may fall at most as fast as free cooling allows — no heating, cooling ``RATE_FACTOR`` times as fast as the
  model in use says, towards the cooler of the two ambients — and rise at most as fast as the energy drawn since
  can explain (heating ``RATE_FACTOR`` times as fast, no cooling), each with ``TOLERANCE_C`` for sensor noise;
* a reading outside that range is *distrusted*: the plan uses the larger of it and the model's prediction from the
  last trusted reading (so a low reading never lowers the plan's temperature below what the battery can be, and a
  high one is planned as read), the fit does not learn from it, and it is counted;
* a real step (a sensor replaced, a vehicle whose telematics jumped) must not be ignored for ever: after
  ``TRUST_AFTER`` consecutive readings that agree with each other by the same rule the newest one is trusted.

Pure: no clock, no I/O; the caller passes the snapshot (its times) and the model in use per session.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from optimizer.domain import SessionState, Snapshot, ThermalModel, ValueSource
from optimizer.thermal import step_temp_c

# How much faster than the model in use a battery may cool (or heat) before a reading is doubted: the benchmark
# absorbs batteries heating twice and cooling 1/0.7 times as fast as configured; 3 leaves room beyond both.
RATE_FACTOR = 3.0
# What a single reading may be off by and still be planned as read: the allowance the cautious first step leaves
# for a low reading (optimizer.strategies.thermal_first_step.FIRST_STEP_MARGIN_C). A reading further off than this
# and than the physics allows is what broke a ceiling in the benchmark.
TOLERANCE_C = 0.25
# Consecutive mutually consistent readings after which a step in the readings is believed.
TRUST_AFTER = 3

ConnectorKey = tuple[str, int]
ModelOf = Callable[[SessionState], ThermalModel]


@dataclass(frozen=True, slots=True)
class Reading:
    """One battery temperature with the connector's energy register and the ambient when it was read."""

    time: datetime
    temp_c: float
    energy_kwh: float
    ambient_c: float


@dataclass(frozen=True, slots=True)
class Verdict:
    """What was made of one reading: trusted as read, or the temperature planned with instead and why."""

    reading: Reading
    trusted: bool
    planned_c: float
    reason: str = ""  # "fell" or "rose" when distrusted


def plausible_range_c(model: ThermalModel, before: Reading, after: Reading) -> tuple[float, float]:
    """The lowest and highest temperature a battery read at ``before`` can have at ``after.time``, allowing for
    RATE_FACTOR times the model's cooling and heating rates and TOLERANCE_C of sensor noise each way."""
    hours = max(0.0, (after.time - before.time).total_seconds() / 3600.0)
    fast_b = model.cooling_per_h * RATE_FACTOR
    relax = 1.0 - math.exp(-fast_b * hours)
    cool_air = min(before.ambient_c, after.ambient_c)
    warm_air = max(before.ambient_c, after.ambient_c)
    lowest = before.temp_c - max(0.0, before.temp_c - cool_air) * relax
    energy_kwh = max(0.0, after.energy_kwh - before.energy_kwh)
    highest = before.temp_c + max(0.0, warm_air - before.temp_c) * relax + model.heating_c_per_kwh * RATE_FACTOR * energy_kwh
    return lowest - TOLERANCE_C, highest + TOLERANCE_C


def predicted_c(model: ThermalModel, before: Reading, at: datetime, energy_kwh: float, ambient_c: float) -> float:
    """The model's temperature at ``at`` from the trusted ``before``, at the mean power drawn since."""
    hours = (at - before.time).total_seconds() / 3600.0
    if hours <= 0:
        return before.temp_c
    power_kw = max(0.0, energy_kwh - before.energy_kwh) / hours
    return step_temp_c(model, before.temp_c, power_kw, hours, ambient_c)


@dataclass(slots=True)
class _Track:
    """One plugged-in battery: its last trusted reading, the run of doubted readings since, the last verdict."""

    plugged_in_at: datetime | None
    trusted: Reading
    doubted: list[Reading]
    last: Verdict


@dataclass(frozen=True, slots=True)
class Screened:
    """A snapshot for planning (doubted temperatures replaced), one for learning (doubted temperatures removed),
    and the verdicts on this snapshot's new readings that were not trusted."""

    planning: Snapshot
    learning: Snapshot
    distrusted: tuple[tuple[ConnectorKey, Verdict], ...]


class TempGuard:
    """Screens the battery temperatures of successive snapshots. One instance per controller (or benchmark run)."""

    def __init__(self) -> None:
        self._tracks: dict[ConnectorKey, _Track] = {}
        self.distrusted_total = 0  # new readings not trusted as read, since start
        self.steps_believed = 0  # runs of doubted readings that were then believed (a real step)

    def screen(self, snapshot: Snapshot, model_of: ModelOf) -> Screened:
        planning: list[SessionState] = []
        learning: list[SessionState] = []
        distrusted: list[tuple[ConnectorKey, Verdict]] = []
        present: set[ConnectorKey] = set()
        for s in snapshot.sessions:
            key = (s.charger_id, s.connector_id)
            present.add(key)
            model = model_of(s)
            if s.battery_temp_c is None or not model.is_modelled or not math.isfinite(s.battery_temp_c):
                planning.append(s)
                learning.append(s)
                continue
            reading = Reading(s.temp_at or snapshot.time, s.battery_temp_c, s.energy_delivered_kwh, snapshot.ambient_c)
            judged = self._judge(key, s.plugged_in_at, reading, model, snapshot, s.temp_source != ValueSource.ESTIMATED)
            if judged is None:
                planning.append(s)
                learning.append(s)
                continue
            verdict, new = judged
            if new and not verdict.trusted:
                distrusted.append((key, verdict))
            if verdict.trusted and verdict.planned_c == s.battery_temp_c:
                planning.append(s)
                learning.append(s)
                continue
            source = s.temp_source if verdict.planned_c == s.battery_temp_c else ValueSource.ESTIMATED
            planning.append(dataclasses.replace(s, battery_temp_c=verdict.planned_c, temp_source=source))
            learning.append(dataclasses.replace(s, battery_temp_c=None))
        for gone in set(self._tracks) - present:
            del self._tracks[gone]
        self.distrusted_total += len(distrusted)
        return Screened(
            planning=dataclasses.replace(snapshot, sessions=tuple(planning)),
            learning=dataclasses.replace(snapshot, sessions=tuple(learning)),
            distrusted=tuple(distrusted),
        )

    def _judge(self, key: ConnectorKey, plugged_in_at: datetime | None, reading: Reading, model: ThermalModel,
               snapshot: Snapshot, fresh: bool) -> tuple[Verdict, bool] | None:
        """The verdict on ``reading`` and whether it is a new reading (not one already judged). A stale reading
        (``fresh`` False: the live state marks a temperature older than its limit ESTIMATED) is judged only as the
        repeat of one already judged; otherwise None: it passes as it is, as it always has."""
        track = self._tracks.get(key)
        if track is not None and track.plugged_in_at != plugged_in_at:
            track = None
        if not fresh and (track is None or reading.time > track.last.reading.time):
            return None
        if track is None:
            verdict = Verdict(reading, True, reading.temp_c)  # a battery's first reading: nothing to doubt it by
            self._tracks[key] = _Track(plugged_in_at, reading, [], verdict)
            return verdict, True
        if reading.time <= track.last.reading.time:
            # The same reading again (a live temperature repeats until the next one arrives): keep its verdict,
            # the prediction moving on with the clock.
            if track.last.trusted:
                return track.last, False  # an older reading arriving late: the newest one still stands
            return self._doubted(track, reading, model, snapshot, track.last.reason), False
        low_c, high_c = plausible_range_c(model, track.trusted, reading)
        if low_c <= reading.temp_c <= high_c:
            track.trusted, track.doubted = reading, []
            track.last = Verdict(reading, True, reading.temp_c)
            return track.last, True
        reason = "fell" if reading.temp_c < low_c else "rose"
        if track.doubted:
            low_prev, high_prev = plausible_range_c(model, track.doubted[-1], reading)
            track.doubted = [*track.doubted, reading] if low_prev <= reading.temp_c <= high_prev else [reading]
        else:
            track.doubted = [reading]
        if len(track.doubted) >= TRUST_AFTER:
            self.steps_believed += 1
            track.trusted, track.doubted = reading, []
            track.last = Verdict(reading, True, reading.temp_c)
            return track.last, True
        track.last = self._doubted(track, reading, model, snapshot, reason)
        return track.last, True

    @staticmethod
    def _doubted(track: _Track, reading: Reading, model: ThermalModel, snapshot: Snapshot, reason: str) -> Verdict:
        expected_c = predicted_c(model, track.trusted, snapshot.time, reading.energy_kwh, snapshot.ambient_c)
        return Verdict(reading, False, max(reading.temp_c, expected_c), reason)
