"""Many noise seeds on all cores: ``run_seeds`` runs every (scenario, strategy, seed) with ``run_seed``, a
plain function a Dask sweep can reuse, in a process pool; ``summarise_seeds`` gives the mean and 95 %
interval (Student's t over the seeds) of every metric. The same seeds give the same figures whether the runs
are spread over processes or not: each run owns its plant and its random generator.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

import numpy as np
from scipy import stats

from benchmarks.bound import HindsightBound, hindsight_bound
from benchmarks.harness import DISTRUSTED, run_strategy
from benchmarks.metrics import Metrics
from benchmarks.plant import PlantOptions
from benchmarks.scenario import Scenario

DoneCallback = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class SeedRun:
    """One (scenario, strategy, seed) run, without its trace (small enough to pass between processes)."""

    scenario: str
    strategy: str
    seed: int
    metrics: Metrics | None
    error: str | None
    plan_check_failures: int
    wall_s: float
    distrusted_readings: int | None = None  # RunResult.distrusted_count: None when not screened or failed


@dataclass(frozen=True, slots=True)
class MetricInterval:
    name: str  # a field of benchmarks.metrics.Metrics, or DISTRUSTED (benchmarks.harness)
    mean: float
    half_width: float  # the 95 % interval is mean ± half_width (0 with one seed)
    low: float  # the lowest value of any seed
    high: float  # the highest value of any seed


@dataclass(frozen=True, slots=True)
class SeedSummary:
    scenario: str
    strategy: str
    seeds: int  # runs that finished
    errors: tuple[str, ...]  # one per run that raised
    plan_check_failures: int
    wall_s: float  # mean per run
    metrics: tuple[MetricInterval, ...]

    def metric(self, name: str) -> MetricInterval:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(name)


def run_seed(scenario: Scenario, strategy: str, seed: int, options: PlantOptions,
             thermal_calibration: bool = True) -> SeedRun:
    """Run ``strategy`` through ``scenario`` with the plant's noise seeded by ``seed``."""
    result = run_strategy(scenario, strategy, dataclasses.replace(options, seed=seed),
                          thermal_calibration=thermal_calibration)
    return SeedRun(scenario.name, strategy, seed, result.metrics, result.error, result.plan_check_failures, result.wall_s,
                   result.distrusted_count)


def _workers(requested: int | None, jobs: int) -> int:
    return max(1, min(requested or os.cpu_count() or 1, jobs))


def run_seeds(
    scenarios: Sequence[Scenario],
    strategies: Sequence[str],
    seeds: Sequence[int],
    options: PlantOptions,
    *,
    workers: int | None = None,
    with_bound: bool = True,
    thermal_calibration: bool = True,
    on_done: DoneCallback | None = None,
) -> tuple[list[SeedRun], list[HindsightBound]]:
    """Every run (in scenario, strategy, seed order) and each scenario's hindsight bound. ``workers``: processes
    (None: every core; 1: in this process)."""
    jobs = [(sc, name, seed) for sc in scenarios for name in strategies for seed in seeds]
    count = _workers(workers, len(jobs) + (len(scenarios) if with_bound else 0))
    if count == 1:
        bounds = [hindsight_bound(sc, options) for sc in scenarios] if with_bound else []
        runs = []
        for sc, name, seed in jobs:
            runs.append(run_seed(sc, name, seed, options, thermal_calibration))
            if on_done is not None:
                on_done(f"{sc.name} · {name} · seed {seed}")
        return runs, bounds
    # 'spawn': a forked child would inherit the solver's threads mid-state.
    with ProcessPoolExecutor(max_workers=count, mp_context=get_context("spawn")) as pool:
        bound_futures = [pool.submit(hindsight_bound, sc, options) for sc in scenarios] if with_bound else []
        futures: list[Future[SeedRun]] = [pool.submit(run_seed, sc, name, seed, options, thermal_calibration)
                                          for sc, name, seed in jobs]
        if on_done is not None:
            for future, (sc, name, seed) in zip(futures, jobs, strict=True):
                future.add_done_callback(_announce(on_done, f"{sc.name} · {name} · seed {seed}"))
        runs = [f.result() for f in futures]
        bounds = [f.result() for f in bound_futures]
    return runs, bounds


def _announce(on_done: DoneCallback, label: str) -> Callable[[Future[SeedRun]], None]:
    def done(_future: Future[SeedRun]) -> None:
        on_done(label)

    return done


def interval95(values: Sequence[float]) -> tuple[float, float]:
    """(mean, half width of the 95 % confidence interval of the mean), Student's t; half width 0 for one value."""
    data = np.asarray(values, dtype=np.float64)
    mean = float(data.mean())
    if data.size < 2:
        return mean, 0.0
    spread = float(data.std(ddof=1))
    return mean, float(stats.t.ppf(0.975, data.size - 1)) * spread / math.sqrt(data.size)


def _interval(name: str, values: Sequence[float]) -> MetricInterval:
    mean, half = interval95(values)
    return MetricInterval(name, mean, half, min(values), max(values))


def summarise_seeds(runs: Sequence[SeedRun]) -> list[SeedSummary]:
    """One summary per (scenario, strategy), in the order they first appear."""
    keys = list(dict.fromkeys((r.scenario, r.strategy) for r in runs))
    out = []
    for scenario, strategy in keys:
        group = [r for r in runs if r.scenario == scenario and r.strategy == strategy]
        finished = [r.metrics for r in group if r.metrics is not None]
        intervals = []
        for field in dataclasses.fields(Metrics):
            values = [getattr(m, field.name) for m in finished]
            if not values or any(v is None for v in values):
                continue
            intervals.append(_interval(field.name, [float(v) for v in values]))
        counts = [r.distrusted_readings for r in group if r.metrics is not None]
        if counts and all(c is not None for c in counts):
            intervals.append(_interval(DISTRUSTED, [float(c) for c in counts if c is not None]))
        out.append(SeedSummary(
            scenario=scenario,
            strategy=strategy,
            seeds=len(finished),
            errors=tuple(f"seed {r.seed}: {r.error}" for r in group if r.error is not None),
            plan_check_failures=sum(r.plan_check_failures for r in group),
            wall_s=float(np.mean([r.wall_s for r in group])) if group else 0.0,
            metrics=tuple(intervals),
        ))
    return out
