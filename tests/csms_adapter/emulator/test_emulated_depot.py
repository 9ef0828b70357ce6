"""End-to-end with the emulated plant (csms_adapter.emulator): mixed 1.6J/2.0.1 chargers with vehicles, time
running 60× faster, real websockets, real solver. The measured site power of the plant must stay within the grid
limit after the first tick, and within the fail-safe shares when the controller is gone."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from live_site import make_site

from csms_adapter.control.controller import Controller
from csms_adapter.control.failsafe import worst_case_ev_budget_kw
from csms_adapter.emulator.credentials import simulated_site
from optimizer.domain import Site

pytestmark = pytest.mark.slow  # long end-to-end: `pytest -m "not slow"` for a quick round

emulator = pytest.importorskip("csms_adapter.emulator.fleet")
clock_mod = pytest.importorskip("csms_adapter.emulator.clock")

SPEED = 60.0


def grid_room_kw(site: Site) -> float:
    return site.grid.import_limit_kw - site.base_load.profile_kw[0]


async def test_mixed_depot_stays_under_the_grid_limit_and_falls_back_safely() -> None:
    site, env, passwords = simulated_site(make_site(), 2)
    clock = clock_mod.EmulatorClock(SPEED)
    controller = Controller(site, env=env, clock=clock.now, speed=SPEED, debounce_real_s=0.05)
    await controller.start()
    fleet = await emulator.start_fleet(site, controller.url, n=2, speed=SPEED, passwords=passwords, clock=clock,
                                       arrival_window_s=30.0)
    try:
        await fleet.wait_booted(timeout_s=10)
        assert {c.version for c in fleet.chargers} == {"1.6", "2.0.1"}
        async with asyncio.timeout(15):  # all three vehicles in session and planned for
            while (controller.last_tick is None or controller.last_tick.plan is None
                   or len(controller.last_tick.plan.connectors) < 3):
                await asyncio.sleep(0.05)
        first_plan_at = clock.now()
        peak_kw = 0.0
        while clock.now() < first_plan_at + timedelta(minutes=5):
            peak_kw = max(peak_kw, fleet.site_power_kw())
            await asyncio.sleep(0.05)
        assert 0.0 < peak_kw <= grid_room_kw(site) + 0.05
        assert sum(v.energy_kwh for v in fleet.connectors()) > 0.5  # vehicles actually charged
        received = {action for c in fleet.chargers for action in c.received_calls}
        assert {"SetChargingProfile", "GetCompositeSchedule"} <= received
        assert received & {"ChangeConfiguration", "SetVariables"}
    finally:
        await controller.stop()
    try:
        # The controller is gone: after the TxProfiles lapse (3 intervals) the plant runs on the fail-safe layers.
        await clock.sleep(site.ocpp.profile_ttl_intervals * site.control.interval_s + 30)
        budget = worst_case_ev_budget_kw(site)
        for _ in range(20):
            assert fleet.site_power_kw() <= budget + 0.05
            await asyncio.sleep(0.05)
        for charger in fleet.chargers:
            share = controller.shares[charger.identity].station_kw
            assert sum(v.power_kw for v in charger.view()) <= share + 0.05
    finally:
        await fleet.stop()
