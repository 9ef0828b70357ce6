"""What the load benchmarks measure in a running controller and around it: event-loop lag, garbage collection on
the loop's thread, the store's write backlog, CPU of the emulator processes, memory, latency percentiles split by
what the controller was doing. Read by ``load_bench`` (one controller) and ``fleet_load`` (many)."""

from __future__ import annotations

import asyncio
import math
import os
import resource
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.live.cpu_census import stat_cpu_s


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def proc_status_mb(field: str) -> float | None:
    """VmRSS / VmHWM of this process in MB (Linux); None elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


class LoopLag:
    """How late the event loop wakes a task that sleeps ``period_s``: the time any ready callback (a charger's
    message among them) may have waited behind whatever held the loop."""

    def __init__(self, period_s: float = 0.01) -> None:
        self.period_s = period_s
        self.lags_ms: list[float] = []
        self.late: list[tuple[float, float]] = []  # (perf_counter at wake-up, lag ms) of the wake-ups > 50 ms late

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.period_s)
            lag_ms = max(0.0, (loop.time() - before - self.period_s) * 1000.0)
            self.lags_ms.append(lag_ms)
            if lag_ms > 50.0:
                self.late.append((round(time.perf_counter(), 4), round(lag_ms, 1)))

    def figures(self) -> dict[str, Any]:
        return {"loop_lag_ms_p99": percentile(self.lags_ms, 0.99), "loop_lag_ms_max": max(self.lags_ms, default=None),
                "loop_lag_over_50ms": sum(1 for x in self.lags_ms if x > 50.0)}


class GcTime:
    """CPU seconds the garbage collector took on the event loop's thread (``gc.callbacks``; a collection runs in
    the thread whose allocation triggered it, and holds the GIL meanwhile)."""

    def __init__(self, thread_id: int) -> None:
        self.thread_id = thread_id
        self.total_s = 0.0
        self.by_generation_s = [0.0, 0.0, 0.0]
        self.by_generation_n = [0, 0, 0]
        self._started: float | None = None

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if threading.get_ident() != self.thread_id:
            return
        if phase == "start":
            self._started = time.thread_time()
        elif self._started is not None:
            took_s = time.thread_time() - self._started
            self.total_s += took_s
            self.by_generation_s[info["generation"]] += took_s
            self.by_generation_n[info["generation"]] += 1
            self._started = None


def split_by_activity(marks: list[tuple[float, float]], windows: list[tuple[str, float, float]]
                      ) -> dict[str, dict[str, Any]]:
    """Latencies (``(end, ms)`` with ``end`` on ``time.perf_counter``) by the activity whose window overlaps the
    message's handling; a message overlapping none is "idle"."""
    groups: dict[str, list[float]] = {"solve": [], "dispatch": [], "idle": []}
    for end, ms in marks:
        begin = end - ms / 1000.0
        kind = next((k for k, w0, w1 in windows if begin <= w1 and end >= w0), "idle")
        groups[kind].append(ms)
    return {k: {"n": len(v), "p50": percentile(v, 0.5), "p99": percentile(v, 0.99)} for k, v in groups.items()}


def rusage_cpu_s(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def peers_cpu_s(marker: str) -> float | None:
    """CPU seconds used so far by the processes whose command line contains ``marker`` (the emulators of this
    run), from ``/proc`` (Linux); None elsewhere."""
    total = 0.0
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if marker not in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    continue
                parsed = stat_cpu_s((entry / "stat").read_text(), ticks)
            except OSError:
                continue  # gone meanwhile
            if parsed is None:
                return None
            total += parsed[0]
    except (OSError, ValueError):
        return None
    return total


class Backlog:
    """The store's write backlog (``StoreRecorder.backlog``), sampled every ``period_s``."""

    def __init__(self, recorder: Any, period_s: float = 0.5) -> None:
        self.recorder = recorder
        self.period_s = period_s
        self.max = 0

    async def run(self) -> None:
        while True:
            self.max = max(self.max, int(self.recorder.backlog))
            await asyncio.sleep(self.period_s)
