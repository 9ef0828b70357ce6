"""The `depotctl` command line. `check` and `plan` are here; `run` comes from the live controller
(csms_adapter.cli.run_command) and `bench` from the benchmark harness (benchmarks.cli), registered lazily
so that csms_adapter never imports benchmarks at module level (docs/architecture.md, "Import rules")."""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.tree import Tree

from csms_adapter.cli.consoles import make_console
from csms_adapter.cli.site_warnings import password_warnings
from csms_adapter.protocol.log_redaction import FRAME_LOGGERS
from optimizer.errors import ConfigError, DepotError, SnapshotError
from optimizer.strategy_names import STRATEGY_NAMES

if TYPE_CHECKING:
    from optimizer.domain import Plan, Site

app = typer.Typer(add_completion=False, no_args_is_help=True, help="depotctl: site controller for EV depots")
err = make_console(stderr=True)
out = make_console()
log = logging.getLogger("depotctl")


def _load_or_exit(path: Path) -> Site:
    from optimizer.site_loader import load_site  # pydantic and the domain: only for the commands that load a site

    try:
        return load_site(path)
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(f"[red]error[/red] {problem}", highlight=False, markup=True, soft_wrap=True)
        err.print(f"{len(exc.problems)} problem(s) in {path}")
        raise typer.Exit(2) from None


def _site_tree(site: Site) -> Tree:
    def limits(max_a: float | None, max_kw: float | None) -> str:
        parts = []
        if max_a is not None:
            parts.append(f"{max_a:g} A/phase")
        if max_kw is not None:
            parts.append(f"{max_kw:g} kW")
        return ", ".join(parts)

    windows = "".join(
        f", {w.start_local:%H:%M}-{w.end_local:%H:%M} {w.import_limit_kw:g} kW" for w in site.grid.windows
    )
    root = Tree(
        f"[bold]{site.name}[/bold]  grid {site.grid.import_limit_kw:g} kW{windows}; "
        f"base load {max(site.base_load.profile_kw):g} kW peak; {site.voltage_v:g} V; tz {site.timezone}"
    )
    nodes: dict[str, Tree] = {}

    def charger_line(cid: str) -> str:
        c = site.charger(cid)
        kind = "DC" if c.dc else f"{c.phases}φ {''.join(c.phase_rotation)} {c.min_current_a:g}-{c.max_current_a:g} A"
        return f"{c.id}: {c.connectors}× {kind}, {c.max_power_kw:g} kW"

    pending = list(site.circuits)
    while pending:
        progressed = False
        for circuit in list(pending):
            parent = root if circuit.parent is None else nodes.get(circuit.parent)
            if parent is None:
                continue
            node = parent.add(f"[cyan]{circuit.id}[/cyan] ({limits(circuit.max_current_a, circuit.max_kw)})")
            for cid in circuit.chargers:
                node.add(charger_line(cid))
            nodes[circuit.id] = node
            pending.remove(circuit)
            progressed = True
        if not progressed:
            break
    placed = {cid for c in site.circuits for cid in c.chargers}
    for charger in site.chargers:
        if charger.id not in placed:
            root.add(charger_line(charger.id))
    root.add(f"fleet: {len(site.vehicles)} vehicle(s) in the roster")
    return root


@app.command()
def check(site_files: Annotated[list[Path], typer.Argument(help="site YAML file(s)")]) -> None:
    """Check site files: print each circuit tree with its limits, or every problem; exit 2 if any file has one.
    Warns (exit 0) about chargers that could not log in with the current environment."""
    failed = 0
    for site_file in site_files:
        try:
            site = _load_or_exit(site_file)
        except typer.Exit:
            failed += 1
            continue
        out.print(_site_tree(site))
        out.print(f"[green]ok[/green]: {site_file}: {len(site.chargers)} chargers, {len(site.circuits)} circuits",
                  highlight=False)
        for warning in password_warnings(site, os.environ):
            err.print(f"[yellow]warning[/yellow] {site_file}: {warning}", highlight=False, soft_wrap=True)
    if failed:
        if len(site_files) > 1:
            err.print(f"{failed} of {len(site_files)} files have problems")
        raise typer.Exit(2)


