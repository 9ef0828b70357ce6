"""Load benchmark of a shared database: K controllers (each with N emulated chargers, its own site name) writing to
one PostgreSQL server on this machine.

    python -m benchmarks.live.fleet_load --controllers 10 --chargers 200 --duration-s 300

Controller k starts ``k × --stagger-s`` (default 45 s) after the first and forces its full tick as soon as its
chargers are set up and its vehicles plugged in: real depots do not all boot in the same seconds, and a boot wave
(the boots, set-up calls, arrivals and first meter values of 200 chargers) lasts about 35-45 s, so each one mostly
runs beside the steady traffic of the depots already up, not beside nine other boot waves. ``--stagger-s 0
--tick-spacing-s 8`` starts them all together, the worst case of a regional power cut, with the full ticks 8 s
apart. Per controller it prints its boot wave (from its first charger message until every charger was set up and
every vehicle plugged in), the CPU its controller process and its emulators used in it, and the controllers whose
boot wave its forced full tick overlapped (``benchmarks.live.boot_waves``).

Each controller is one run of ``benchmarks.live.load_bench`` (its own controller process and emulator processes);
the database is a throw-away local server (``--db`` to use an existing one instead). With ``--tick-spacing-s``
controller k forces its full tick ``k × --tick-spacing-s`` after its set-up is done (for starts together: forcing
all ten full ticks into the same seconds measured two cores shared ten ways, not a controller). The scheduled ticks
run on each controller's own clock and may meet. Printed per controller: the
handling latency p99, the forced full tick, messages lost, and samples the controller wrote against the rows the
database holds for that site (a sample lost between the two shows as a difference), the median and max of every
tick with its snapshot/plan/dispatch parts, the largest event-loop lag and store backlog, and CPU: the solver
process's seconds per tick, the controller process's seconds for its full tick and milliseconds per profile call
sent, and the controller's share of one CPU over the run. Never asserted in a test: all controllers, emulators
and the database share this machine's CPUs, so the figures are pessimistic; the load average is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from benchmarks.live.boot_waves import BootWave, CpuSampler, boot_wave, ticks_in_boot_waves
from benchmarks.live.load_probes import percentile
from benchmarks.live.load_report import per_call_ms
from benchmarks.pg_local import local_postgres


def count_rows(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {str(site): int(n) for site, n in
                    conn.execute(text("SELECT site, COUNT(*) FROM meter_samples GROUP BY site"))}
    finally:
        engine.dispose()


def run(args: argparse.Namespace, url: str) -> list[dict[str, Any]]:
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="depotctl-fleet-load-"))
    procs = []
    markers: dict[str, str] = {}
    for k in range(args.controllers):
        site_yaml = workdir / f"site-{k}" / "load-site.yaml"  # where load_bench writes the site's file
        markers[f"controller-{k}"] = f"--role\x00controller\x00--site\x00{site_yaml}"
        markers[f"emulators-{k}"] = f"csms_adapter.emulator\x00--site\x00{site_yaml}"
    sampler = CpuSampler(markers)
    sampler.start()
    for k in range(args.controllers):
        out = workdir / f"site-{k}"
        out.mkdir(parents=True, exist_ok=True)
        procs.append((k, out, subprocess.Popen(
            [sys.executable, "-m", "benchmarks.live.load_bench", "--chargers", str(args.chargers),
             "--meter-interval-s", str(args.meter_interval_s), "--duration-s", str(args.duration_s),
             "--arrival-window-s", str(args.arrival_window_s), "--workdir", str(out), "--json", str(out / "r.json"),
             "--db-url", url, "--site-name", f"depot-{k:02d}", "--full-tick-delay-s", str(k * args.tick_spacing_s),
             *args.load_bench_args], stdout=subprocess.DEVNULL)))
        if k < args.controllers - 1:
            time.sleep(args.stagger_s)
    deadline = time.monotonic() + args.duration_s + 600
    try:
        for _k, _out, proc in procs:
            try:
                proc.wait(max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)
    finally:
        sampler.stop()
    rows_by_site = count_rows(url)
    waves = [boot_wave(f"depot-{k:02d}", _read_json(out / "controller.json"), k * args.tick_spacing_s)
             for k, out, _proc in procs]
    in_waves = ticks_in_boot_waves(waves)
    first_start = min((w.start_s for w in waves if w.start_s is not None), default=None)
    results = []
    for (k, out, proc), wave in zip(procs, waves, strict=True):
        r = _read_json(out / "r.json")
        full = r.get("full_tick") or {}
        site = f"depot-{k:02d}"
        ticks = r.get("ticks") or []
        planned = [t for t in ticks if t.get("plan_ms") is not None]

        def tick_stat(key: str, q: float, ticks: list[dict[str, Any]] = ticks) -> float | None:
            return percentile([float(t[key]) for t in ticks if t.get(key) is not None], q)

        solver_cpu, ctrl_cpu, wall = r.get("solver_cpu_s"), r.get("controller_cpu_s"), r.get("controller_wall_s")
        results.append({
            "ticks": len(ticks), "tick_ms_median": tick_stat("tick_ms", 0.5), "tick_ms_max": tick_stat("tick_ms", 1.0),
            "snapshot_ms_max": tick_stat("snapshot_ms", 1.0), "solve_wall_ms_max": tick_stat("solve_wall_ms", 1.0),
            "dispatch_ms_max": tick_stat("dispatch_ms", 1.0), "full_tick_sessions": full.get("sessions"),
            "set_up_done": full.get("set_up_done"),
            "solver_cpu_s_per_tick": round(solver_cpu / len(planned), 2) if solver_cpu and planned else None,
            "controller_cpu_pct": round(100.0 * ctrl_cpu / wall) if ctrl_cpu is not None and wall else None,
            # CPU seconds of one full tick in the controller process (snapshot, plan hand-over, dispatch and what
            # the loop handled meanwhile) and per profile call sent: what two shared cores allow.
            "full_tick_cpu_s": round(full["tick_cpu_ms"] / 1000.0, 2) if full.get("tick_cpu_ms") is not None else None,
            "dispatch_cpu_ms_per_call": per_call_ms(full, "dispatch_cpu_ms"),
            "full_tick_at_s": round(k * args.tick_spacing_s, 1),
            "loop_lag_ms_max": r.get("loop_lag_ms_max"), "store_backlog_max": r.get("store_backlog_max"),
            "site": site, "exit": proc.returncode, "chargers": args.chargers, "booted": r.get("booted"),
            "handling_ms_p99": r.get("handling_ms_p99"), "full_tick_ms": full.get("tick_ms"),
            "messages_lost": r.get("messages_lost"), "samples_written": r.get("samples_written"),
            "samples_dropped": r.get("samples_dropped"), "store_failures": r.get("store_failures"),
            "rows_in_db": rows_by_site.get(site, 0),
            **_boot_figures(wave, first_start, sampler, k, args.chargers), "full_tick_in_boot_wave_of":
                " ".join(s[-2:] for s in in_waves.get(site, [])) if site in in_waves else None})
    return results


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _boot_figures(wave: BootWave, first_start: float | None, sampler: CpuSampler, k: int,
                  chargers: int) -> dict[str, Any]:
    """When this controller's boot wave began (after the first controller's) and how long it took, and the CPU
    its controller process and its emulators used in it (per charger for the controller)."""
    cpu = sampler.cpu_between(f"controller-{k}", wave.start_s, wave.end_s)
    return {"boot_at_s": round(wave.start_s - first_start, 1) if wave.start_s is not None and first_start is not None
            else None,
            "boot_wave_s": round(wave.end_s - wave.start_s, 1) if wave.end_s is not None and wave.start_s is not None
            else None,
            "boot_cpu_s": cpu, "boot_cpu_ms_per_charger": round(1000.0 * cpu / chargers, 1) if cpu is not None else None,
            "boot_emulator_cpu_s": sampler.cpu_between(f"emulators-{k}", wave.start_s, wave.end_s)}


def print_table(results: list[dict[str, Any]]) -> None:
    cols = ["site", "booted", "boot_at_s", "boot_wave_s", "boot_cpu_s", "boot_cpu_ms_per_charger", "boot_emulator_cpu_s",
            "full_tick_in_boot_wave_of", "handling_ms_p99", "full_tick_ms", "full_tick_sessions", "set_up_done", "ticks",
            "tick_ms_median", "tick_ms_max", "snapshot_ms_max", "solve_wall_ms_max", "dispatch_ms_max",
            "solver_cpu_s_per_tick", "full_tick_cpu_s", "dispatch_cpu_ms_per_call", "full_tick_at_s",
            "controller_cpu_pct", "loop_lag_ms_max", "messages_lost", "samples_written",
            "rows_in_db", "samples_dropped", "store_backlog_max", "store_failures", "exit"]
    print(" | ".join(cols))
    for r in results:
        print(" | ".join("n/a" if r.get(c) is None else (f"{r[c]:.1f}" if isinstance(r[c], float) else str(r[c]))
                         for c in cols))
    p99 = sorted(r["handling_ms_p99"] for r in results if r.get("handling_ms_p99") is not None)
    ticks = sorted(r["full_tick_ms"] for r in results if r.get("full_tick_ms") is not None)
    lost = sum((r.get("samples_written") or 0) - r["rows_in_db"] for r in results)
    print(f"controllers={len(results)} p99 handling median={p99[len(p99) // 2] if p99 else 'n/a'} ms "
          f"max={p99[-1] if p99 else 'n/a'} ms; full tick median={ticks[len(ticks) // 2] if ticks else 'n/a'} ms "
          f"max={ticks[-1] if ticks else 'n/a'} ms; samples written minus rows stored={lost}; "
          f"load average at the end {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    boot = sorted(r["boot_cpu_s"] for r in results if r.get("boot_cpu_s") is not None)
    clear = [r["full_tick_ms"] for r in results if r.get("full_tick_in_boot_wave_of") == "" and r.get("full_tick_ms")]
    print(f"boot waves: controller CPU per boot wave min={boot[0] if boot else 'n/a'} "
          f"median={boot[len(boot) // 2] if boot else 'n/a'} max={boot[-1] if boot else 'n/a'} s; "
          f"{len(clear)} of {len(results)} full ticks clear of every boot wave "
          f"(full tick {min(clear):.0f}-{max(clear):.0f} ms)" if clear else
          f"boot waves: controller CPU per boot wave {boot or 'n/a'} s; no full tick clear of every boot wave")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.live.fleet_load", description=__doc__.splitlines()[0])
    parser.add_argument("--controllers", type=int, default=10)
    parser.add_argument("--chargers", type=int, default=200, help="emulated chargers per controller")
    parser.add_argument("--meter-interval-s", type=int, default=10)
    parser.add_argument("--duration-s", type=float, default=120.0)
    parser.add_argument("--arrival-window-s", type=float, default=30.0)
    parser.add_argument("--stagger-s", type=float, default=45.0,
                        help="seconds between controller starts, about one boot wave (0: all at once, as after a "
                             "regional power cut)")
    parser.add_argument("--tick-spacing-s", type=float, default=0.0,
                        help="controller k forces its full tick k times this long after its set-up is done (with "
                             "--stagger-s 0, e.g. 8: controllers of different depots are not synchronised)")
    parser.add_argument("load_bench_args", nargs="*", metavar="-- LOAD_BENCH_ARG",
                        help="passed on to every load_bench run, e.g. -- --emulator-nice 0")
    parser.add_argument("--db", default=None, help="an existing database URL (default: a throw-away local server)")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    # Checked before a database server or a controller starts: a bad figure stops the run at once, saying which.
    for name, value, least in (("--controllers", args.controllers, 1), ("--chargers", args.chargers, 1),
                               ("--meter-interval-s", args.meter_interval_s, 1)):
        if value < least:
            parser.error(f"{name} must be at least {least}, not {value}")
    for name, number, positive in (("--duration-s", args.duration_s, True),
                                   ("--arrival-window-s", args.arrival_window_s, False),
                                   ("--stagger-s", args.stagger_s, False),
                                   ("--tick-spacing-s", args.tick_spacing_s, False)):
        if not math.isfinite(number) or number < 0 or (positive and number == 0):
            parser.error(f"{name} must be a {'positive' if positive else 'non-negative'} number of seconds, not {number}")
    with contextlib.ExitStack() as stack:
        url = args.db or stack.enter_context(local_postgres(max_connections=100 + 20 * args.controllers))
        results = run(args, url)
    print_table(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
