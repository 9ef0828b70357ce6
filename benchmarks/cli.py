"""``depotctl bench SCENARIO... [--strategies lp,edf,...] [--out DIR]``.

``register(app)`` adds the command to a Typer app (the depotctl CLI calls it); ``python -m
benchmarks.cli bench ...`` runs it on its own. Every scenario is loaded before anything is simulated:
one bad file stops the run with exit 2 and every problem on stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from benchmarks.harness import ALL_STRATEGIES, RunResult, run_strategy
from benchmarks.plant import PlantOptions
from benchmarks.plots import write_plots
from benchmarks.report import write_report, write_results_json
from benchmarks.scenario import Scenario, load_scenario
from optimizer.errors import ConfigError

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


def run_all(scenarios: list[Scenario], strategies: list[str], options: PlantOptions, console: Console) -> list[RunResult]:
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

                result = run_strategy(scenario, name, options, on_tick=tick)
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
    thermal_mismatch: Annotated[float, typer.Option(help="real battery heats (1+m)× the model")] = 0.0,
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
    workers: Annotated[int | None, typer.Option(min=1, help="--sweep: local worker processes (default: cores)")
                       ] = None,
) -> None:
    """Run strategies on simulated depot days; write results.json, report.md and plots to OUT."""
    err = Console(stderr=True)
    if sweep is not None:
        run_sweep_mode(sweep, out, scheduler, workers, err)
        return
    if not scenarios:
        raise typer.BadParameter("give scenario files, or --sweep FILE", param_hint="SCENARIOS")
    names = parse_strategies(strategies)
    loaded = load_all(scenarios)
    if live:
        run_live_mode(loaded, speed, thermal_mismatch, all_report_soc, out)
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
    results = run_all(loaded, names, options, err)
    write_results_json(out / "results.json", results)
    plots = write_plots(out, results)
    write_report(out / "report.md", results, options, plots)
    err.print(f"wrote {out / 'results.json'}, {out / 'report.md'} and {len(plots)} plots")


def run_live_mode(scenarios: list[Scenario], speed: float, thermal_mismatch: float, all_report_soc: bool, out: Path) -> None:
    """``--live``: lp only (the controller's strategy); the comparison table goes to stdout and OUT/live.json."""
    from benchmarks.live.compare_run import compare_all  # imports the live controller: only when asked
    from benchmarks.live.scenario_live import LiveOptions

    options = LiveOptions(speed=speed, thermal_mismatch=thermal_mismatch, hide_soc=not all_report_soc)
    compare_all(scenarios, options, out, typer.echo)
    Console(stderr=True).print(f"wrote {out / 'live.json'}")


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
