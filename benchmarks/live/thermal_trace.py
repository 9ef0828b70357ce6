"""What a live run did to its batteries, beside what the controller believed: the trace behind a live temperature
figure, and whether the host kept up with the speed asked.

``ThermalWatch`` collects, every ``WATCH_EVERY_S`` emulated seconds, each plugged-in vehicle's true battery
temperature with its ceiling, the power it draws, the limit it is offered and which profile layer sets that limit,
and the command the last tick sent its connector; from every tick, when it observed and when its command was in
place; from every plug-in, what the vehicle drew before its first command. ``summary`` turns that into over-ceiling
episodes (which bus, when, how far over, what was commanded, drawn and in force when it went over) and a pace
verdict: a run on a host that could not keep up (ticks late, commands standing past the profiles' time to live,
the harness waking late, the chargers' messages queued for longer than a control interval) is reported as such,
and its figures are no verdict on the controller. Pure numbers.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

WATCH_EVERY_S = 30.0  # emulated
# The host kept up when: no two ticks observed further apart than this many control intervals (the interval tick
# came late or was coalesced away) ...
LATE_GAP_INTERVALS = 1.5
# ... and the harness's own timers fired at most this late (emulated s) in 95 % of cases (the event loop was not
# blocked for long: at 60× one wall second is 60 emulated seconds).
LATE_WAKE_S = 30.0


@dataclass(frozen=True, slots=True)
class ThermalSample:
    """One plugged-in vehicle with a thermal model at one emulated instant (seconds since the scenario's start)."""

    at_s: float
    row: int
    charger_id: str
    temp_c: float
    ceiling_c: float
    drawn_kw: float  # mean over the emulator's last physics step
    offered_kw: float  # the composite limit the charger offers now
    layer: str  # e.g. "TxProfile@1 / StationMax@1"
    commanded_kw: float | None  # the last dispatched plan's limit for this connector (None: none yet this visit)
    commanded_at_s: float | None  # when that tick observed


@dataclass(frozen=True, slots=True)
class TickTiming:
    observed_s: float  # the tick's snapshot, emulated s since start
    done_s: float  # when its command was in place (or it gave up)
    dispatched: bool


@dataclass(frozen=True, slots=True)
class PlugInTransient:
    """A vehicle's time on the fail-safe layers between its plug-in and its first command."""

    row: int
    charger_id: str
    plugged_s: float
    first_command_s: float
    drawn_kwh: float
    temp_at_plug_c: float
    temp_at_command_c: float
    ceiling_c: float


@dataclass(frozen=True, slots=True)
class Episode:
    """A stretch of consecutive samples over the ceiling."""

    row: int
    charger_id: str
    start_s: float
    end_s: float
    peak_excess_c: float
    c_min: float  # Σ excess × sample spacing
    first: ThermalSample  # the first sample over: what was commanded, drawn and in force then


@dataclass(frozen=True, slots=True)
class Pace:
    kept_up: bool
    reasons: tuple[str, ...]
    ticks: int
    worst_tick_gap_s: float  # between consecutive ticks' snapshots
    worst_tick_s: float  # snapshot to command in place, emulated
    worst_command_stood_s: float  # a dispatched command's snapshot to the next dispatched command in place
    wake_lag_p95_s: float
    wake_lag_max_s: float
    message_lag_max_s: float = 0.0  # the chargers' oldest queued message behind the clock, worst sample
    readings_shed: int = 0


@dataclass(slots=True)
class ThermalWatch:
    interval_s: float
    ttl_s: float
    samples: list[ThermalSample] = field(default_factory=list)
    ticks: list[TickTiming] = field(default_factory=list)
    transients: list[PlugInTransient] = field(default_factory=list)
    wake_lags_s: list[float] = field(default_factory=list)
    # Every WATCH_EVERY_S: how far behind the clock the oldest message queued by any charger was (emulated s).
    message_lags_s: list[float] = field(default_factory=list)
    readings_shed: int = 0  # periodic readings the chargers dropped because a newer one was queued

    def pace(self) -> Pace:
        reasons: list[str] = []
        observed = sorted(t.observed_s for t in self.ticks)
        gaps = [b - a for a, b in itertools.pairwise(observed)]
        worst_gap = max(gaps, default=0.0)
        if worst_gap > LATE_GAP_INTERVALS * self.interval_s:
            reasons.append(f"ticks {worst_gap:.0f} emulated s apart (interval {self.interval_s:.0f} s)")
        stood = _command_spans(self.ticks)
        worst_stood = max(stood, default=0.0)
        if worst_stood > self.ttl_s:
            reasons.append(f"a command stood {worst_stood:.0f} s, past the profiles' time to live ({self.ttl_s:.0f} s):"
                           " limits lapsed to the fail-safe layers")
        lags = sorted(self.wake_lags_s)
        p95 = lags[min(len(lags) - 1, int(0.95 * len(lags)))] if lags else 0.0
        if p95 > LATE_WAKE_S:
            reasons.append(f"the harness woke {p95:.0f} emulated s late (95th percentile): the host is behind the clock")
        message_lag = max(self.message_lags_s, default=0.0)
        if message_lag > self.interval_s:
            reasons.append(f"the chargers' messages waited up to {message_lag:.0f} emulated s to be sent: plug-ins and"
                           " unplugs reached the controller late")
        worst_tick = max((t.done_s - t.observed_s for t in self.ticks), default=0.0)
        return Pace(not reasons, tuple(reasons), len(self.ticks), worst_gap, worst_tick, worst_stood, p95,
                    max(lags, default=0.0), message_lag, self.readings_shed)

    def episodes(self) -> list[Episode]:
        return over_ceiling_episodes(self.samples, WATCH_EVERY_S)

    def write(self, path: Path) -> None:
        """Everything collected, as JSON lines (one object per sample, tick, plug-in), for a closer look."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as out:
            for kind, rows in (("sample", self.samples), ("tick", self.ticks), ("plug_in", self.transients)):
                for r in rows:
                    out.write(json.dumps({"kind": kind, **asdict(r)}) + "\n")


def _command_spans(ticks: Iterable[TickTiming]) -> list[float]:
    spans: list[float] = []
    standing_from: float | None = None
    for t in sorted(ticks, key=lambda t: t.observed_s):
        if not t.dispatched:
            continue
        if standing_from is not None:
            spans.append(t.done_s - standing_from)
        standing_from = t.observed_s
    return spans


def over_ceiling_episodes(samples: Iterable[ThermalSample], spacing_s: float) -> list[Episode]:
    by_row: dict[int, list[ThermalSample]] = {}
    for s in samples:
        by_row.setdefault(s.row, []).append(s)
    episodes: list[Episode] = []
    for row, rows in sorted(by_row.items()):
        run: list[ThermalSample] = []
        for sample in sorted(rows, key=lambda s: s.at_s):
            if sample.temp_c > sample.ceiling_c:
                run.append(sample)
            elif run:
                episodes.append(_episode(row, run, spacing_s))
                run = []
        if run:
            episodes.append(_episode(row, run, spacing_s))
    return episodes


def _episode(row: int, run: list[ThermalSample], spacing_s: float) -> Episode:
    excess = [r.temp_c - r.ceiling_c for r in run]
    return Episode(row, run[0].charger_id, run[0].at_s, run[-1].at_s, max(excess), sum(excess) * spacing_s / 60.0,
                   run[0])


def summary(watch: ThermalWatch, speed: float) -> list[str]:
    """Lines for the console: the pace verdict, the plug-in transients, the over-ceiling episodes."""
    pace = watch.pace()
    lines = [f"pace at {speed:g}x: " + ("kept up" if pace.kept_up else "HOST COULD NOT KEEP UP (" +
                                         "; ".join(pace.reasons) + "): the temperature figure is no verdict")
             + f" | {pace.ticks} ticks, worst gap {pace.worst_tick_gap_s:.0f} s, worst tick {pace.worst_tick_s:.0f} s,"
             f" worst command stood {pace.worst_command_stood_s:.0f} s, harness wake lag p95"
             f" {pace.wake_lag_p95_s:.1f} s / max {pace.wake_lag_max_s:.1f} s, chargers' messages up to"
             f" {pace.message_lag_max_s:.0f} s behind, {pace.readings_shed} periodic readings dropped as superseded"
             " (emulated)"]
    if watch.transients:
        worst = max(watch.transients, key=lambda t: t.temp_at_command_c - t.ceiling_c)
        lines.append(
            f"plug-in transients: {len(watch.transients)}, on the fail-safe layers for up to "
            f"{max(t.first_command_s - t.plugged_s for t in watch.transients):.0f} s, drawing up to "
            f"{max(t.drawn_kwh for t in watch.transients):.2f} kWh; closest to its ceiling at its first command: "
            f"session {worst.row} ({worst.charger_id}) {worst.temp_at_plug_c:.2f} -> {worst.temp_at_command_c:.2f} °C"
            f" against {worst.ceiling_c:.1f}")
    episodes = watch.episodes()
    total = sum(e.c_min for e in episodes)
    lines.append(f"over a ceiling: {len(episodes)} episodes, {total:.2f} °C·min (sampled every {WATCH_EVERY_S:g} s)")
    for e in sorted(episodes, key=lambda e: -e.c_min)[:10]:
        f = e.first
        commanded = "none yet" if f.commanded_kw is None else f"{f.commanded_kw:.1f} kW (tick at {f.commanded_at_s:.0f} s)"
        lines.append(f"  session {e.row} ({e.charger_id}) {e.start_s:.0f}-{e.end_s:.0f} s: peak +{e.peak_excess_c:.2f} °C,"
                     f" {e.c_min:.2f} °C·min; going over: drew {f.drawn_kw:.1f} kW, offered {f.offered_kw:.1f} kW by"
                     f" {f.layer}, commanded {commanded}")
    return lines
