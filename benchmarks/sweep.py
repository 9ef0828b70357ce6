"""Benchmark sweeps: scenarios × strategies × seeds × limit factors, run as independent tasks on a Dask cluster.

A sweep file says what to run::

    scenarios: [congested-day.yaml, van-depot-overnight.yaml]   # relative to the sweep file
    strategies: [lp, edf, equal_share]
    seeds: [0, 1, 2]                # or seeds: 3  (seeds 0, 1, 2)
    limit_factors: [1.0, 0.8]       # the grid import limit (and its schedule windows) scaled by each factor
    noise: true                     # sensor noise on SoC, temperature and meter
    thermal_mismatch: 0.0
    all_report_soc: false

Each task is a pure function of its (scenario file, strategy, seed, limit factor, plant options): the same task
gives the same numbers on any worker, so a sweep on a cluster equals the serial run except for wall times.
By default a local cluster is started with one single-threaded worker process per core (on 127.0.0.1 only);
``scheduler`` points at an existing cluster instead (its workers need depotctl installed).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from benchmarks.harness import run_strategy
from benchmarks.plant import PlantOptions
from benchmarks.report import result_rows
from benchmarks.scenario import Scenario, load_scenario
from benchmarks.strategy_names import ALL_STRATEGIES, OFFLINE
from optimizer.domain import Grid, GridWindow
from optimizer.errors import ConfigError, ConfigProblem

# Fields that measure this machine, not the strategy: they differ between two runs of the same task.
TIMING_FIELDS = frozenset({"wall_s", "tick_ms_p50", "tick_ms_p95", "tick_ms_max"})


class _SweepFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    scenarios: Annotated[list[str], Field(min_length=1)]
    strategies: Annotated[list[str], Field(min_length=1)]
    seeds: Annotated[list[int], Field(min_length=1)] | Annotated[int, Field(ge=1, le=10_000)] = [0]
    limit_factors: Annotated[list[Annotated[float, Field(gt=0, le=10)]], Field(min_length=1)] = [1.0]
    noise: bool = True
    thermal_mismatch: Annotated[float, Field(ge=-0.9, le=10)] = 0.0
    all_report_soc: bool = False


@dataclass(frozen=True, slots=True)
class SweepTask:
    """One run of a sweep; picklable, so it travels to any worker."""

    scenario_file: str
    strategy: str
    seed: int
    limit_factor: float
    options: PlantOptions

    @property
    def group(self) -> tuple[str, int, float]:
        return (self.scenario_file, self.seed, self.limit_factor)


@dataclass(frozen=True, slots=True)
class Sweep:
    source_file: str
    tasks: tuple[SweepTask, ...]


def load_sweep(path: str | Path) -> Sweep:
    """Read a sweep file; raises ConfigError naming the file and key for any problem (scenarios included, each
    loaded once here so a bad one stops the sweep before anything runs)."""
    filename = str(path)
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError([ConfigProblem(filename, None, "", f"cannot read the sweep file: {exc}")]) from exc
    try:
        parsed = _SweepFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError([ConfigProblem(filename, None, ".".join(str(p) for p in e["loc"]), e["msg"])
                           for e in exc.errors()]) from exc
    problems = [ConfigProblem(filename, None, f"strategies[{i}]", f"unknown strategy '{name}'; choose from "
                        f"{', '.join(ALL_STRATEGIES)}") for i, name in enumerate(parsed.strategies)
                if name not in ALL_STRATEGIES]
    base = Path(path).parent
    files = [str((base / s) if not Path(s).is_absolute() else Path(s)) for s in parsed.scenarios]
    for scenario_file in files:
        try:
            load_scenario(scenario_file)
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    seeds = list(range(parsed.seeds)) if isinstance(parsed.seeds, int) else parsed.seeds
    defaults = PlantOptions()
    tasks: list[SweepTask] = []
    for scenario_file in files:
        for factor in parsed.limit_factors:
            for seed in seeds:
                options = PlantOptions(
                    seed=seed,
                    soc_noise=defaults.soc_noise if parsed.noise else 0.0,
                    temp_noise_c=defaults.temp_noise_c if parsed.noise else 0.0,
                    meter_noise=defaults.meter_noise if parsed.noise else 0.0,
                    thermal_mismatch=parsed.thermal_mismatch,
                    hide_soc=not parsed.all_report_soc,
                )
                tasks.extend(SweepTask(scenario_file, name, seed, factor, options) for name in parsed.strategies)
    return Sweep(filename, tuple(tasks))


def with_limit_factor(scenario: Scenario, factor: float) -> Scenario:
    """The scenario with its grid import limit and every schedule window scaled by ``factor``."""
    if factor == 1.0:
        return scenario
    grid = scenario.site.grid
    scaled = Grid(grid.import_limit_kw * factor,
                  tuple(GridWindow(w.start_local, w.end_local, w.import_limit_kw * factor) for w in grid.windows))
    site = dataclasses.replace(scenario.site, grid=scaled)
    return dataclasses.replace(scenario, site=site, name=f"{scenario.name}@{factor:g}")


def run_task(task: SweepTask) -> dict[str, Any]:
    """Run one task; the result row of results.json plus the task's seed and limit factor."""
    scenario = with_limit_factor(load_scenario(task.scenario_file), task.limit_factor)
    result = run_strategy(scenario, task.strategy, task.options)
    row = result_rows([result])[0]
    row["seed"] = task.seed
    row["limit_factor"] = task.limit_factor
    return row


