"""The load benchmark's forced full tick: once every vehicle is in session and every charger is set up, every
deadband is forgotten so that one tick sends a TxProfile to every connector and a station maximum to every charger
(the worst case the 2 s target is about), and that tick is measured; and the summary kept of every tick. Run in
``load_bench``'s controller role (``load_controller``)."""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.live.load_probes import GcTime
from benchmarks.live.tick_anatomy import TickAnatomy

FULL_TICK_GAP_S = 3.0  # between repeated full ticks: the answers' after-effects (records, meter values) settle
GC_AFTER_S = 1.0  # garbage collection on the loop is also counted this long after each full tick


@dataclass(frozen=True, slots=True)
class FullTickPlan:
    """When the full tick is forced: once ``expect_sessions`` sessions are open and every charger's set-up is done
    (or ``settle_s`` after the controller started), ``delay_s`` later; ``count`` times, ``FULL_TICK_GAP_S`` apart,
    for a median; with a cProfile of the event-loop thread during the last one written to ``profile_out``."""

    expect_sessions: int
    settle_s: float
    count: int = 1
    delay_s: float = 0.0
    profile_out: Path | None = None


def tenths(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


def tick_summary(result: Any) -> dict[str, Any]:
    plan, report = result.plan, result.report
    return {
        "tick_ms": round(result.tick_ms, 1),
        "snapshot_ms": tenths(getattr(result, "snapshot_ms", None)),
        "sessions": len(result.snapshot.sessions),
        "error": result.error,
        "plan_ms": round(plan.build_ms + plan.solve_ms, 1) if plan is not None else None,
        # The wait for the plan as the event loop saw it (in the solver process: with the hand-over both ways).
        "solve_wall_ms": tenths(getattr(result, "solve_ms", None)),
        "dispatch_ms": round(report.duration_ms, 1) if report is not None else None,
        # What the tick spent between the plan's arrival and the dispatch: the independent plan check (in a worker
        # thread) and the hand-overs around it.
        "check_ms": tenths(result.tick_ms - (getattr(result, "snapshot_ms", None) or 0.0)
                           - (getattr(result, "solve_ms", None) or 0.0) - report.duration_ms)
        if report is not None else None,
        "tx_accepted": sum(1 for r in report.records if r.outcome.value == "accepted") if report else 0,
        "tx_unchanged": sum(1 for r in report.records if r.outcome.value == "unchanged") if report else 0,
        "station_accepted": sum(1 for r in report.station_records if r.outcome.value == "accepted") if report else 0,
        "failed": sum(1 for r in (*report.records, *report.station_records)
                      if r.outcome.value in ("timeout", "error", "rejected")) if report else 0,
    }


def set_up_done(controller: Any) -> bool:
    """Every site charger is connected and set up, and no set-up (after-ready steps included) is running."""
    return (controller.setup.in_progress == 0
            and all(controller.live.reachable(c.id) for c in controller.site.chargers))


async def force_full_ticks(controller: Any, plan: FullTickPlan, *, started: float, stop: asyncio.Event,
                           ticks: list[dict[str, Any]], gc_time: GcTime,
                           anatomy: TickAnatomy | None = None) -> dict[str, Any] | None:
    """Wait as ``plan`` says, then force the full tick ``plan.count`` times (unless ``stop`` is set first). Returns
    the first one's summary (from ``ticks``, which the controller's tick observer fills) with what was true as it
    started and every repeat's summary; None when no full tick ran. ``started`` is the controller's start on the
    event loop's clock."""
    loop = asyncio.get_running_loop()
    site, recorder = controller.site, controller.recorder
    deadline = started + plan.settle_s
    while not stop.is_set() and loop.time() < deadline and (
            len(controller.live.open_sessions()) < plan.expect_sessions or not set_up_done(controller)):
        await asyncio.sleep(0.2)
    waited_s = loop.time() - started
    # As the tick starts (a long tick may end after the chargers stopped).
    before_tick = {"waited_s": round(waited_s, 1), "set_up_done": set_up_done(controller),
                   "set_up_running": controller.setup.in_progress,
                   "reachable": sum(1 for c in site.chargers if controller.live.reachable(c.id)),
                   "store_backlog": recorder.backlog}
    if plan.delay_s > 0 and not stop.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(plan.delay_s):
                await stop.wait()
    repeats: list[dict[str, Any]] = []
    for k in range(plan.count):
        if stop.is_set():
            break
        if k > 0:
            await asyncio.sleep(FULL_TICK_GAP_S)
        # A tick in flight (a scheduled or early one) would send what is forgotten below, and this one
        # would then find everything unchanged: wait for it, then forget and start with no await between.
        while controller.loop._lock.locked():
            await asyncio.sleep(0.05)
        # Forget every deadband so this tick sends one TxProfile per connector and one station max per
        # charger: the worst case the 2 s target is about.
        for charger_id, state in controller.live.chargers.items():
            controller.dispatcher.forget(charger_id)
            for connector in state.connectors.values():
                connector.command = None
        # CPU time of this (the event loop's) thread: on a shared machine wall time would charge every
        # function with the moments the kernel ran something else, and the store's writer thread too.
        profiler = cProfile.Profile(time.thread_time) if plan.profile_out is not None and k == plan.count - 1 else None
        if profiler is not None:
            profiler.enable()
        cpu, loop_cpu = time.process_time(), time.thread_time()
        if anatomy is not None:
            anatomy.tick_started()
        result = await controller.loop.tick(wait=True)
        if anatomy is not None:
            anatomy.tick_ended()
        tick_cpu_ms, tick_loop_cpu_ms = (time.process_time() - cpu) * 1000.0, (time.thread_time() - loop_cpu) * 1000.0
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(plan.profile_out))
        if result is not None:
            summary = dict(ticks[-1]) if ticks else tick_summary(result)
            summary["tick_cpu_ms"] = round(tick_cpu_ms, 1)  # this process; the solver's is not in it
            summary["tick_loop_cpu_ms"] = round(tick_loop_cpu_ms, 1)
            # The collections the dispatch's pause put off land just after it: counted here, not hidden.
            gc_before = gc_time.total_s
            await asyncio.sleep(GC_AFTER_S)
            summary["gc_after_ms"] = round((gc_time.total_s - gc_before) * 1000.0, 1)
            repeats.append(summary)
    if not repeats:
        return None
    full = dict(repeats[0])
    full["open_sessions"] = len(controller.live.open_sessions())
    full.update(before_tick)
    full["failsafe_recomputes"] = controller.failsafe.recomputes
    full["repeats"] = repeats
    if anatomy is not None:
        full["anatomy"] = anatomy.figures()
    return full
