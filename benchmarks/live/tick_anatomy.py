"""Where each forced full tick of ``load_bench`` spent its time, measured in the controller process:

- every profile call the dispatcher sends, timed from the dispatcher's call to the charger's answer (the link's
  own lock wait included): round trips median / p99 / max, when the last call of each phase (lowering calls,
  then raising ones) went out, and how many were still unanswered at each quarter of the dispatch;
- the CPU of every party while the tick ran, while its dispatch ran and in the second before it
  (``cpu_census``): the controller process and its threads by name, its solver process, the emulator processes
  and the rest of the machine; work an earlier tick left behind shows in the second before;
- the event loop's lag during the tick (the 10 ms sleeper of ``load_probes.LoopLag``), the charger CALLs
  (meter values mostly) the controller handled meanwhile and the store's write backlog at both ends.

Nothing here changes what the controller sends or when: the links the dispatcher sees are wrapped only to note
two times per call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from benchmarks.live.cpu_census import CpuCensus, CpuSample, CpuUse, cpu_use
from benchmarks.live.load_probes import LoopLag, percentile
from csms_adapter.tasks import cancel_and_wait

SAMPLE_EVERY_S = 0.25  # background CPU samples: the "second before" a tick is read from them
BEFORE_S = 1.0
ARRIVALS_S = 10.0  # a meter interval of the load runs: charger CALLs per second over it, before each tick


@dataclass(frozen=True, slots=True)
class CallSpan:
    """One profile call on ``time.perf_counter``: sent by the dispatcher at ``start``, answered (or failed) at
    ``end``."""

    start: float
    end: float
    ok: bool


class TimedLink:
    """A charger link whose two profile calls note their span; everything else is the link itself."""

    def __init__(self, link: Any, spans: list[CallSpan]) -> None:
        self._link = link
        self._spans = spans

    def __getattr__(self, name: str) -> Any:
        return getattr(self._link, name)

    async def _timed(self, call: Awaitable[None]) -> None:
        start, ok = time.perf_counter(), False
        try:
            await call
            ok = True
        finally:
            self._spans.append(CallSpan(start, time.perf_counter(), ok))

    async def set_tx_limit(self, *args: Any, **kwargs: Any) -> None:
        await self._timed(self._link.set_tx_limit(*args, **kwargs))

    async def set_live_station_max(self, *args: Any, **kwargs: Any) -> None:
        await self._timed(self._link.set_live_station_max(*args, **kwargs))


class TimedLinks(Mapping[str, Any]):
    """The controller's live link mapping (still read through, so connections that come and go are seen), its
    links wrapped in :class:`TimedLink`."""

    def __init__(self, links: Mapping[str, Any], spans: list[CallSpan]) -> None:
        self._links = links
        self._spans = spans

    def __getitem__(self, charger_id: str) -> Any:
        return TimedLink(self._links[charger_id], self._spans)

    def __iter__(self) -> Iterator[str]:
        return iter(self._links)

    def __len__(self) -> int:
        return len(self._links)


def call_figures(spans: list[CallSpan], start: float, end: float) -> dict[str, Any]:
    """Round trips (ms) of the calls sent in [start, end], when the last went out and how many were still
    unanswered at each quarter of the window."""
    inside = [s for s in spans if start <= s.start <= end]
    rtt = [(s.end - s.start) * 1000.0 for s in inside]
    quarters = [start + q * (end - start) / 4 for q in (1, 2, 3)]
    return {
        "calls": len(inside),
        "failed": sum(1 for s in inside if not s.ok),
        "rtt_ms_p50": _round(percentile(rtt, 0.5)),
        "rtt_ms_p99": _round(percentile(rtt, 0.99)),
        "rtt_ms_max": _round(max(rtt, default=None)),
        "last_sent_ms": _round((max(s.start for s in inside) - start) * 1000.0) if inside else None,
        "unanswered_at_quarters": [sum(1 for s in inside if s.start <= t < s.end) for t in quarters],
        "not_yet_sent_at_quarters": [sum(1 for s in inside if s.start > t) for t in quarters],
    }


def arrival_figures(marks: list[tuple[float, float]], start: float, end: float) -> dict[str, Any]:
    """Charger CALLs handled per second in [start, end) (whole seconds from ``start``): median and max. Chargers
    that report at moments of their own give a max near the median; a fleet in lockstep gives bursts."""
    seconds = max(1, int(end - start))
    counts = [0] * seconds
    for at, _ms in marks:
        if start <= at < start + seconds:
            counts[int(at - start)] += 1
    return {"seconds": seconds, "median": percentile([float(c) for c in counts], 0.5), "max": max(counts)}


def _round(value: float | None, digits: int = 1) -> float | None:
    return round(value, digits) if value is not None else None


def cpu_figures(use: CpuUse) -> dict[str, Any]:
    """CPU seconds of each party in one window, and its wall seconds."""
    top = sorted(use.threads_s.items(), key=lambda kv: kv[1], reverse=True)[:3]
    return {"wall_s": round(use.wall_s, 3), "controller_s": _round(use.process_s, 3),
            "loop_s": _round(use.loop_s, 3), "threads_s": {k: round(v, 3) for k, v in top},
            "solver_s": round(use.children_s, 3), "emulators_s": round(use.emulators_s, 3),
            "emulator_max_s": round(use.emulator_max_s, 3), "emulators": use.emulators_seen,
            "machine_s": _round(use.machine_s, 3), "others_s": _round(use.others_s, 3)}


@dataclass
class _Tick:
    start: float
    end: float = 0.0
    lag_from: int = 0
    lag_to: int = 0
    handled_from: int = 0
    handled_to: int = 0
    backlog_from: int = 0
    backlog_to: int = 0
    at_start: CpuSample | None = None
    at_end: CpuSample | None = None
    before: CpuSample | None = None  # about ``BEFORE_S`` ahead of the start


class TickAnatomy:
    """Install on a started controller; mark each forced tick with :meth:`tick_started` / :meth:`tick_ended`;
    :meth:`figures` gives one dictionary per marked tick."""

    def __init__(self, controller: Any, census: CpuCensus, lag: LoopLag,
                 marks: list[tuple[float, float]] | None = None) -> None:
        """``marks``: (end on ``time.perf_counter``, ms) of every charger CALL handled, as ``load_bench`` keeps
        them: how they arrived in the seconds before each tick (even, or in bursts) is read from them."""
        self.controller = controller
        self.census = census
        self.lag = lag
        self.marks = marks if marks is not None else []
        self.spans: list[CallSpan] = []
        self.phases: list[tuple[bool, float, float]] = []  # (lowering, start, end) of each charger's phase
        self.dispatches: list[tuple[float, float, CpuSample, CpuSample]] = []
        self.samples: list[CpuSample] = []
        self.ticks: list[_Tick] = []
        self._task: asyncio.Task[None] | None = None
        dispatcher = controller.dispatcher
        dispatcher.links = TimedLinks(dispatcher.links, self.spans)
        send: Callable[..., Awaitable[Any]] = dispatcher._send
        dispatch: Callable[..., Awaitable[Any]] = dispatcher.dispatch

        async def timed_send(calls: Any, now: Any, *, lowering: bool, hold: bool) -> Any:
            start = time.perf_counter()
            try:
                return await send(calls, now, lowering=lowering, hold=hold)
            finally:
                self.phases.append((lowering, start, time.perf_counter()))

        async def timed_dispatch(*args: Any, **kwargs: Any) -> Any:
            before = census.sample()
            try:
                return await dispatch(*args, **kwargs)
            finally:
                after = census.sample()
                self.dispatches.append((before.at, after.at, before, after))

        dispatcher._send = timed_send
        dispatcher.dispatch = timed_dispatch

    def _backlog(self) -> int:
        return int(getattr(self.controller.recorder, "backlog", 0))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._sample(), name="tick-anatomy")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])

    async def _sample(self) -> None:
        while True:
            self.samples.append(self.census.sample(scan=True))
            # A tick needs only the sample a second before its start (taken as it starts): a bounded memory.
            if len(self.samples) > 240:
                del self.samples[:-40]
            await asyncio.sleep(SAMPLE_EVERY_S)

    def tick_started(self) -> None:
        sample = self.census.sample()
        earlier = [s for s in self.samples if s.at <= sample.at - BEFORE_S]
        self.samples.append(sample)
        self.ticks.append(_Tick(sample.at, lag_from=len(self.lag.lags_ms),
                                handled_from=self.controller.handling.handled,
                                backlog_from=self._backlog(), at_start=sample,
                                before=earlier[-1] if earlier else None))

    def tick_ended(self) -> None:
        sample = self.census.sample()
        self.samples.append(sample)
        tick = self.ticks[-1]
        tick.end, tick.at_end = sample.at, sample
        tick.lag_to, tick.handled_to = len(self.lag.lags_ms), self.controller.handling.handled
        tick.backlog_to = self._backlog()

    def figures(self) -> list[dict[str, Any]]:
        return [self._tick_figures(t) for t in self.ticks if t.at_start is not None and t.at_end is not None]

    def _tick_figures(self, tick: _Tick) -> dict[str, Any]:
        assert tick.at_start is not None and tick.at_end is not None
        lags = self.lag.lags_ms[tick.lag_from:tick.lag_to]
        out: dict[str, Any] = {
            "tick_ms": round((tick.end - tick.start) * 1000.0, 1),
            "lag_ms_p99": _round(percentile(lags, 0.99)), "lag_ms_max": _round(max(lags, default=None)),
            "charger_calls_handled": tick.handled_to - tick.handled_from,
            "store_backlog": [tick.backlog_from, tick.backlog_to],
            "cpu_tick": cpu_figures(cpu_use(tick.at_start, tick.at_end)),
            "charger_calls_per_s_before": arrival_figures(self.marks, tick.start - ARRIVALS_S, tick.start),
        }
        if tick.before is not None:
            out["cpu_before"] = cpu_figures(cpu_use(tick.before, tick.at_start))
        dispatch = next((d for d in self.dispatches if tick.start <= d[0] <= tick.end), None)
        if dispatch is not None:
            d_start, d_end, d_before, d_after = dispatch
            out["dispatch_ms"] = round((d_end - d_start) * 1000.0, 1)
            out["calls"] = call_figures(self.spans, d_start, d_end)
            out["cpu_dispatch"] = cpu_figures(cpu_use(d_before, d_after))
            for lowering, name in ((True, "lowering"), (False, "raising")):
                mine = [(s, e) for low, s, e in self.phases if low is lowering and d_start <= s <= d_end]
                if mine:
                    p_start, p_end = min(s for s, _ in mine), max(e for _, e in mine)
                    out[name] = {"ms": round((p_end - p_start) * 1000.0, 1),
                                 **call_figures(self.spans, p_start, p_end)}
        return out


# ------------------------------------------------------------------------------------------------- report


def _ms(value: Any) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def _share(cpu: dict[str, Any] | None, key: str) -> str:
    """``cpu[key]`` as a percentage of one CPU over the window."""
    if not cpu or cpu.get(key) is None or not cpu.get("wall_s"):
        return "n/a"
    return f"{100.0 * float(cpu[key]) / float(cpu['wall_s']):.0f} %"


def _cpu_line(label: str, cpu: dict[str, Any] | None) -> str:
    if not cpu:
        return f"{label} n/a"
    threads = ", ".join(f"{name} {_share({**cpu, name: s}, name)}" for name, s in (cpu.get("threads_s") or {}).items())
    return (f"{label} ({_ms(1000.0 * float(cpu['wall_s']))} ms) controller {_share(cpu, 'controller_s')} "
            f"(loop {_share(cpu, 'loop_s')}{'; ' + threads if threads else ''}), solver {_share(cpu, 'solver_s')}, "
            f"{cpu.get('emulators')} emulators {_share(cpu, 'emulators_s')} (busiest {_share(cpu, 'emulator_max_s')}), "
            f"rest of the machine {_share(cpu, 'others_s')}")


def _calls_text(name: str, phase: dict[str, Any] | None) -> str:
    if not phase:
        return f"{name} none"
    return (f"{name} {phase['calls']} calls in {_ms(phase.get('ms'))} ms (last sent after "
            f"{_ms(phase.get('last_sent_ms'))} ms)")


def anatomy_lines(anatomies: list[dict[str, Any]]) -> list[str]:
    """Three lines per forced full tick: its calls, the CPU around it, its loop lag and store backlog."""
    out: list[str] = []
    for k, a in enumerate(anatomies, start=1):
        calls = a.get("calls") or {}
        out.append(
            f"  full tick {k} anatomy        tick {_ms(a.get('tick_ms'))} ms, dispatch {_ms(a.get('dispatch_ms'))} ms: "
            f"{calls.get('calls')} calls ({calls.get('failed')} failed), round trip p50 / p99 / max "
            f"{_ms(calls.get('rtt_ms_p50'))} / {_ms(calls.get('rtt_ms_p99'))} / {_ms(calls.get('rtt_ms_max'))} ms; "
            f"{_calls_text('lowering', a.get('lowering'))}, {_calls_text('raising', a.get('raising'))}; unanswered "
            f"at 1/4, 1/2, 3/4 of the dispatch "
            + " / ".join(str(n) for n in calls.get("unanswered_at_quarters") or ["n/a"])
            + " (not sent yet " + " / ".join(str(n) for n in calls.get("not_yet_sent_at_quarters") or ["n/a"]) + ")")
        out.append("    CPU, % of one CPU: " + _cpu_line("in the dispatch", a.get("cpu_dispatch")) + "; "
                   + _cpu_line("in the second before the tick", a.get("cpu_before")))
        backlog = a.get("store_backlog") or [None, None]
        rate = a.get("charger_calls_per_s_before") or {}
        out.append(f"    loop lag in the tick p99 / max {_ms(a.get('lag_ms_p99'))} / {_ms(a.get('lag_ms_max'))} ms; "
                   f"{a.get('charger_calls_handled')} charger CALLs handled in the tick (in the {rate.get('seconds')} s "
                   f"before: {_ms(rate.get('median'))} per second median, {_ms(rate.get('max'))} max); store backlog "
                   f"{backlog[0]} -> {backlog[1]}; "
                   + _cpu_line("whole tick", a.get("cpu_tick")))
    return out


def anatomy_census(emulator_marker: str) -> CpuCensus:
    """A census for the controller process of ``load_bench``, made on its event loop's thread."""
    return CpuCensus(emulator_marker)
