"""The live station-max profile (stack level 1) lets the LP give a charger more than its fail-safe share, and lapses
back to the share (stack level 0) when the controller dies. Emulated 1.6J/2.0.1 chargers, real websockets, real
solver, time 60× faster."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import pytest
from live_site import TWO_BIG_CHARGERS_YAML

from csms_adapter.control.controller import Controller
from csms_adapter.control.failsafe import worst_case_ev_budget_kw
from csms_adapter.emulator.clock import EmulatorClock
from csms_adapter.emulator.credentials import simulated_site
from csms_adapter.emulator.fleet import make_ev, start_fleet
from csms_adapter.emulator.station import OcppVersion
from csms_adapter.protocol.link import LIVE_STATION_MAX_PROFILE_ID, LIVE_STATION_MAX_STACK_LEVEL
from optimizer.site_loader import parse_site

SPEED = 60.0


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_charger_with_a_small_share_is_planned_and_draws_above_it(version: OcppVersion) -> None:
    site, env, passwords = simulated_site(parse_site(TWO_BIG_CHARGERS_YAML, "two-big-chargers.yaml"), 2)
    other: OcppVersion = "2.0.1" if version == "1.6" else "1.6"
    clock = EmulatorClock(SPEED)
    controller = Controller(site, env=env, clock=clock.now, speed=SPEED, debounce_real_s=0.05)
    await controller.start()
    fleet = await start_fleet(site, controller.url, n=2, speed=SPEED, passwords=passwords, clock=clock,
                              versions=(other, version), plug_in=False)
    cp_b = fleet.charger("cp-b")
    assert cp_b.version == version
    try:
        await fleet.wait_booted(timeout_s=10)
        # Once both chargers' units are read (A: a current per phase) and folded into the shares, they are the
        # site's 25 kW halved.
        async with asyncio.timeout(10):
            while not (controller.live.failsafe_kw.get("cp-b") == controller.shares["cp-b"].station_kw
                       and len(controller.units) == 2 and not controller.failsafe.folding):
                await asyncio.sleep(0.02)
        share_kw = controller.shares["cp-b"].station_kw
        assert share_kw == pytest.approx(12.5, abs=0.01)
        await cp_b.plug_in(1, make_ev(site.fleet_defaults, site.charger("cp-b"), "VAN", random.Random(1), 20.0))
        async with asyncio.timeout(15):  # planned above its share
            while (controller.last_tick is None or controller.last_tick.plan is None
                   or not controller.last_tick.plan.connectors
                   or controller.last_tick.plan.connectors[0].limit_kw < share_kw + 5):
                await asyncio.sleep(0.05)
        live = [p for p in cp_b.profiles.profiles if p.id == LIVE_STATION_MAX_PROFILE_ID]
        assert [(p.stack_level, p.valid_to is not None) for p in live] == [(LIVE_STATION_MAX_STACK_LEVEL, True)]
        drawn_kw = 0.0
        async with asyncio.timeout(15):  # ... and it draws it: the plant, not just the plan
            while drawn_kw < share_kw + 5:
                drawn_kw = sum(v.power_kw for v in cp_b.view())
                assert fleet.site_power_kw() <= worst_case_ev_budget_kw(site) + 0.05
                await asyncio.sleep(0.05)
        # The live profile is refreshed under the same id (2.0.1 rejects a second id at that level, K01.FR.06).
        await clock.sleep(3 * site.control.interval_s)
        assert sum(v.power_kw for v in cp_b.view()) > share_kw + 5
        assert [p.id for p in cp_b.profiles.profiles if p.stack_level == LIVE_STATION_MAX_STACK_LEVEL
                and p.purpose.value == "StationMax"] == [LIVE_STATION_MAX_PROFILE_ID]
        stations = controller.last_tick.report.station_records if controller.last_tick.report else ()
        assert all(r.outcome.value in ("accepted", "unchanged") for r in stations)
    finally:
        await controller.stop()
    try:
        # The controller is gone: once the live profiles lapse the charger is back at its stack-0 share.
        lapsed_at = clock.now() + timedelta(seconds=site.ocpp.profile_ttl_intervals * site.control.interval_s + 30)
        await clock.sleep((lapsed_at - clock.now()).total_seconds())
        for _ in range(10):
            assert sum(v.power_kw for v in cp_b.view()) <= share_kw + 0.05
            assert fleet.site_power_kw() <= worst_case_ev_budget_kw(site) + 0.05
            await asyncio.sleep(0.05)
    finally:
        await fleet.stop()
