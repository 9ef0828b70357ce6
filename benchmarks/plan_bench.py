"""Plan benchmark: where the live controller's plan time goes, tick after tick, for 54, 200 and 1,000 sessions.

The solver benchmark (``benchmarks.solver_bench``) times one cold solve of random depots. The live controller
plans the same depot every tick, in its solver process, with one strategy object that lives as long as the
controller. This benchmark plans the load benchmark's synthetic depot (``benchmarks.live.load_bench``: the
solver benchmark's site, 15-minute steps growing along a 12 h horizon) as the live controller sees it once every
emulated vehicle is plugged in: SoC measured 10-50 %, the fleet defaults' 80 kWh battery, 90 % target and 10 h
dwell, battery temperature 20-25 °C, each vehicle's phases learnt, the command held for a 60 s tick. Each tick
advances 60 s and every SoC by what its command delivers.

Per tick it times the stages the solver process and the controller run: snapshot → sessions and grid
(``prepare``), LP build and load, solve (with the minimum-current rounds), plan assembly (``commands``), the
independent plan check and the process hop (pickling the snapshot there and the plan back); "plan" is the wall
time of the first four, "plan CPU" their processor time (which the load of a shared machine inflates less; the
solver runs on one thread). Medians over the
ticks after the first (the first tick of a controller is always cold) are printed next to the first, once with
the warm start from the last tick's basis and once without. It also compares both plans of every tick: the
objective, the planned energy and how many first-step commands differ.

    python -m benchmarks.plan_bench [--sizes 54,200,1000] [--ticks 6]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import pickle
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from benchmarks.synthetic_site import synthetic_site
from optimizer.circuits import wired_phases
from optimizer.domain import Plan, SessionState, Site, Snapshot, ValueSource
from optimizer.plan_check import check_plan
from optimizer.strategies.base import prepare_tick
from optimizer.strategies.lp import LpStrategy

TICK_S = 60.0
STAGES = ("prepare", "build", "solve", "commands", "plan", "plan CPU", "check", "hop")


def live_like_snapshot(site: Site, seed: int = 0, now: datetime = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)) -> Snapshot:
    """Every connector with a vehicle as the load benchmark's emulated fleet presents it (module docstring)."""
    rng = np.random.default_rng(seed)
    sessions = []
    for charger in site.chargers:
        sessions.append(SessionState(
            charger_id=charger.id, connector_id=1, soc=float(rng.uniform(0.1, 0.5)), soc_source=ValueSource.MEASURED,
            battery_temp_c=20.0 + float(rng.uniform(0.0, 5.0)), phases=None if charger.dc else charger.phases,
            site_phases=tuple(wired_phases(charger)), plugged_in_at=now - timedelta(seconds=float(rng.uniform(30, 200))),
            soc_age_s=float(rng.uniform(0.0, 10.0)), power_kw=float(rng.uniform(1.0, 7.0)),
            energy_delivered_kwh=float(rng.uniform(0.0, 1.0))))
    return Snapshot(time=now, sessions=tuple(sessions), ambient_c=20.0, command_hold_s=TICK_S)


def next_snapshot(snapshot: Snapshot, plan: Plan) -> Snapshot:
    """``TICK_S`` later, each SoC advanced by what its command delivered (the fleet defaults' 80 kWh)."""
    sessions = tuple(
        dataclasses.replace(s, soc=min(1.0, (s.soc or 0.0) + c.limit_kw * 0.95 * TICK_S / 3600.0 / 80.0))
        for s, c in zip(snapshot.sessions, plan.connectors, strict=True))
    return dataclasses.replace(snapshot, time=snapshot.time + timedelta(seconds=TICK_S), sessions=sessions)


@dataclass
class Run:
    stages: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})
    plans: list[Plan] = field(default_factory=list)


