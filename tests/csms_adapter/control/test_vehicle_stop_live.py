"""End-to-end: a vehicle that reaches its own target between ticks brings the next tick forward, and at that tick it
is planned at ~0 and the vehicle beside it gets its share. Emulated 1.6J/2.0.1 chargers over real websockets on
127.0.0.1, the real solver, time 60x faster. The periodic tick is pushed out of the test, so every tick comes
from an event; the assertions are on the order of ticks and on what each plan gives, never on wall-clock time."""

from __future__ import annotations

import dataclasses
import logging
import random
from datetime import datetime, timedelta

import pytest
from polling import eventually

from csms_adapter.control.control_loop import TickResult
from csms_adapter.control.controller import Controller
from csms_adapter.control.vehicle_stops import VehicleStop
from csms_adapter.emulator.clock import EmulatorClock
from csms_adapter.emulator.credentials import simulated_site
from csms_adapter.emulator.fleet import make_ev, start_fleet
from csms_adapter.emulator.station import OcppVersion
from optimizer.site_loader import parse_site

SPEED = 60.0

# 16 kW of EV room for an 11 kW and a 22 kW charger. van-a must leave in half an hour with most of its need
# unmet, so the plan gives it its charger's full 11 kW and the big-battery vehicle on cp-b the 5 kW left.
STOP_DEPOT_YAML = """
site:
  name: stop-depot
  timezone: UTC
  voltage_v: 230
  grid: {import_limit_kw: 21}
  base_load: {kw: 5}
  circuits:
    - {id: main, max_current_a: 63, chargers: [cp-a, cp-b]}
chargers:
  - {id: cp-a, phases: 3, max_current_a: 16}
  - {id: cp-b, phases: 3, max_current_a: 32, max_power_kw: 22}
fleet:
  defaults: {battery_kwh: 200, target_soc: 1.0, dwell_h: 10, max_power_kw: 22}
  vehicles:
    - {id: van-a, id_tags: ["VAN-A"], battery_kwh: 60, target_soc: 0.9, dwell_h: 0.5, max_power_kw: 11}
control: {interval_s: 300, step_min: 15, horizon_h: 4, strategy: lp}
ocpp: {listen: "127.0.0.1:0", meter_interval_s: 10, call_timeout_s: 2}
"""


def planned_kw(tick: TickResult, charger_id: str) -> float:
    assert tick.plan is not None, tick.error
    command = tick.plan.for_connector(charger_id, 1)
    return command.limit_kw if command is not None else 0.0


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_vehicle_that_stops_mid_interval_gives_its_share_at_a_tick_brought_forward(
        version: OcppVersion, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    site, env, passwords = simulated_site(parse_site(STOP_DEPOT_YAML, "stop-depot.yaml"), 2)
    clock = EmulatorClock(SPEED)
    controller = Controller(site, env=env, clock=clock.now, speed=SPEED, debounce_real_s=0.05)
    controller.loop.interval_real_s = 3600.0  # no periodic tick within the test: each tick has an event behind it
    ticks: list[TickResult] = []
    controller.tick_listeners.append(ticks.append)
    stops: list[tuple[datetime, VehicleStop]] = []
    seen = controller.stop_ticks.stopped

    def record_stop(stop: VehicleStop) -> None:
        stops.append((clock.now(), stop))
        seen(stop)

    monkeypatch.setattr(controller.stop_ticks, "stopped", record_stop)
    caplog.set_level(logging.INFO, logger="depotctl.control")
    await controller.start()
    fleet = await start_fleet(site, controller.url, n=2, speed=SPEED, passwords=passwords, clock=clock,
                              versions=(version, "1.6"), plug_in=False)
    rng = random.Random(3)
    try:
        await fleet.wait_booted(timeout_s=20)
        cp_a, cp_b = fleet.charger("cp-a"), fleet.charger("cp-b")
        big = make_ev(site.fleet_defaults, site.charger("cp-b"), "VAN-B", rng, 20.0)
        await cp_b.plug_in(1, dataclasses.replace(big, soc=0.3, reports_soc=False))
        # van-a's own charge limit is 1 % above its SoC: 2 kWh, about 11 emulated minutes at 11 kW.
        small = make_ev(site.fleet_defaults, site.charger("cp-a"), "VAN-A", rng, 20.0)
        await cp_a.plug_in(1, dataclasses.replace(small, soc=0.3, target_soc=0.31, reports_soc=False))
        # van-a is planned its charger's 11 kW and draws it
        planned = await eventually(lambda: [t for t in ticks if planned_kw(t, "cp-a") > 10.0], timeout_s=30)
        await eventually(lambda: cp_a.view()[0].power_kw > 10.0, timeout_s=30)
        drawing = planned[-1]
        b_before_kw = planned_kw(drawing, "cp-b")
        assert b_before_kw <= 16.0 - 10.0 + 1e-6  # the site is full: cp-b has what cp-a leaves

        await eventually(lambda: stops, timeout_s=60)  # van-a reaches its own target
        stopped_at, stop = stops[0]
        assert stop.where == "cp-a/1"
        after = await eventually(lambda: [t for t in ticks if t.time >= stopped_at], timeout_s=30)
        first_after = after[0]
        # The first tick after the stop plans it at ~0 and gives its share to cp-b, within the site's room.
        assert planned_kw(first_after, "cp-a") <= 0.1
        assert planned_kw(first_after, "cp-b") >= b_before_kw + 10.0 - 0.5
        assert planned_kw(first_after, "cp-b") <= 16.0 + 1e-6
        # That tick was brought forward for the stop (no periodic tick runs here), no sooner than the gap after the
        # tick before it.
        assert controller.stop_ticks.brought_forward >= 1
        assert any(r.getMessage() == "tick brought forward: vehicle stopped drawing at cp-a/1" for r in caplog.records)
        before = [t for t in ticks if t.time < first_after.time][-1]
        assert first_after.time - before.time >= timedelta(seconds=controller.stop_ticks.min_gap_s)
        # The physics follows: the vehicle on cp-b draws the capacity van-a left.
        await eventually(lambda: cp_b.view()[0].power_kw >= b_before_kw + 9.0, timeout_s=30)
        assert cp_a.view()[0].power_kw <= 0.1
    finally:
        await controller.stop()
        await fleet.stop()
