"""A running depot for the HTTP tests: the controller with its HTTP side on a free loopback port, emulated chargers
at accelerated time, a SQLite store in a temp dir, and the operator password set."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from live_site import make_site

from csms_adapter.control.controller import Controller
from csms_adapter.control.recorder import StoreRecorder
from csms_adapter.emulator.clock import EmulatorClock
from csms_adapter.emulator.credentials import simulated_site
from csms_adapter.emulator.fleet import Fleet, start_fleet
from csms_adapter.http_api import attach_http_api
from csms_adapter.http_api.auth import PASSWORD_ENV

OPERATOR_PASSWORD = "depot-operator-test-password"
AUTH = ("operator", OPERATOR_PASSWORD)


@dataclass
class Depot:
    controller: Controller
    fleet: Fleet | None
    clock: EmulatorClock
    base_url: str

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=10.0, **kwargs)


@contextlib.asynccontextmanager
async def running_depot(tmp_path: Path, *, chargers: int = 2, speed: float = 60.0, store: bool = True,
                        password: str | None = OPERATOR_PASSWORD) -> AsyncIterator[Depot]:
    site, env, passwords = simulated_site(make_site(), chargers)
    if password is not None:
        env[PASSWORD_ENV] = password
    clock = EmulatorClock(speed)
    recorder = StoreRecorder.open(f"sqlite:///{tmp_path / 'depot.db'}") if store else None
    controller = Controller(site, env=env, clock=clock.now, speed=speed, debounce_real_s=0.05, recorder=recorder)
    api = attach_http_api(controller, "127.0.0.1:0")
    await controller.start()
    fleet = None
    try:
        if chargers:
            fleet = await start_fleet(site, controller.url, n=chargers, speed=speed, passwords=passwords, clock=clock,
                                      arrival_window_s=30.0)
        yield Depot(controller, fleet, clock, f"http://127.0.0.1:{api.port}")
    finally:
        await controller.stop()
        if fleet is not None:
            await fleet.stop()
