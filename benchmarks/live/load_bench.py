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

This module is the bench role: it writes the site (``load_site``), starts the controller role in a child process
(``load_controller``, which forces the full tick with ``load_full_tick``) and the emulator processes, and prints
the report (``load_report``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.live.load_controller import READY, run_controller
from benchmarks.live.load_probes import percentile, rusage_cpu_s
from benchmarks.live.load_report import print_report
from benchmarks.live.load_site import PASSWORD_ENV, bench_site_mapping, free_port

CHARGERS_PER_PROCESS = 250  # one emulator process keeps up with about this many at 10 s metering


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