def _plan_table(plan: Plan) -> Table:
    table = Table(title=f"{plan.strategy}: {plan.status} in {plan.solve_ms:.1f} ms ({plan.solver})")
    for column in ("charger", "conn", "limit kW", "limit A", "need kWh", "planned kWh", "SoC@dep", "max °C", "departure"):
        # A narrow window folds a value onto two lines rather than cutting it to "cp-…".
        table.add_column(column, justify="right", overflow="fold", min_width=len(column))
    for c in plan.connectors:
        table.add_row(
            c.charger_id, str(c.connector_id), f"{c.limit_kw:.3f}",
            "-" if c.limit_a is None else f"{c.limit_a:.1f}",
            f"{c.energy_needed_kwh:.1f}", f"{c.energy_planned_kwh:.1f}",
            "-" if c.expected_soc_at_departure is None else f"{c.expected_soc_at_departure:.0%}",
            "-" if c.expected_max_temp_c is None else f"{c.expected_max_temp_c:.1f}",
            f"{c.departure:%Y-%m-%d %H:%M}Z",
        )
    return table


def _plan_one(site: Site, data: Any, strategy: str, source: str) -> Plan:
    from optimizer.snapshot_io import snapshot_from_json
    from optimizer.strategies import get_strategy  # the LP and the solver: only when a plan is asked for

    snapshot = snapshot_from_json(data, site, source)
    return get_strategy(strategy).plan(site, snapshot)


@app.command()
def plan(
    site_file: Annotated[Path, typer.Argument(help="site YAML file")],
    snapshot: Annotated[Path | None, typer.Option("--snapshot", help="snapshot JSON file")] = None,
    stdin: Annotated[bool, typer.Option("--stdin", help="read one snapshot JSON per line, write one plan per line")] = False,
    strategy: Annotated[str | None, typer.Option("--strategy", help=f"one of {', '.join(STRATEGY_NAMES)}")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the plan as JSON (docs/json.md)")] = False,
) -> None:
    """Run one tick on a snapshot and print the plan."""
    from optimizer.snapshot_io import plan_to_json

    site = _load_or_exit(site_file)
    name = strategy or site.control.strategy
    if name not in STRATEGY_NAMES:
        err.print(f"--strategy: unknown strategy '{name}' (one of {', '.join(STRATEGY_NAMES)})")
        raise typer.Exit(2)
    if stdin:
        for number, line in enumerate(sys.stdin, start=1):
            if not line.strip():
                continue
            try:
                result: dict[str, Any] = plan_to_json(_plan_one(site, json.loads(line), name, f"stdin:{number}"))
            except json.JSONDecodeError as exc:
                result = {"error": f"stdin:{number}: not JSON: {exc}"}
            except DepotError as exc:
                result = {"error": str(exc)}
            sys.stdout.write(json.dumps(result) + "\n")
            sys.stdout.flush()
        return
    if snapshot is None:
        err.print("give --snapshot FILE or --stdin")
        raise typer.Exit(2)
    try:
        data = json.loads(snapshot.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        err.print(f"{snapshot}: cannot read: {exc}")
        raise typer.Exit(2) from None
    except json.JSONDecodeError as exc:
        err.print(f"{snapshot}:{exc.lineno}: not valid JSON: {exc.msg}")
        raise typer.Exit(2) from None
    try:
        result_plan = _plan_one(site, data, name, str(snapshot))
    except SnapshotError as exc:
        err.print(f"{exc}")
        raise typer.Exit(2) from None
    if as_json:
        sys.stdout.write(json.dumps(plan_to_json(result_plan), indent=2) + "\n")
    else:
        out.print(_plan_table(result_plan))
        if result_plan.binding:
            out.print("binding: " + ", ".join(result_plan.binding))
        if result_plan.reason:
            out.print(f"[yellow]reason[/yellow]: {result_plan.reason}")


def _register_optional(module: str) -> None:
    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        return
    loaded.register(app)


def configure_logging(environ: Mapping[str, str]) -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # Every OCPP frame is an INFO record of these loggers: thousands a minute on a real depot (and in `bench --live`),
    # burying the warnings an operator must see. DEPOTCTL_LOG_FRAMES=1 brings them back (redacted) for debugging.
    frames_level = logging.INFO if environ.get("DEPOTCTL_LOG_FRAMES", "") in ("1", "true", "yes") else logging.WARNING
    for name in FRAME_LOGGERS:
        logging.getLogger(name).setLevel(frames_level)
    # Alembic announces each of its plugins at INFO whenever a store opens; the migrations it runs stay visible.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def main() -> None:
    configure_logging(os.environ)
    _register_optional("csms_adapter.cli.run_command")
    _register_optional("csms_adapter.cli.security_cli")
    _register_optional("csms_adapter.cli.fleet_command")
    _register_optional("benchmarks.cli")
    app()


if __name__ == "__main__":
    main()
