"""Who used the machine's CPU, read from ``/proc`` (Linux): this process (each of its threads by name), its child
processes (the solver process), the emulator processes of a load run (found by a marker in their command line)
and the whole machine (``/proc/stat``), so that what remains is everything else the machine ran. Read by
``tick_anatomy`` around each forced full tick of ``load_bench``.

``/proc`` is read as found: a file that is missing, unreadable or not in the expected form counts as "not known"
(None, or the process left out), never as zero and never as an error that stops the benchmark."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

RESCAN_S = 2.0  # how often /proc is searched for new emulator and child processes


@dataclass(frozen=True, slots=True)
class CpuSample:
    """CPU seconds used so far, read at ``at`` (``time.perf_counter``)."""

    at: float
    process_s: float | None  # this process, all its threads (dead ones included)
    threads_s: dict[str, float]  # this process's live threads, by thread name
    children_s: dict[int, float]  # child processes (the solver process), by pid
    emulators_s: dict[int, float]  # the load run's emulator processes, by pid
    machine_busy_s: float | None  # every CPU of the machine, all processes and the kernel


@dataclass(frozen=True, slots=True)
class CpuUse:
    """CPU seconds each party used between two samples, over ``wall_s``."""

    wall_s: float
    process_s: float | None
    loop_s: float | None  # the event loop's thread
    threads_s: dict[str, float]  # the other threads of this process that used any
    children_s: float
    emulators_s: float
    emulator_max_s: float  # the busiest single emulator process
    emulators_seen: int
    machine_s: float | None

    @property
    def others_s(self) -> float | None:
        """What the rest of the machine used (other jobs, the kernel's own work): all minus this run's processes."""
        if self.machine_s is None or self.process_s is None:
            return None
        return max(0.0, self.machine_s - self.process_s - self.children_s - self.emulators_s)


def stat_cpu_s(text: str, ticks_per_s: float) -> tuple[float, int] | None:
    """(utime + stime in seconds, parent pid) from a ``/proc/<pid>/stat`` line; None when it is not one."""
    _, sep, rest = text.rpartition(")")  # the command name may hold spaces and brackets
    fields = rest.split()
    if not sep or len(fields) < 13:
        return None
    try:
        return (int(fields[11]) + int(fields[12])) / ticks_per_s, int(fields[1])
    except ValueError:
        return None


def machine_busy_s(stat_text: str, ticks_per_s: float) -> float | None:
    """CPU seconds every CPU spent not idle (user, nice, system, irq, softirq, steal) from ``/proc/stat``."""
    for line in stat_text.splitlines():
        parts = line.split()
        if parts and parts[0] == "cpu":
            try:
                values = [int(v) for v in parts[1:9]]
            except ValueError:
                return None
            if len(values) < 8:
                return None
            user, nice, system, _idle, _iowait, irq, softirq, steal = values
            return (user + nice + system + irq + softirq + steal) / ticks_per_s
    return None


@dataclass
class CpuCensus:
    """Reads :class:`CpuSample` s. ``marker``: a string every emulator's command line holds (NUL-separated
    arguments, as ``/proc/<pid>/cmdline`` has them)."""

    marker: str
    proc: Path = Path("/proc")
    loop_thread: int = field(default_factory=threading.get_ident)
    _ticks_per_s: float = field(init=False)
    _pid: int = field(init=False, default_factory=os.getpid)
    _emulators: set[int] = field(init=False, default_factory=set)
    _children: set[int] = field(init=False, default_factory=set)
    _seen: set[int] = field(init=False, default_factory=set)
    _scanned_at: float = field(init=False, default=-1e9)

    def __post_init__(self) -> None:
        self._ticks_per_s = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0

    def _read(self, path: Path) -> str | None:
        try:
            return path.read_text(errors="replace")
        except OSError:
            return None

    def _scan(self) -> None:
        """Learn the emulator and child processes started since the last scan (each pid is looked at once)."""
        try:
            entries = [e.name for e in self.proc.iterdir() if e.name.isdigit()]
        except OSError:
            return
        for name in entries:
            pid = int(name)
            if pid in self._seen or pid == self._pid:
                continue
            self._seen.add(pid)
            try:
                cmdline = (self.proc / name / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if self.marker and self.marker in cmdline:
                self._emulators.add(pid)
                continue
            stat = self._read(self.proc / name / "stat")
            parsed = stat_cpu_s(stat, self._ticks_per_s) if stat is not None else None
            if parsed is not None and parsed[1] == self._pid:
                self._children.add(pid)

    def _pids_cpu_s(self, pids: set[int]) -> dict[int, float]:
        out: dict[int, float] = {}
        for pid in sorted(pids):
            stat = self._read(self.proc / str(pid) / "stat")
            parsed = stat_cpu_s(stat, self._ticks_per_s) if stat is not None else None
            if parsed is None:
                pids.discard(pid)  # gone (or unreadable): its CPU drops out of later windows, not into them
                continue
            out[pid] = parsed[0]
        return out

    def _threads_cpu_s(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for thread in threading.enumerate():
            if thread.native_id is None:
                continue
            stat = self._read(self.proc / "self" / "task" / str(thread.native_id) / "stat")
            parsed = stat_cpu_s(stat, self._ticks_per_s) if stat is not None else None
            if parsed is not None:
                name = "loop" if thread.ident == self.loop_thread else thread.name
                out[name] = out.get(name, 0.0) + parsed[0]
        return out

    def sample(self, *, scan: bool = False) -> CpuSample:
        """The CPU used so far; ``scan`` first looks for new processes (at most every ``RESCAN_S``): it walks
        all of ``/proc``, so samples taken inside a tick leave it to the background sampler."""
        now = time.perf_counter()
        if scan and now - self._scanned_at >= RESCAN_S:
            self._scan()
            self._scanned_at = now
        own = self._read(self.proc / "self" / "stat")
        parsed = stat_cpu_s(own, self._ticks_per_s) if own is not None else None
        machine = self._read(self.proc / "stat")
        return CpuSample(now, parsed[0] if parsed is not None else None, self._threads_cpu_s(),
                         self._pids_cpu_s(self._children), self._pids_cpu_s(self._emulators),
                         machine_busy_s(machine, self._ticks_per_s) if machine is not None else None)


def _delta(before: float | None, after: float | None) -> float | None:
    return after - before if before is not None and after is not None and after >= before else None


def _deltas(before: dict[int, float], after: dict[int, float]) -> list[float]:
    # Only processes seen at both ends: one that started or ended meanwhile has no figure for the window.
    return [max(0.0, after[pid] - before[pid]) for pid in before.keys() & after.keys()]


def cpu_use(before: CpuSample, after: CpuSample) -> CpuUse:
    """What each party used between ``before`` and ``after``."""
    threads = {name: after.threads_s[name] - before.threads_s[name]
               for name in before.threads_s.keys() & after.threads_s.keys()
               if name != "loop" and after.threads_s[name] > before.threads_s[name]}
    emulators = _deltas(before.emulators_s, after.emulators_s)
    return CpuUse(max(0.0, after.at - before.at), _delta(before.process_s, after.process_s),
                  _delta(before.threads_s.get("loop"), after.threads_s.get("loop")), threads,
                  sum(_deltas(before.children_s, after.children_s)), sum(emulators), max(emulators, default=0.0),
                  len(emulators), _delta(before.machine_busy_s, after.machine_busy_s))
