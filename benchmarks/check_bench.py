"""Check benchmark: what the live tick's independent plan check costs, in processor time, at 54, 200 and 1,000
sessions of the load benchmark's depot (``benchmarks.plan_bench.live_like_snapshot``, planned once by the LP).

    python -m benchmarks.check_bench [--sizes 54,200,1000] [--repeats 7]

Printed per size, as the median of ``--repeats`` runs (milliseconds of CPU, so a shared machine's load inflates
them less than wall time): the whole check (``check_plan``), its snapshot-only part (``prepare_check``: the
sessions resolved and the circuits compiled, which the live tick does while the solver works), and the check
with that part done ahead, which is what the tick waits for once the plan is there.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from collections.abc import Callable

from benchmarks.plan_bench import live_like_snapshot
from benchmarks.synthetic_site import synthetic_site
from optimizer import plan_check
from optimizer.plan_check import check_plan
from optimizer.strategies.base import prepare_tick
from optimizer.strategies.lp import LpStrategy


def cpu_ms(call: Callable[[], object], repeats: int) -> float:
    """Median processor milliseconds of ``call``."""
    times = []
    for _ in range(repeats):
        started = time.process_time()
        call()
        times.append((time.process_time() - started) * 1000.0)
    return statistics.median(times)


def measure(size: int, repeats: int) -> tuple[float, float, float, int]:
    site = synthetic_site(size, step_min=15.0, horizon_h=12.0, uniform_steps=False)
    snapshot = live_like_snapshot(site)
    plan = LpStrategy().plan_tick(prepare_tick(site, snapshot))
    whole = cpu_ms(lambda: check_plan(site, snapshot, plan), repeats)
    prepare = getattr(plan_check, "prepare_check", None)
    if prepare is None:  # a commit before the check could be prepared ahead (for before/after figures)
        return whole, math.nan, math.nan, len(check_plan(site, snapshot, plan))
    basis = prepare(site, snapshot)
    return (whole, cpu_ms(lambda: prepare(site, snapshot), repeats),
            cpu_ms(lambda: check_plan(site, snapshot, plan, basis=basis), repeats),
            len(check_plan(site, snapshot, plan, basis=basis)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.check_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="54,200,1000", help="sessions, comma-separated")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1 or args.repeats < 1:
        parser.error(f"--sizes {args.sizes!r}: positive integers, comma-separated; --repeats at least 1")
    print(f"load average before: {os.getloadavg()[0]:.1f}; CPU ms, median of {args.repeats}")
    print("| sessions | whole check | snapshot-only part (ahead) | check with it done ahead | violations |")
    print("|---|---|---|---|---|")
    for size in sizes:
        whole, ahead, rest, problems = measure(size, args.repeats)
        print(f"| {size:,} | {whole:,.1f} | {ahead:,.1f} | {rest:,.1f} | {problems} |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
