"""``depotctl run SITE.yaml [--simulate N] [--speed X] [--duration-s S] [--db PATH|URL] [--ocpp-compression deflate|none]``:
the live controller.

With ``--simulate N`` it also starts N emulated chargers (csms_adapter.emulator) over real websockets on
127.0.0.1, each with a vehicle arriving, and shows the live view. Emulated chargers get generated passwords
(the site's own secrets are neither needed nor printed). Ctrl-C stops cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
import signal
from collections.abc import AsyncIterator, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.live import Live
from rich.logging import RichHandler

from csms_adapter.cli.consoles import make_console
from csms_adapter.cli.live_view import render
from csms_adapter.cli.site_warnings import password_warnings
from csms_adapter.control.controller import Controller
from csms_adapter.control.recorder import StoreRecorder
from csms_adapter.control.site_report import attach_site_report
from csms_adapter.control.startup_heap import freeze_startup_heap
from csms_adapter.emulator.credentials import simulated_site
from csms_adapter.http_api import attach_http_api
from csms_adapter.monitoring.webhooks import attach_webhooks
from csms_adapter.protocol.log_redaction import FRAME_LOGGERS
from csms_adapter.store.retention import RetentionPolicy
from optimizer.domain import Site
from optimizer.errors import ConfigError, DepotError
from optimizer.site_loader import load_site

log = logging.getLogger("depotctl.run")
err = make_console(stderr=True)


class Compression(StrEnum):
    DEFLATE = "deflate"
    NONE = "none"


def with_compression(site: Site, compression: Literal["deflate", "none"]) -> Site:
    """``site`` with ``ocpp.compression`` replaced (``--ocpp-compression`` overrides the site file)."""
    return dataclasses.replace(site, ocpp=dataclasses.replace(site.ocpp, compression=compression))


def storage_url(site: Site, db: str | Path | None) -> str:
    """``--db`` as given (a SQLAlchemy URL such as postgresql+psycopg://…, or a SQLite file path), else the site
    file's storage.url."""
    if db is None:
        return site.storage.url
    text = str(db)
    return text if "://" in text else f"sqlite:///{text}"


def open_recorder(site: Site, db: str | Path | None) -> StoreRecorder:
    """The store for ``--db`` (or the site's storage.url), scoped to this site. Raises StoreError when it cannot
    be opened."""
    return StoreRecorder.open(storage_url(site, db), site=site.name,
                              retention=RetentionPolicy(site.storage.raw_days, site.storage.aggregate_days))


# How long the demo waits for its emulated chargers to be set up before vehicles start to arrive anyway.
DEMO_SETUP_WAIT_S = 30.0


async def start_demo_fleet(controller: Controller, site: Site, n: int, speed: float, passwords: dict[str, str],
                           clock: Any, faults: Sequence[Any] = ()) -> Any:
    """The emulated chargers of ``--simulate``, vehicles arriving over two emulated minutes once the chargers hold
    their fail-safe profiles. Brand-new emulated chargers hold no profile at all, and a vehicle plugged into one
    before the controller set it up draws the charger's maximum: at a real depot the profiles set up on earlier
    days are still in the chargers (they survive reboots), so that is not what the demo should show."""
    from csms_adapter.emulator.fleet import start_fleet

    fleet = await start_fleet(site, controller.url, n=n, speed=speed, passwords=passwords, clock=clock,
                              arrival_window_s=120.0, arrive_now=False, faults=faults)
    simulated = [c.id for c in site.chargers[:n]]
    try:
        async with asyncio.timeout(DEMO_SETUP_WAIT_S):
            while not all(controller.live.reachable(cid) and controller.live.charger(cid).failsafe_accepted
                          for cid in simulated):
                await asyncio.sleep(0.05)
    except TimeoutError:
        log.warning("emulated chargers not all set up after %.0f s; vehicles arrive anyway", DEMO_SETUP_WAIT_S)
    except BaseException:
        await fleet.stop()
        raise
    fleet.schedule_arrivals()
    return fleet


@contextlib.asynccontextmanager
async def _fleet(controller: Controller, site: Site, n: int, speed: float, passwords: dict[str, str], clock: Any,
                 faults: Sequence[Any] = ()) -> AsyncIterator[Any]:
    fleet = await start_demo_fleet(controller, site, n, speed, passwords, clock, faults)
    try:
        yield fleet
    finally:
        await fleet.stop()


async def run_live(site: Site, *, simulate: int, speed: float, duration_s: float | None, db: str | Path | None,
                   console: Console, http: bool = True, faults: Sequence[Any] = ()) -> None:
    from csms_adapter.http_api.auth import PASSWORD_ENV, PASSWORD_SHA256_ENV

    env: dict[str, str] = dict(os.environ)
    passwords: dict[str, str] = {}
    clock: Any = None
    operator_password: str | None = None
    if simulate:
        from csms_adapter.emulator.clock import EmulatorClock

        try:
            site, sim_env, passwords = simulated_site(site, simulate)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        env.update(sim_env)
        clock = EmulatorClock(speed)
        if not env.get(PASSWORD_ENV) and not env.get(PASSWORD_SHA256_ENV):
            # A demo should be able to try the write API; a real site sets its own password.
            operator_password = env[PASSWORD_ENV] = secrets.token_urlsafe(12)
    # systemd and container runtimes stop a service with SIGTERM: stop as cleanly as on Ctrl-C (the running tick
    # finishes, the store is flushed, the solver process exits; the live profiles lapse to the fail-safe).
    main = asyncio.current_task()
    if main is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    recorder = open_recorder(site, db)
    controller_clock = clock.now if clock is not None else None
    kwargs: dict[str, Any] = {"clock": controller_clock} if controller_clock is not None else {}
    controller = Controller(site, env=env, recorder=recorder, speed=speed, **kwargs)
    attach_webhooks(controller)
    api = attach_http_api(controller, site.http.listen) if http else None
    attach_site_report(controller, recorder.store)
    freeze_startup_heap()  # before any charger connects: the collector stops walking what start-up built
    async with controller:
        console.print(f"OCPP endpoint: [bold]{controller.url}<charger-id>[/bold]  (Basic auth, user = charger id)")
        if api is not None:
            console.print(f"Dashboard:     [bold]{api.url}[/bold]  (API: {api.url}openapi.json)")
            if operator_password is not None:
                console.print(f"Operator login for writes (this run only): operator / {operator_password}",
                              highlight=False, markup=False)
            elif not api.ctx.auth.writes_enabled:
                console.print(f"Writes are off: set {PASSWORD_ENV} or {PASSWORD_SHA256_ENV} to enable them.")
        async with contextlib.AsyncExitStack() as stack:
            fleet = None
            if simulate:
                fleet = await stack.enter_async_context(
                    _fleet(controller, site, simulate, speed, passwords, clock, faults))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + duration_s if duration_s is not None else None
            with Live(console=console, refresh_per_second=4, transient=False) as live:
                while deadline is None or loop.time() < deadline:
                    now = controller.clock()
                    if fleet is not None:
                        views = fleet.connectors()
                        power = {(v.charger_id, v.connector_id): v.power_kw for v in views}
                        soc = {(v.charger_id, v.connector_id): v.soc for v in views if v.soc is not None}
                        live.update(render(controller, now, power, soc))
                    else:
                        live.update(render(controller, now))
                    await asyncio.sleep(0.5)


def _parse_faults(specs: list[str], site: Site, simulate: int) -> list[Any]:
    if not specs:
        return []
    if not simulate:
        raise typer.BadParameter("faults are injected into emulated chargers: add --simulate N", param_hint="--fault")
    from csms_adapter.emulator.faults import parse_fault
    from csms_adapter.emulator.fleet import check_faults

    try:
        faults = [parse_fault(spec) for spec in specs]
        check_faults(faults, site.chargers[:simulate])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--fault") from None
    return faults


def quiet_logs(console: Console) -> None:
    """Warnings only, printed through the live view's console so they scroll above it instead of tearing it.
    The OCPP frame loggers stay quiet in any case: frames may carry secrets (docs/security.md, "What is logged")."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(RichHandler(console=console, show_path=False, rich_tracebacks=False))
    root.setLevel(logging.WARNING)
    for name in FRAME_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


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
        faults = _parse_faults(fault or [], site, simulate)
        try:
            asyncio.run(run_live(site, simulate=simulate, speed=speed, duration_s=duration_s, db=db,
                                 console=console, http=http, faults=faults))
        except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C, or SIGTERM (run_live cancels itself)
            err.print("stopped")
        except (DepotError, OSError) as exc:
            err.print(f"error: {exc}", highlight=False, markup=False)
            raise typer.Exit(1) from None