def _with_offline_share(tasks: Sequence[SweepTask], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """energy_pct_of_offline within each (scenario, seed, limit factor) group, as the plain bench reports it."""
    offline = {t.group: r.get("energy_delivered_kwh") for t, r in zip(tasks, rows, strict=True)
               if t.strategy == OFFLINE}
    for task, row in zip(tasks, rows, strict=True):
        best = offline.get(task.group)
        energy = row.get("energy_delivered_kwh")
        row["energy_pct_of_offline"] = round(100.0 * energy / best, 3) if best and energy is not None else None
    return rows


def run_serial(sweep: Sweep, on_done: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
    rows = []
    for index, task in enumerate(sweep.tasks):
        rows.append(run_task(task))
        if on_done is not None:
            on_done(index + 1, len(sweep.tasks))
    return _with_offline_share(sweep.tasks, rows)


def run_on_dask(sweep: Sweep, *, scheduler: str | None = None, workers: int | None = None,
                on_done: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
    """Run every task on Dask: a local cluster on all cores (``workers`` processes, one thread each) unless
    ``scheduler`` names an existing one. Rows come back in task order whatever order they finish in."""
    import logging

    from dask.distributed import Client, LocalCluster, as_completed

    logging.getLogger("distributed").setLevel(logging.WARNING)  # its INFO lines would bury the progress bar

    cluster = None
    if scheduler is None:
        # Workers are processes (the LP holds the GIL); loopback only. The scheduler's HTTP server (dashboard,
        # /metrics) always starts: on a free loopback port, since None means the fixed 8787 that another cluster
        # on the machine may hold (it then warns, and fails a run that treats warnings as errors).
        cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1,  # type: ignore[no-untyped-call]
                               threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address="127.0.0.1:0")
    try:
        with Client(cluster if cluster is not None else scheduler) as client:  # type: ignore[no-untyped-call]
            futures = client.map(run_task, list(sweep.tasks), pure=False)
            index_of = {future.key: i for i, future in enumerate(futures)}
            rows: list[dict[str, Any] | None] = [None] * len(futures)
            for done, future in enumerate(as_completed(futures), start=1):  # type: ignore[no-untyped-call]
                rows[index_of[future.key]] = future.result()
                if on_done is not None:
                    on_done(done, len(futures))
    finally:
        if cluster is not None:
            cluster.close()
    return _with_offline_share(sweep.tasks, [r for r in rows if r is not None])


def comparable(row: dict[str, Any]) -> dict[str, Any]:
    """A result row without the fields that time this machine."""
    return {k: v for k, v in row.items() if k not in TIMING_FIELDS}
