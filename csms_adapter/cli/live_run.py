"""What ``depotctl run`` does once its arguments are checked: open the store, start the controller, its HTTP API,
webhooks and (with ``--simulate``) the emulated chargers, and show the live view until stopped.

Kept apart from the command's definition (csms_adapter.cli.run_command) so that ``depotctl --help`` and every
other command start without importing the controller, the store and the web stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.live import Live
from rich.logging import RichHandler

from csms_adapter.cli.live_view import render
from csms_adapter.control.alert_hooks import attach_webhooks
from csms_adapter.control.controller import Controller
from csms_adapter.control.recorder import StoreRecorder
from csms_adapter.control.site_report import attach_site_report
from csms_adapter.control.startup_heap import freeze_startup_heap
from csms_adapter.emulator.credentials import simulated_site
from csms_adapter.http_api import attach_http_api
from csms_adapter.protocol.log_redaction import FRAME_LOGGERS
from csms_adapter.store.retention import RetentionPolicy
from optimizer.domain import Site

log = logging.getLogger("depotctl.run")


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


def parse_faults(specs: list[str], site: Site, simulate: int) -> list[Any]:
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
