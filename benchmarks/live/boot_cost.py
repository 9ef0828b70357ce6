"""What one controller spends per booting charger: N emulated chargers (mixed OCPP 1.6J / 2.0.1, the load
benchmark's site) boot together against one controller, which runs every set-up step (the 2.0.1 device-model
report and monitors included, not spread out) while no vehicle is plugged in.

    python -m benchmarks.live.boot_cost --chargers 200 [--profile boot.pstats] [--db-url URL]

Printed (never asserted in a test): the controller's CPU seconds (its process, and its event-loop thread alone)
from its start until every charger is booted and set up and the store has written all of it, per charger in ms,
and per thread, and the emulators' CPU seconds for the
same boots; with ``--profile`` the event-loop thread's cProfile of the boot wave (top functions by own time). The
controller runs in this process (a SQLite store in a temporary directory unless ``--db-url``); the emulators in a
child process, ``--emulator-nice`` steps nicer. On a shared machine compare runs by ratios over several repeats.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import io
import json
import os
import pstats
import resource
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.live.load_full_tick import set_up_done
from benchmarks.live.load_probes import rusage_cpu_s
from benchmarks.live.load_site import PASSWORD_ENV, bench_site_mapping, free_port

# No vehicle arrives while the boots are measured: the arrivals are this far away (emulated seconds).
NO_ARRIVAL_S = 86_400.0


def threads_cpu_s() -> dict[str, float]:
    """CPU seconds of each live thread of this process by its Python name (Linux ``/proc``; empty elsewhere)."""
    out: dict[str, float] = {}
    ticks = os.sysconf("SC_CLK_TCK")
    for thread in threading.enumerate():
        try:
            fields = Path(f"/proc/self/task/{thread.native_id}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        out[thread.name] = out.get(thread.name, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return out


async def measure(args: argparse.Namespace, site_path: Path, password: str) -> dict[str, Any]:
    from csms_adapter.control.controller import Controller
    from csms_adapter.control.recorder import StoreRecorder
    from csms_adapter.protocol.frame_guard import GuardLimits
    from optimizer.site_loader import load_site

    site = load_site(site_path)
    limits = dataclasses.replace(GuardLimits(), max_connections_per_address=len(site.chargers) + 16)
    recorder = StoreRecorder.open(site.storage.url, site=site.name)
    controller = Controller(site, recorder=recorder, guard_limits=limits, env={PASSWORD_ENV: password})
    controller.setup.spread_s = 0.0  # every after-ready step (2.0.1 device model) in the measured wave
    profiler = cProfile.Profile(time.thread_time) if args.profile else None
    loop = asyncio.get_running_loop()
    cpu0, thread0, wall0 = time.process_time(), time.thread_time(), loop.time()
    children0 = rusage_cpu_s(resource.getrusage(resource.RUSAGE_CHILDREN))
    if profiler is not None:
        profiler.enable()
    await controller.start()
    emulator = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "csms_adapter.emulator", "--site", str(site_path),
        "--url", f"ws://127.0.0.1:{controller.port}/ocpp", "--count", str(args.chargers),
        "--arrival-window-s", str(NO_ARRIVAL_S), "--duration-s", str(args.timeout_s + 30),
        f"--password={password}", "--report-s", "600", "--nice", str(args.emulator_nice), "--no-schema-validation",
        env={**os.environ, PASSWORD_ENV: password}, stdout=asyncio.subprocess.DEVNULL)
    done = False
    setup_wall_s: float | None = None
    threads_before = threads_cpu_s()
    try:
        deadline = wall0 + args.timeout_s
        while loop.time() < deadline:
            await asyncio.sleep(0.05)
            if set_up_done(controller):
                done = True
                break
        setup_wall_s = loop.time() - wall0
        # The store's writes of the wave are part of its cost: wait (bounded) until they are through.
        while loop.time() < deadline and recorder.backlog > 0:
            await asyncio.sleep(0.05)
        await recorder.store.run(lambda: None)  # and the write in progress, if any
    finally:
        if profiler is not None:
            profiler.disable()
        cpu_s, thread_s, wall_s = time.process_time() - cpu0, time.thread_time() - thread0, loop.time() - wall0
        threads_after = threads_cpu_s()
        emulator.terminate()
        await emulator.wait()
        await controller.stop()
    emulator_cpu_s = rusage_cpu_s(resource.getrusage(resource.RUSAGE_CHILDREN)) - children0
    top = ""
    if profiler is not None:
        profiler.dump_stats(args.profile)
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.top)
        top = out.getvalue()
    n = args.chargers
    return {"chargers": n, "set_up_done": done, "wall_s": round(wall_s, 2),
            "set_up_wall_s": round(setup_wall_s, 2) if setup_wall_s is not None else None,
            "controller_cpu_s": round(cpu_s, 2), "controller_loop_cpu_s": round(thread_s, 2),
            "controller_cpu_ms_per_charger": round(1000.0 * cpu_s / n, 1),
            "controller_loop_cpu_ms_per_charger": round(1000.0 * thread_s / n, 1),
            "emulator_cpu_s": round(emulator_cpu_s, 2),  # its start-up (imports) included
            "emulator_cpu_ms_per_charger": round(1000.0 * emulator_cpu_s / n, 1),
            "threads_cpu_s": {name: round(cpu - threads_before.get(name, 0.0), 2)
                              for name, cpu in sorted(threads_after.items())},
            "failsafe_recomputes": controller.failsafe.recomputes,
            "handled": controller.handling.handled, "load_average": [round(x, 1) for x in os.getloadavg()],
            "profile_top": top}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.live.boot_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=200)
    parser.add_argument("--db-url", default=None, help="store in this database (default: SQLite in a temp dir)")
    parser.add_argument("--timeout-s", type=float, default=240.0, help="give up waiting for the set-ups after this")
    parser.add_argument("--emulator-nice", type=int, default=5)
    parser.add_argument("--profile", default=None, metavar="FILE", help="cProfile (pstats) of the event-loop thread")
    parser.add_argument("--top", type=int, default=30, help="functions printed from the profile")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="depotctl-boot-cost-") as tmp:
        site_path = Path(tmp) / "site.yaml"
        mapping = bench_site_mapping(args.chargers, port=free_port(), meter_interval_s=10, horizon_h=12.0,
                                     db=Path(tmp) / "boot.db", db_url=args.db_url, site_name="boot-cost")
        site_path.write_text(yaml.safe_dump(mapping, sort_keys=False))
        result = asyncio.run(measure(args, site_path, secrets.token_urlsafe(18)))
    top = result.pop("profile_top")
    print(json.dumps(result, indent=1))
    if top:
        print(top)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
