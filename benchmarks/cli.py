"""``depotctl bench SCENARIO... [--strategies lp,edf,...] [--out DIR] [--seeds N]``.

With ``--seeds N`` (N > 1) every run is repeated over N noise seeds on all cores and the outputs hold the mean
and 95 % interval of every metric (benchmarks/seeds.py); every run is judged against the hindsight bound.

``register(app)`` adds the command to a Typer app (the depotctl CLI calls it); ``python -m
benchmarks.cli bench ...`` runs it on its own. Every scenario is loaded before anything is simulated:
one bad file stops the run with exit 2 and every problem on stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from benchmarks.strategy_names import ALL_STRATEGIES
from optimizer.errors import ConfigError

if TYPE_CHECKING:
    # The harness pulls in the solver, the plots matplotlib, the seeds scipy: imported where a command needs them,
    # so that `depotctl --help` and every other command start quickly.
    from benchmarks.harness import RunResult
    from benchmarks.plant import PlantOptions
    from benchmarks.scenario import Scenario

DEFAULT_STRATEGIES = ",".join(ALL_STRATEGIES)
EXIT_BAD_INPUT = 2


def parse_strategies(text: str) -> list[str]:
    """Comma-separated names, in order, without duplicates. Raises typer.BadParameter for unknown ones."""
    names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in ALL_STRATEGIES]
    if unknown or not names:
        raise typer.BadParameter(f"unknown strategy {', '.join(unknown) or '(none)'}; choose from {DEFAULT_STRATEGIES}")
    return names


def load_all(paths: list[Path]) -> list[Scenario]:
    """Every scenario, or exit 2 listing every problem of every bad file."""
    from benchmarks.scenario import load_scenario

    scenarios: list[Scenario] = []
    failed = False
    for path in paths:
        try:
            scenarios.append(load_scenario(path))
        except ConfigError as exc:
            failed = True
            for problem in exc.problems:
                typer.echo(str(problem), err=True)  # plain: one problem per line, never wrapped
    if failed:
        raise typer.Exit(EXIT_BAD_INPUT)
    return scenarios


def run_all(scenarios: list[Scenario], strategies: list[str], options: PlantOptions, console: Console,
            thermal_calibration: bool = True) -> list[RunResult]:
    from benchmarks.harness import run_strategy

    results: list[RunResult] = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        for scenario in scenarios:
            for name in strategies:
                task = progress.add_task(f"{scenario.name} · {name}", total=scenario.steps)

                def tick(task: TaskID = task) -> None:
                    progress.advance(task)

                result = run_strategy(scenario, name, options, on_tick=tick, thermal_calibration=thermal_calibration)
                progress.update(task, completed=scenario.steps)
                if result.error is not None:
                    console.print(f"[red]{scenario.name} · {name}: {result.error}[/red]")
                results.append(result)
    return results


def bench(
    scenarios: Annotated[list[Path] | None, typer.Argument(help="scenario YAML files")] = None,
    strategies: Annotated[str, typer.Option(help="comma-separated strategies")] = DEFAULT_STRATEGIES,
    out: Annotated[Path, typer.Option(help="output directory")] = Path("bench-out"),
    seed: Annotated[int, typer.Option(help="seed of the plant's sensor noise")] = 0,
    thermal_mismatch: Annotated[
        float, typer.Option(min=-0.9, help="real battery heats (1+m)× and cools 1/(1+m)× as fast as the model")
    ] = 0.0,
    thermal_calibration: Annotated[
        bool, typer.Option(help="lp plans with thermal models learnt from the readings (docs/battery.md)")
    ] = True,
    noise: Annotated[bool, typer.Option(help="sensor noise on SoC, temperature and meter")] = True,
    all_report_soc: Annotated[bool, typer.Option(help="every vehicle reports its SoC")] = False,
    live: Annotated[
        bool, typer.Option(help="lp through the live controller and emulated chargers, compared with in-process")
    ] = False,
    speed: Annotated[float, typer.Option(min=1.0, max=1000.0, help="--live: emulated seconds per wall second")] = 120.0,
    sweep: Annotated[Path | None, typer.Option(
        help="a sweep file (scenarios × strategies × seeds × limit factors), run on Dask")] = None,
    scheduler: Annotated[str | None, typer.Option(
        help="--sweep: address of an existing Dask scheduler (default: a local cluster on all cores)")] = None,
    seeds: Annotated[int, typer.Option(min=1, max=10_000, help="noise seeds SEED..SEED+N-1, run on all cores; "
                                       "reports mean and 95 % interval")] = 1,
    workers: Annotated[int, typer.Option(min=0, max=1024, help="--seeds/--sweep: processes (0: one per core)")] = 0,
    bound: Annotated[bool, typer.Option(help="solve the hindsight bound of every scenario")] = True,
) -> None:
    """Run strategies on simulated depot days; write results.json, report.md and plots to OUT."""
    from benchmarks.bound import HindsightBound, hindsight_bound
    from benchmarks.plant import PlantOptions
    from benchmarks.plots import write_plots
    from benchmarks.report import write_report, write_results_json
    from benchmarks.seeds import run_seeds, summarise_seeds
    from benchmarks.seeds_report import write_seed_outputs

    err = Console(stderr=True)
    if sweep is not None:
        run_sweep_mode(sweep, out, scheduler, workers or None, err)
        return
    if not scenarios:
        raise typer.BadParameter("give scenario files, or --sweep FILE", param_hint="SCENARIOS")
    names = parse_strategies(strategies)
    loaded = load_all(scenarios)
    if live:
        run_live_mode(loaded, speed, thermal_mismatch, all_report_soc, out, thermal_calibration)
        return
    defaults = PlantOptions()
    options = PlantOptions(
        seed=seed,
        soc_noise=defaults.soc_noise if noise else 0.0,
        temp_noise_c=defaults.temp_noise_c if noise else 0.0,
        meter_noise=defaults.meter_noise if noise else 0.0,
        thermal_mismatch=thermal_mismatch,
        hide_soc=not all_report_soc,
    )
    out.mkdir(parents=True, exist_ok=True)
    if seeds > 1:
        seed_list = list(range(seed, seed + seeds))
        runs, bounds = run_seeds(loaded, names, seed_list, options, workers=workers or None, with_bound=bound,
                                 thermal_calibration=thermal_calibration,
                                 on_done=lambda label: err.print(f"done: {label}"))
        summaries = summarise_seeds(runs)
        for summary in summaries:
            for problem in summary.errors:
                err.print(f"[red]{summary.scenario} · {summary.strategy}: {problem}[/red]")
        write_seed_outputs(out, summaries, runs, bounds, options, seed_list, " ".join(["depotctl bench", *sys.argv[2:]]))
        err.print(f"wrote {out / 'results.json'} and {out / 'report.md'} ({len(runs)} runs)")
        return
    results = run_all(loaded, names, options, err, thermal_calibration)
    bounds_found: list[HindsightBound] = [hindsight_bound(sc, options) for sc in loaded] if bound else []
    write_results_json(out / "results.json", results, bounds_found)
    plots = write_plots(out, results)
    write_report(out / "report.md", results, options, plots, bounds_found)
    err.print(f"wrote {out / 'results.json'}, {out / 'report.md'} and {len(plots)} plots")


def run_live_mode(scenarios: list[Scenario], speed: float, thermal_mismatch: float, all_report_soc: bool, out: Path,
                  thermal_calibration: bool = True) -> None:
    """``--live``: lp only (the controller's strategy); the comparison table goes to stdout and OUT/live.json; the
    live runs, with the detection figures of the scenarios' injected faults, to OUT/results.json."""
    from benchmarks.live.compare_run import compare_all  # imports the live controller: only when asked
    from benchmarks.live.scenario_live import LiveOptions

    options = LiveOptions(speed=speed, thermal_mismatch=thermal_mismatch, hide_soc=not all_report_soc,
                          thermal_calibration=thermal_calibration)
    compare_all(scenarios, options, out, typer.echo)
    Console(stderr=True).print(f"wrote {out / 'live.json'} and {out / 'results.json'} (live runs, with fault detection)")


def run_sweep_mode(path: Path, out: Path, scheduler: str | None, workers: int | None, err: Console) -> None:
    """Run a sweep file on Dask and write OUT/results.json (one row per task, with its seed and limit factor)."""
    import json

    from benchmarks.sweep import load_sweep, run_on_dask

    try:
        sweep = load_sweep(path)
    except ConfigError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    out.mkdir(parents=True, exist_ok=True)
    where = scheduler or f"a local cluster of {workers or 'all'} cores"
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err) as progress:
        task = progress.add_task(f"sweep on {where}", total=len(sweep.tasks))
        rows = run_on_dask(sweep, scheduler=scheduler, workers=workers,
                           on_done=lambda done, _total: progress.update(task, completed=done))
    (out / "results.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    err.print(f"wrote {out / 'results.json'} ({len(rows)} runs)")


def register(app: typer.Typer) -> None:
    """Add the ``bench`` command to ``app``."""
    app.command("bench")(bench)


def main() -> None:
    app = typer.Typer(add_completion=False, help="depotctl benchmark harness")

    @app.callback()
    def _root() -> None:
        """Keeps ``bench`` a sub-command, as under ``depotctl``."""

    register(app)
    app(args=sys.argv[1:], prog_name="python -m benchmarks.cli")


if __name__ == "__main__":
    main()
