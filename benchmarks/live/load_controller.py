"""The load benchmark's controller role (``load_bench --role controller``): one controller on the benchmark's site,
instrumented (each handled CALL's latency and when it ended, the CPU and garbage collection of each dispatch, when
each tick solved and dispatched, event-loop lag, the store's backlog), forcing its full tick (``load_full_tick``),
until SIGTERM/SIGINT; its figures go to a JSON file for the bench role to read."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import resource
import signal
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.live.load_full_tick import FullTickPlan, force_full_ticks, tenths, tick_summary
from benchmarks.live.load_probes import (
    Backlog,
    GcTime,
    LoopLag,
    peers_cpu_s,
    percentile,
    proc_status_mb,
    rusage_cpu_s,
    split_by_activity,
)
from benchmarks.live.tick_anatomy import TickAnatomy, anatomy_census

READY = "READY"  # the line the controller prints, with its port, once it listens


async def run_controller(site_path: Path, stats_out: Path, expect_sessions: int, settle_s: float,
                         max_run_s: float, profile_out: Path | None = None, solver_in_thread: bool = False,
                         device_model_spread_s: float | None = None, full_ticks: int = 1,
                         full_tick_delay_s: float = 0.0, freeze_heap: bool = True,
                         pause_collector: bool = True) -> None:
    """Run one controller until SIGTERM/SIGINT (or ``max_run_s``); force one full tick once ``expect_sessions``
    sessions are open and every charger's set-up is done (or after ``settle_s``); write the figures to
    ``stats_out`` (and a cProfile of the controller's event-loop thread during the last full tick to ``profile_out``).
    ``device_model_spread_s`` replaces the controller's spread of the 2.0.1 device-model steps (half a second per
    charger, up to ten minutes), so that a bounded run sees them done. ``full_ticks`` repeats the full tick (every
    deadband forgotten each time, ``FULL_TICK_GAP_S`` apart) for a median; ``full_tick_delay_s`` waits that much
    longer before the first (``fleet_load`` spreads its controllers' full ticks with it). ``pause_collector``
    False lets the garbage collector run inside each dispatch, as before the pause (for comparison)."""
    import logging

    from csms_adapter.control.controller import Controller
    from csms_adapter.control.recorder import StoreRecorder
    from csms_adapter.control.solver_runner import default_planner
    from csms_adapter.control.startup_heap import freeze_startup_heap
    from csms_adapter.protocol.frame_guard import GuardLimits
    from optimizer.site_loader import load_site

    logging.basicConfig(level=logging.ERROR, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    site = load_site(site_path)
    # Every emulated charger connects from 127.0.0.1; at a depot they come from many addresses (or a few NAT
    # routers), so the per-address connection cap is raised to the fleet size here and nothing else is relaxed.
    limits = dataclasses.replace(GuardLimits(), max_connections_per_address=len(site.chargers) + 16)
    # The solver's default home is its own process; in a thread only to measure what that is worth.
    planner = default_planner(site) if solver_in_thread else None
    recorder = StoreRecorder.open(site.storage.url, site=site.name)
    controller = Controller(site, recorder=recorder, guard_limits=limits, planner=planner)
    if device_model_spread_s is not None:
        controller.setup.spread_s = device_model_spread_s
    controller.dispatcher.pause_collector = pause_collector
    ticks: list[dict[str, Any]] = []
    observer = controller.loop.on_tick
    windows: list[tuple[str, float, float]] = []  # ("solve" | "dispatch", start, end) on perf_counter
    marks: list[tuple[float, float]] = []  # (end, ms) of every handled CALL
    record_latency = controller.handling.record

    def record(elapsed_ms: float) -> None:
        record_latency(elapsed_ms)
        marks.append((time.perf_counter(), elapsed_ms))

    controller.handling.record = record  # type: ignore[method-assign]
    # CPU this process (its threads too), its event-loop thread alone (the dispatch and whatever else the loop ran
    # meanwhile, e.g. meter values) and the emulators answering spent while each dispatch ran.
    dispatch_cpu_ms: list[tuple[float, float, float | None]] = []
    dispatch_gc_ms: list[float] = []
    gc_time = GcTime(threading.get_ident())
    gc.callbacks.append(gc_time)
    dispatch = controller.dispatcher.dispatch
    emulators = f"csms_adapter.emulator\x00--site\x00{site_path}"

    async def timed_dispatch(*args: Any, **kwargs: Any) -> Any:
        cpu, loop_cpu, peers, gc_s = time.process_time(), time.thread_time(), peers_cpu_s(emulators), gc_time.total_s
        try:
            return await dispatch(*args, **kwargs)
        finally:
            peers_after = peers_cpu_s(emulators)
            # An emulator that exits meanwhile takes its CPU out of the sum: no figure then.
            dispatch_gc_ms.append((gc_time.total_s - gc_s) * 1000.0)
            dispatch_cpu_ms.append(((time.process_time() - cpu) * 1000.0, (time.thread_time() - loop_cpu) * 1000.0,
                                    (peers_after - peers) * 1000.0 if peers is not None and peers_after is not None
                                    and peers_after >= peers else None))

    controller.dispatcher.dispatch = timed_dispatch  # type: ignore[method-assign]

    def on_tick(result: Any) -> None:
        end = time.perf_counter()
        ticks.append(tick_summary(result))
        if result.report is not None and dispatch_cpu_ms:
            process_ms, loop_ms, emulators_ms = dispatch_cpu_ms[-1]
            ticks[-1]["dispatch_cpu_ms"] = round(process_ms, 1)
            ticks[-1]["dispatch_loop_cpu_ms"] = round(loop_ms, 1)
            ticks[-1]["dispatch_gc_ms"] = round(dispatch_gc_ms[-1], 1)
            ticks[-1]["dispatch_emulator_cpu_ms"] = tenths(emulators_ms)
        if result.report is not None:
            windows.append(("dispatch", end - result.report.duration_ms / 1000.0, end))
        solve_ms = getattr(result, "solve_ms", None)
        if solve_ms is not None:
            solve_end = end - (result.report.duration_ms / 1000.0 if result.report is not None else 0.0)
            windows.append(("solve", solve_end - solve_ms / 1000.0, solve_end))
        if observer is not None:
            observer(result)

    controller.loop.on_tick = on_tick
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if freeze_heap:
        freeze_startup_heap()  # as ``depotctl run`` does
    started = loop.time()
    cpu_started = time.process_time()
    await controller.start()
    lag = LoopLag()
    lag_task = loop.create_task(lag.run(), name="loop-lag")
    anatomy = TickAnatomy(controller, anatomy_census(emulators), lag, marks)
    anatomy.start()
    backlog = Backlog(recorder)
    backlog_task = loop.create_task(backlog.run(), name="store-backlog")
    print(f"{READY} {controller.port}", flush=True)
    full: dict[str, Any] | None = None
    steady_from: int | None = None
    plan = FullTickPlan(expect_sessions, settle_s, full_ticks, full_tick_delay_s, profile_out)
    try:
        async with asyncio.timeout(max_run_s):
            full = await force_full_ticks(controller, plan, started=started, stop=stop, ticks=ticks, gc_time=gc_time,
                                          anatomy=anatomy)
            steady_from = controller.handling.handled  # after boot storm, arrivals and the full tick
            await stop.wait()
    except TimeoutError:
        pass
    await anatomy.stop()
    lag_task.cancel()
    backlog_task.cancel()
    await asyncio.gather(lag_task, backlog_task, return_exceptions=True)
    backlog_at_end = recorder.backlog
    cpu_s = time.process_time() - cpu_started
    wall_s = loop.time() - started
    stats = controller.handling
    kept = list(stats.latencies_ms)
    steady = kept[max(0, len(kept) - (stats.handled - steady_from)):] if steady_from is not None else []
    figures = {
        "handled": stats.handled,
        "handling_ms_p50": stats.percentile_ms(0.50),
        "handling_ms_p99": stats.percentile_ms(0.99),
        "handling_ms_max": max(stats.latencies_ms, default=None),
        "steady_handled": len(steady),
        "steady_handling_ms_p50": percentile(steady, 0.50),
        "steady_handling_ms_p99": percentile(steady, 0.99),
        "full_tick": full,
        "ticks": ticks,
        "rss_mb": proc_status_mb("VmRSS"),
        "rss_peak_mb": proc_status_mb("VmHWM"),
        "connected_at_end": sum(1 for s in controller.live.chargers.values() if s.connected),
        "by_activity": split_by_activity(marks, windows),
        "raw_windows": windows,  # for a closer look: stays in the workdir's controller.json
        "raw_marks": [(round(end, 4), round(ms, 2)) for end, ms in marks],
        "raw_late_wakeups": lag.late,
        "controller_cpu_s": round(cpu_s, 1),
        "loop_gc_collections": gc_time.by_generation_n,
        "loop_gc_ms": [round(s * 1000.0) for s in gc_time.by_generation_s],
        "controller_wall_s": round(wall_s, 1),
        "store_backlog_max": backlog.max,
        "store_backlog_at_end": backlog_at_end,
        "failsafe_recomputes": controller.failsafe.recomputes,
        **lag.figures(),
    }
    await controller.stop()
    writer = recorder.writer.stats  # after the stop: the last batch has been flushed
    figures["samples_written"] = writer.written
    figures["samples_dropped"] = writer.dropped
    figures["store_failures"] = writer.failures + recorder.failures
    # Reaped children: the solver process, once the controller has shut it down (ru_maxrss is in KB on Linux).
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures["solver_cpu_s"] = round(rusage_cpu_s(children), 1)
    figures["solver_rss_peak_mb"] = round(children.ru_maxrss / 1024.0, 1) if children.ru_maxrss else None
    stats_out.write_text(json.dumps(figures))