def timed_tick(strategy: LpStrategy, site: Site, snapshot: Snapshot, run: Run) -> Plan:
    started, cpu_started = time.perf_counter(), time.process_time()
    tick = prepare_tick(site, snapshot)
    prepared = time.perf_counter()
    plan = strategy.plan_tick(tick)
    planned, cpu_planned = time.perf_counter(), time.process_time()
    check_plan(site, snapshot, plan)
    checked = time.perf_counter()
    pickle.loads(pickle.dumps(snapshot))
    pickle.loads(pickle.dumps(plan))
    hopped = time.perf_counter()
    lp_ms = plan.solve_ms or 0.0  # build + solve + minimum-current rounds, as the strategy timed them
    build_ms = plan.build_ms or 0.0
    values = {
        "prepare": (prepared - started) * 1000.0, "build": build_ms, "solve": lp_ms - build_ms,
        "commands": (planned - prepared) * 1000.0 - lp_ms, "plan": (planned - started) * 1000.0,
        "plan CPU": (cpu_planned - cpu_started) * 1000.0,
        "check": (checked - planned) * 1000.0, "hop": (hopped - checked) * 1000.0,
    }
    for stage, value in values.items():
        run.stages[stage].append(value)
    run.plans.append(plan)
    return plan


def make_strategy(warm: bool) -> LpStrategy:
    try:
        return LpStrategy(warm_start=warm)
    except TypeError:  # a version without the warm start (for before/after figures)
        return LpStrategy()


def measure(size: int, ticks: int) -> tuple[Run, Run]:
    site = synthetic_site(size, step_min=15.0, horizon_h=12.0, uniform_steps=False)
    cold, warm = make_strategy(False), make_strategy(True)
    runs = (Run(), Run())
    snapshot = live_like_snapshot(site)
    for _ in range(ticks):
        timed_tick(cold, site, snapshot, runs[0])
        plan = timed_tick(warm, site, snapshot, runs[1])
        snapshot = next_snapshot(snapshot, plan)  # both plan the same snapshots: the warm run's ticks
    return runs


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f}" if values else "—"


def print_report(size: int, runs: tuple[Run, Run]) -> None:
    for name, run in zip(("cold", "warm"), runs, strict=True):
        later = {stage: values[1:] for stage, values in run.stages.items()}
        cells = " | ".join(f"{run.stages[s][0]:,.0f} / {_median(later[s])}" for s in STAGES)
        print(f"| {size:,} | {name} ({run.plans[-1].solver}) | {cells} |", flush=True)


def print_comparison(size: int, runs: tuple[Run, Run]) -> None:
    cold, warm = runs
    worst_objective = max(abs((w.objective or 0.0) - (c.objective or 0.0)) / max(1.0, abs(c.objective or 0.0))
                          for c, w in zip(cold.plans, warm.plans, strict=True))
    energy = [(sum(x.energy_planned_kwh for x in c.connectors), sum(x.energy_planned_kwh for x in w.connectors))
              for c, w in zip(cold.plans, warm.plans, strict=True)]
    worst_energy = max(abs(w - c) / max(c, 1e-9) for c, w in energy)
    differ = [sum(abs(a.limit_kw - b.limit_kw) > 0.1 for a, b in zip(c.connectors, w.connectors, strict=True))
              for c, w in zip(cold.plans, warm.plans, strict=True)]

    def changed(plans: list[Plan]) -> list[int]:
        return [sum(abs(a.limit_kw - b.limit_kw) > 0.1 for a, b in zip(p.connectors, q.connectors, strict=True))
                for p, q in itertools.pairwise(plans)]

    print(f"{size:,} sessions: objective warm vs cold within {worst_objective:.1e} (relative), planned energy within "
          f"{worst_energy:.2e}; first-step commands differing by > 0.1 kW per tick: {differ}; commands changed from "
          f"the tick before: cold {changed(cold.plans)}, warm {changed(warm.plans)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="54,200,1000")
    parser.add_argument("--ticks", type=int, default=6)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f}; ms, first tick / median of the later ticks")
    print("| sessions | run | " + " | ".join(STAGES) + " |")
    print("|---|---|" + "---|" * len(STAGES))
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        runs = measure(size, args.ticks)
        results.append((size, runs))
        print_report(size, runs)
    print()
    for size, runs in results:
        print_comparison(size, runs)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
