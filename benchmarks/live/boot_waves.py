"""Each controller's boot wave in a fleet run (``fleet_load``): from the first charger message it handled until
every charger's set-up was done, the CPU its controller process and its emulators used meanwhile, and whether its
forced full tick ran while some controller (itself included) was still in its boot wave.

The times come from the load benchmark's raw figures (``controller.json`` in each site's work directory):
``time.perf_counter`` there and ``time.monotonic`` here are the same system-wide clock on Linux
(``CLOCK_MONOTONIC``), so the waves of different controller processes can be compared. The CPU is sampled from
``/proc`` (Linux; elsewhere no figure) by a thread of the ``fleet_load`` process.
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DISPATCH_MATCH_MS = 0.6  # the recorded dispatch window and its rounded duration agree to this much


@dataclass(frozen=True, slots=True)
class BootWave:
    """One controller's boot wave and full tick, in seconds of the monotonic clock (None: not known)."""

    site: str
    start_s: float | None  # its first charger message arrived
    end_s: float | None  # every charger's set-up was done (None: not before the full tick, or not known)
    full_tick: tuple[float, float] | None  # (start, end) of the forced full tick


def _number(raw: object) -> float | None:
    return float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else None


def boot_wave(site: str, figures: Mapping[str, Any], full_tick_delay_s: float) -> BootWave:
    """The boot wave of one controller from its raw figures (``load_bench``'s ``controller.json``); anything
    missing or malformed leaves that part unknown."""
    starts = []
    for mark in figures.get("raw_marks") or []:
        if isinstance(mark, list | tuple) and len(mark) == 2:
            end, ms = _number(mark[0]), _number(mark[1])
            if end is not None and ms is not None:
                starts.append(end - ms / 1000.0)
    full = figures.get("full_tick")
    full = full if isinstance(full, Mapping) else {}
    tick_ms, dispatch_ms = _number(full.get("tick_ms")), _number(full.get("dispatch_ms"))
    tick: tuple[float, float] | None = None
    if tick_ms is not None and dispatch_ms is not None:
        for window in figures.get("raw_windows") or []:
            if not (isinstance(window, list | tuple) and len(window) == 3 and window[0] == "dispatch"):
                continue
            start, end = _number(window[1]), _number(window[2])
            if start is not None and end is not None and abs((end - start) * 1000.0 - dispatch_ms) <= DISPATCH_MATCH_MS:
                tick = (end - tick_ms / 1000.0, end)
                break
    end_s = tick[0] - full_tick_delay_s if tick is not None and full.get("set_up_done") is True else None
    return BootWave(site, min(starts) if starts else None, end_s, tick)


def ticks_in_boot_waves(waves: Sequence[BootWave]) -> dict[str, list[str]]:
    """For each controller, the controllers (itself included) whose boot wave overlapped its full tick. A wave
    that never ended (set-up not done before its own full tick) lasts until that tick ends."""
    out: dict[str, list[str]] = {}
    for wave in waves:
        if wave.full_tick is None:
            continue
        tick_start, tick_end = wave.full_tick
        out[wave.site] = []
        for other in waves:
            if other.start_s is None:
                continue
            other_end = other.end_s if other.end_s is not None else (
                other.full_tick[1] if other.full_tick is not None else None)
            if other_end is not None and other.start_s < tick_end and other_end > tick_start:
                out[wave.site].append(other.site)
    return out


def process_cpu_s(pid: int) -> float | None:
    """utime + stime of a process in seconds (``/proc``); None when it is gone or this is not Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def pids_matching(marker: str) -> list[int]:
    """Processes whose command line (NUL-separated) contains ``marker``."""
    out: list[int] = []
    try:
        entries = list(Path("/proc").iterdir())
    except OSError:
        return out
    for entry in entries:
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    out.append(int(entry.name))
            except OSError:
                continue
    return out


class CpuSampler:
    """Samples, every ``period_s`` in a thread, the CPU seconds used so far by groups of processes, each group
    named and found by a command-line marker (a group's processes are looked up again while the group has none,
    and whenever one of them ended). ``cpu_at(name, t)`` interpolates."""

    def __init__(self, markers: Mapping[str, str], period_s: float = 1.0) -> None:
        self.markers = dict(markers)
        self.period_s = period_s
        self.samples: dict[str, list[tuple[float, float]]] = {name: [] for name in markers}
        self._pids: dict[str, list[int]] = {name: [] for name in markers}
        self._last: dict[int, float] = {}  # a process's last CPU figure: kept once it has ended
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5 * self.period_s + 5)

    def sample(self) -> None:
        now = time.monotonic()
        for name, marker in self.markers.items():
            pids = self._pids[name]
            alive = {pid: process_cpu_s(pid) for pid in pids}
            if not pids or any(cpu is None for cpu in alive.values()):
                for pid in pids_matching(marker):
                    if pid not in pids:
                        pids.append(pid)
                        alive[pid] = process_cpu_s(pid)
            for pid, cpu in alive.items():
                if cpu is not None:
                    self._last[pid] = cpu
            if pids:
                self.samples[name].append((now, sum(self._last.get(pid, 0.0) for pid in pids)))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.period_s)

    def cpu_at(self, name: str, t: float) -> float | None:
        """CPU seconds the group had used at monotonic time ``t`` (linear between samples; None outside them)."""
        points = self.samples.get(name) or []
        times = [p[0] for p in points]
        i = bisect.bisect_left(times, t)
        if i < len(points) and times[i] == t:
            return points[i][1]
        if i == 0 or i == len(points):
            return None
        (t0, c0), (t1, c1) = points[i - 1], points[i]
        return c0 + (c1 - c0) * (t - t0) / (t1 - t0)

    def cpu_between(self, name: str, start: float | None, end: float | None) -> float | None:
        """CPU seconds the group used from ``start`` to ``end`` (from its first sample if ``start`` came before
        it, which undercounts by at most one period)."""
        points = self.samples.get(name) or []
        if start is None or end is None or not points:
            return None
        before, after = self.cpu_at(name, max(start, points[0][0])), self.cpu_at(name, end)
        return round(after - before, 2) if before is not None and after is not None else None
