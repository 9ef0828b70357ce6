"""``depotctl run SITE.yaml [--simulate N] [--speed X] [--duration-s S] [--db PATH|URL] [--ocpp-compression deflate|none]``:
the live controller.

With ``--simulate N`` it also starts N emulated chargers (csms_adapter.emulator) over real websockets on
127.0.0.1, each with a vehicle arriving, and shows the live view. Emulated chargers get generated passwords
(the site's own secrets are neither needed nor printed). Ctrl-C stops cleanly. The work itself is in
csms_adapter.cli.live_run, imported only when the command runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from csms_adapter.cli.consoles import make_console
from csms_adapter.cli.site_warnings import password_warnings

if TYPE_CHECKING:
    from optimizer.domain import Site

err = make_console(stderr=True)


class Compression(StrEnum):
    DEFLATE = "deflate"
    NONE = "none"


def with_compression(site: Site, compression: Literal["deflate", "none"]) -> Site:
    """``site`` with ``ocpp.compression`` replaced (``--ocpp-compression`` overrides the site file)."""
    return dataclasses.replace(site, ocpp=dataclasses.replace(site.ocpp, compression=compression))


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        site_file: Annotated[Path, typer.Argument(help="site YAML file")],
        simulate: Annotated[int, typer.Option("--simulate", min=0, help="start N emulated chargers")] = 0,
        speed: Annotated[float, typer.Option("--speed", min=0.01, help="emulated time speed-up")] = 1.0,
        duration_s: Annotated[float | None, typer.Option("--duration-s", help="stop after S wall seconds")] = None,
        db: Annotated[str | None, typer.Option(
            "--db", help="SQLite file or database URL, e.g. postgresql+psycopg://USER@HOST:PORT/DB "
                         "(default: the site file's storage.url)")] = None,
        http: Annotated[bool, typer.Option("--http/--no-http", help="serve the dashboard and API on http.listen")
                        ] = True,
        fault: Annotated[list[str] | None, typer.Option(
            "--fault", metavar="SPEC",
            help="with --simulate: inject a fault into an emulated charger, e.g. fault:cp-01:1@600+1800,code=GroundFailure "
                 "(kinds: fault, unavailable, offline, meter_glitch, ignore_limit; emulated seconds; docs/alerts.md)")
        ] = None,
        ocpp_compression: Annotated[Compression | None, typer.Option(
            "--ocpp-compression",
            help="permessage-deflate for charger websockets (default: the site file's ocpp.compression, deflate); "
                 "none saves controller CPU on a LAN depot (docs/benchmarks.md, \"Per-message compression\")")
        ] = None,
    ) -> None:
        """Run the site controller (OCPP server, control loop, fail-safe profiles)."""
        from csms_adapter.cli.live_run import parse_faults, quiet_logs, run_live
        from optimizer.errors import ConfigError, DepotError
        from optimizer.site_loader import load_site

        console = make_console()
        quiet_logs(console)
        try:
            site = load_site(site_file)
        except ConfigError as exc:
            for problem in exc.problems:
                err.print(f"error {problem}", highlight=False, markup=False)
            raise typer.Exit(2) from None
        if ocpp_compression is not None:
            site = with_compression(site, "none" if ocpp_compression is Compression.NONE else "deflate")
        if not simulate:  # emulated chargers get generated passwords; real ones need the site's
            for warning in password_warnings(site, os.environ):
                err.print(f"warning: {warning}", highlight=False, markup=False, soft_wrap=True)
        if http:
            from csms_adapter.http_api.auth import OperatorAuth

            try:
                OperatorAuth.from_env(os.environ)
            except ValueError as exc:
                err.print(f"error: {exc}", highlight=False, markup=False)
                raise typer.Exit(2) from None
        if speed != 1.0 and not simulate:
            raise typer.BadParameter("--speed only makes sense with --simulate", param_hint="--speed")
        faults = parse_faults(fault or [], site, simulate)
        try:
            asyncio.run(run_live(site, simulate=simulate, speed=speed, duration_s=duration_s, db=db,
                                 console=console, http=http, faults=faults))
        except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C, or SIGTERM (run_live cancels itself)
            err.print("stopped")
        except (DepotError, OSError) as exc:
            err.print(f"error: {exc}", highlight=False, markup=False)
            raise typer.Exit(1) from None
