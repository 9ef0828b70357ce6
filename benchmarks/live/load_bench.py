"""Load benchmark of the live controller (issue 3 targets): one controller process, N emulated chargers (mixed
OCPP 1.6J / 2.0.1, one vehicle each) in several emulator processes, over loopback websockets with Basic auth and
a real SQLite store, for a fixed wall time.

    python -m benchmarks.live.load_bench --chargers 1000 --meter-interval-s 10 --duration-s 120

Measured and printed (never asserted in a test):
- messages: CALLs the chargers got answered (+ BootNotifications) vs CALLs the controller handled, and the
  messages the emulators gave up on or still had queued (lost = given up + sent but never handled);
- handling latency p50/p99: controller side, from the library receiving a CALL to its answer being written
  (``csms_adapter.protocol.link.HandlingStats``), and the charger-side round trip as an upper bound (it includes the
  emulators' own event-loop delay, on the same machine);
- a full tick once every vehicle is in session and every charger's set-up is done (the 2.0.1 device-model steps
  included, spread over ``--device-model-spread-s``; the wait is bounded): snapshot → LP → plan check → one
  TxProfile (and one live station max) sent to every charger, with every deadband forgotten so nothing is skipped;
  per tick (that one and the scheduled ones): snapshot, plan, dispatch and total milliseconds;
- controller RSS now and peak (``/proc/self/status``, Linux);
- CPU seconds of the controller (its own process and its solver process) and of the emulators, and how late the
  controller's event loop ran (a 10 ms sleeper's overshoot): on a small machine they tell a slow controller from
  one starved of CPU by the emulators beside it;
- for the full tick: CPU of the controller process and of its event-loop thread alone (``time.thread_time``), and
  during its dispatch the CPU per profile call sent, of the controller (process, loop thread, garbage collection
  on the loop) and of the emulators, each reported apart; ``--full-ticks K`` repeats the full tick for medians;
- garbage collections on the event loop by generation, with their CPU;
- the handling latency split by what the controller was doing at the time: solving, dispatching, or neither;
- the history write backlog (meter samples buffered + other store writes queued; max over the run, at the full
  tick, at the end) and the samples written and dropped.

Targets: no message lost, p99 < 50 ms, full tick < 2 s, RSS < 500 MB. The controller and the emulators share
the machine's CPUs, so on a small machine the figures are pessimistic for the controller. The emulators stand in
for chargers that have CPUs of their own: they run ``--emulator-nice`` (5) steps nicer than the controller and
without the ``ocpp`` library's schema checks (``--emulator-schema-validation`` puts them back), which changes
nothing the controller sees; the full tick still ends only when every call has been answered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import gc
import json
import math
import os
import resource
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

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
from benchmarks.live.load_report import print_report
from benchmarks.live.tick_anatomy import TickAnatomy, anatomy_census
from benchmarks.synthetic_site import synthetic_site_mapping

PASSWORD_ENV = "DEPOTCTL_BENCH_PASSWORD"
CHARGERS_PER_PROCESS = 250  # one emulator process keeps up with about this many at 10 s metering
READY = "READY"
FULL_TICK_GAP_S = 3.0  # between repeated full ticks: the answers' after-effects (records, meter values) settle
GC_AFTER_S = 1.0  # garbage collection on the loop is also counted this long after each full tick


# ------------------------------------------------------------------------------------------------ site


def bench_site_mapping(chargers: int, *, port: int, meter_interval_s: int, horizon_h: float, db: Path,
                       seed: int = 0, db_url: str | None = None, site_name: str | None = None) -> dict[str, Any]:
    """The synthetic depot of the solver benchmark, made live: Basic auth (one password from the environment
    for every charger), a real control interval, the given metering and a store in ``db``."""
    mapping: dict[str, Any] = synthetic_site_mapping(chargers, seed, step_min=15.0, horizon_h=horizon_h,
                                                     uniform_steps=False)
    for charger in mapping["chargers"]:
        charger["auth"] = {"password_env": PASSWORD_ENV}
    mapping["control"] = {**mapping["control"], "interval_s": 60, "strategy": "lp"}
    mapping["ocpp"] = {"listen": f"127.0.0.1:{port}", "security_profile": 1, "meter_interval_s": meter_interval_s,
                       "call_timeout_s": 10, "accept_unknown": False}
    mapping["storage"] = {"url": db_url or f"sqlite:///{db}"}
    if site_name is not None:
        mapping["site"]["name"] = site_name
    return mapping


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------------------- controller role


def _round(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


def _tick_summary(result: Any) -> dict[str, Any]:
    plan, report = result.plan, result.report
    return {
        "tick_ms": round(result.tick_ms, 1),
        "snapshot_ms": _round(getattr(result, "snapshot_ms", None)),
        "sessions": len(result.snapshot.sessions),
        "error": result.error,
        "plan_ms": round(plan.build_ms + plan.solve_ms, 1) if plan is not None else None,
        # The wait for the plan as the event loop saw it (in the solver process: with the hand-over both ways).
        "solve_wall_ms": _round(getattr(result, "solve_ms", None)),
        "dispatch_ms": round(report.duration_ms, 1) if report is not None else None,
        # What the tick spent between the plan's arrival and the dispatch: the independent plan check (in a worker
        # thread) and the hand-overs around it.
        "check_ms": _round(result.tick_ms - (getattr(result, "snapshot_ms", None) or 0.0)
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
        ticks.append(_tick_summary(result))
        if result.report is not None and dispatch_cpu_ms:
            process_ms, loop_ms, emulators_ms = dispatch_cpu_ms[-1]
            ticks[-1]["dispatch_cpu_ms"] = round(process_ms, 1)
            ticks[-1]["dispatch_loop_cpu_ms"] = round(loop_ms, 1)
            ticks[-1]["dispatch_gc_ms"] = round(dispatch_gc_ms[-1], 1)
            ticks[-1]["dispatch_emulator_cpu_ms"] = _round(emulators_ms)
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
    try:
        async with asyncio.timeout(max_run_s):
            deadline = started + settle_s
            while not stop.is_set() and loop.time() < deadline and (
                    len(controller.live.open_sessions()) < expect_sessions or not set_up_done(controller)):
                await asyncio.sleep(0.2)
            waited_s = loop.time() - started
            # As the tick starts (a long tick may end after the chargers stopped).
            before_tick = {"waited_s": round(waited_s, 1), "set_up_done": set_up_done(controller),
                           "set_up_running": controller.setup.in_progress,
                           "reachable": sum(1 for c in site.chargers if controller.live.reachable(c.id)),
                           "store_backlog": recorder.backlog}
            if full_tick_delay_s > 0 and not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(full_tick_delay_s):
                        await stop.wait()
            repeats: list[dict[str, Any]] = []
            for k in range(full_ticks):
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
                profiler = cProfile.Profile(time.thread_time) if profile_out is not None and k == full_ticks - 1 else None
                if profiler is not None:
                    profiler.enable()
                cpu, loop_cpu = time.process_time(), time.thread_time()
                anatomy.tick_started()
                result = await controller.loop.tick(wait=True)
                anatomy.tick_ended()
                tick_cpu_ms, tick_loop_cpu_ms = (time.process_time() - cpu) * 1000.0, (time.thread_time() - loop_cpu) * 1000.0
                if profiler is not None:
                    profiler.disable()
                    profiler.dump_stats(str(profile_out))
                if result is not None:
                    summary = dict(ticks[-1]) if ticks else _tick_summary(result)
                    summary["tick_cpu_ms"] = round(tick_cpu_ms, 1)  # this process; the solver's is not in it
                    summary["tick_loop_cpu_ms"] = round(tick_loop_cpu_ms, 1)
                    # The collections the dispatch's pause put off land just after it: counted here, not hidden.
                    gc_before = gc_time.total_s
                    await asyncio.sleep(GC_AFTER_S)
                    summary["gc_after_ms"] = round((gc_time.total_s - gc_before) * 1000.0, 1)
                    repeats.append(summary)
            if repeats:
                full = dict(repeats[0])
                full["open_sessions"] = len(controller.live.open_sessions())
                full.update(before_tick)
                full["failsafe_recomputes"] = controller.failsafe.recomputes
                full["repeats"] = repeats
                full["anatomy"] = anatomy.figures()
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


# ------------------------------------------------------------------------------------------- main role


def _wait_ready(proc: subprocess.Popen[str], timeout_s: float) -> int:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"controller exited before it was ready (code {proc.poll()})")
        if line.startswith(READY):
            return int(line.split()[1])
    raise RuntimeError("controller not ready in time")


def _stop(proc: subprocess.Popen[Any], timeout_s: float) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="depotctl-load-"))
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    site_path = workdir / "load-site.yaml"
    mapping = bench_site_mapping(args.chargers, port=port, meter_interval_s=args.meter_interval_s,
                                 horizon_h=args.horizon_h, db=workdir / "load.db", db_url=args.db_url,
                                 site_name=args.site_name)
    site_path.write_text(yaml.safe_dump(mapping, sort_keys=False))
    password = secrets.token_urlsafe(18)
    env = {**os.environ, PASSWORD_ENV: password}
    processes = args.processes or max(1, math.ceil(args.chargers / CHARGERS_PER_PROCESS))
    controller_out = workdir / "controller.json"
    spread_s = args.device_model_spread_s if args.device_model_spread_s is not None else args.arrival_window_s
    controller = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.live.load_bench", "--role", "controller", "--site", str(site_path),
         "--stats-out", str(controller_out), "--expect-sessions", str(args.chargers),
         # The full tick waits for the set-up until 20 s before the chargers stop, at the latest.
         "--settle-s", str(max(args.arrival_window_s + spread_s, args.duration_s - 20)),
         "--max-run-s", str(args.duration_s + 120),
         "--device-model-spread-s", str(spread_s), "--full-ticks", str(args.full_ticks),
         "--full-tick-delay-s", str(args.full_tick_delay_s), *(["--no-heap-freeze"] if args.no_heap_freeze else []),
         *(["--no-collector-pause"] if args.no_collector_pause else []),
         *(["--profile-full-tick", str(Path(args.profile_full_tick).resolve())] if args.profile_full_tick else []),
         *(["--solver-in-thread"] if args.solver_in_thread else [])],
        env=env, stdout=subprocess.PIPE, text=True)
    emulators: list[subprocess.Popen[bytes]] = []
    emulator_cpu_s: float | None = None
    try:
        _wait_ready(controller, 60)
        cpu_before = rusage_cpu_s(resource.getrusage(resource.RUSAGE_CHILDREN))
        url = f"ws://127.0.0.1:{port}/ocpp"
        per = math.ceil(args.chargers / processes)
        for k in range(processes):
            count = min(per, args.chargers - k * per)
            if count <= 0:
                break
            emulators.append(subprocess.Popen(
                [sys.executable, "-m", "csms_adapter.emulator", "--site", str(site_path), "--url", url,
                 "--offset", str(k * per), "--count", str(count), "--meter-interval-s", str(args.meter_interval_s),
                 "--arrival-window-s", str(args.arrival_window_s), "--duration-s", str(args.duration_s),
                 f"--password={password}", "--seed", str(k), "--report-s", "30",
                 "--stats-json", str(workdir / f"emulator-{k}.json"), "--nice", str(args.emulator_nice),
                 *([] if args.emulator_schema_validation else ["--no-schema-validation"])],
                env=env, stdout=subprocess.DEVNULL))
        deadline = time.monotonic() + args.duration_s + 60  # one deadline for all: the run stays bounded
        for proc in emulators:
            try:
                proc.wait(max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _stop(proc, 10)
        # Only the emulators have been reaped so far (the controller is still running).
        emulator_cpu_s = rusage_cpu_s(resource.getrusage(resource.RUSAGE_CHILDREN)) - cpu_before
    finally:
        for proc in emulators:
            _stop(proc, 10)
        _stop(controller, 60)
        if controller.stdout is not None:
            controller.stdout.close()
    emulated = [json.loads(p.read_text()) for p in sorted(workdir.glob("emulator-*.json"))]
    ctrl = json.loads(controller_out.read_text()) if controller_out.exists() else {}
    rtt = [x for e in emulated for x in e["rtt_ms"]]
    sent = sum(e["calls_answered"] for e in emulated)
    handled = int(ctrl.get("handled", 0))
    given_up = sum(e["dropped"] for e in emulated)
    return {
        "chargers": args.chargers,
        "emulator_processes": len(emulators),
        "booted": sum(e["booted"] for e in emulated),
        "duration_s": args.duration_s,
        "meter_interval_s": args.meter_interval_s,
        "device_model_spread_s": spread_s,
        "messages_answered": sent,
        "messages_handled": handled,
        "messages_given_up": given_up,
        "messages_queued_at_end": sum(e["pending"] for e in emulated),
        "messages_lost": given_up + max(0, sent - handled),
        "handling_ms_p50": ctrl.get("handling_ms_p50"),
        "handling_ms_p99": ctrl.get("handling_ms_p99"),
        "handling_ms_max": ctrl.get("handling_ms_max"),
        "steady_handled": ctrl.get("steady_handled"),
        "steady_handling_ms_p50": ctrl.get("steady_handling_ms_p50"),
        "steady_handling_ms_p99": ctrl.get("steady_handling_ms_p99"),
        "round_trip_ms_p50": percentile(rtt, 0.50),
        "round_trip_ms_p99": percentile(rtt, 0.99),
        "profiles_received": sum(e["profiles_received"] for e in emulated),
        "full_tick": ctrl.get("full_tick"),
        "ticks": ctrl.get("ticks", []),
        "controller_rss_mb": ctrl.get("rss_mb"),
        "controller_rss_peak_mb": ctrl.get("rss_peak_mb"),
        "controller_cpu_s": ctrl.get("controller_cpu_s"),
        "loop_gc_collections": ctrl.get("loop_gc_collections"),
        "loop_gc_ms": ctrl.get("loop_gc_ms"),
        "controller_wall_s": ctrl.get("controller_wall_s"),
        "solver_cpu_s": ctrl.get("solver_cpu_s"),
        "solver_rss_peak_mb": ctrl.get("solver_rss_peak_mb"),
        "emulator_cpu_s": round(emulator_cpu_s, 1) if emulator_cpu_s is not None else None,
        "by_activity": ctrl.get("by_activity", {}),
        "loop_lag_ms_p99": ctrl.get("loop_lag_ms_p99"),
        "loop_lag_ms_max": ctrl.get("loop_lag_ms_max"),
        "loop_lag_over_50ms": ctrl.get("loop_lag_over_50ms"),
        "store_backlog_max": ctrl.get("store_backlog_max"),
        "store_backlog_at_end": ctrl.get("store_backlog_at_end"),
        "failsafe_recomputes": ctrl.get("failsafe_recomputes"),
        "samples_written": ctrl.get("samples_written"),
        "samples_dropped": ctrl.get("samples_dropped"),
        "store_failures": ctrl.get("store_failures"),
        "cpus": os.cpu_count(),
        "workdir": str(workdir),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.live.load_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=1000)
    parser.add_argument("--meter-interval-s", type=int, default=10)
    parser.add_argument("--duration-s", type=float, default=120.0, help="wall seconds the chargers run")
    parser.add_argument("--arrival-window-s", type=float, default=30.0, help="vehicles plug in within (s)")
    parser.add_argument("--horizon-h", type=float, default=12.0, help="LP horizon")
    parser.add_argument("--device-model-spread-s", type=float, default=None,
                        help="spread the 2.0.1 device-model steps over this many seconds (default: the arrival "
                             "window; the controller's own is half a second per charger, up to 600 s)")
    parser.add_argument("--processes", type=int, default=None, help=f"emulator processes (default: one per "
                        f"{CHARGERS_PER_PROCESS} chargers)")
    parser.add_argument("--emulator-nice", type=int, default=5, metavar="N",
                        help="run the emulator processes N steps nicer than the controller (0: same priority)")
    parser.add_argument("--emulator-schema-validation", action="store_true",
                        help="let the emulators schema-check every frame as the conformance tests do (default: "
                             "off; the controller validates what the chargers send either way)")
    parser.add_argument("--full-ticks", type=int, default=1, metavar="K",
                        help="force the full tick K times (a few seconds apart) and print medians too")
    parser.add_argument("--full-tick-delay-s", type=float, default=0.0,
                        help="wait this long after the set-up is done before the first full tick")
    parser.add_argument("--no-heap-freeze", action="store_true",
                        help="leave the controller's start-up heap to the garbage collector (for comparison; "
                             "depotctl run freezes it)")
    parser.add_argument("--no-collector-pause", action="store_true",
                        help="let the garbage collector run inside each dispatch (for comparison; the controller "
                             "pauses it while a dispatch is in flight)")
    parser.add_argument("--workdir", default=None, help="keep site, database and raw figures here")
    parser.add_argument("--db-url", default=None, help="store in this database (default: SQLite in the workdir)")
    parser.add_argument("--site-name", default=None, help="the site's name (its rows in a shared database)")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    parser.add_argument("--solver-in-thread", action="store_true",
                        help="solve in a thread of the controller, not in the solver process (for comparison)")
    parser.add_argument("--profile-full-tick", default=None, metavar="FILE",
                        help="write a cProfile (pstats) of the controller's event-loop thread during the full tick")
    # internal: the controller process
    parser.add_argument("--role", choices=("bench", "controller"), default="bench", help=argparse.SUPPRESS)
    parser.add_argument("--site", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--stats-out", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--expect-sessions", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--settle-s", type=float, default=75.0, help=argparse.SUPPRESS)
    parser.add_argument("--max-run-s", type=float, default=600.0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role == "controller":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run_controller(Path(args.site), Path(args.stats_out), args.expect_sessions, args.settle_s,
                                       args.max_run_s, Path(args.profile_full_tick) if args.profile_full_tick else None,
                                       args.solver_in_thread, args.device_model_spread_s, args.full_ticks,
                                       args.full_tick_delay_s, not args.no_heap_freeze,
                                       not args.no_collector_pause))
        return 0
    result = run_bench(args)
    print_report(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
