"""Live control per phase, both OCPP versions, chargers that take only A or only W, vehicles on 1, 2 or 3 phases:
an independent meter on the emulated plant reads every circuit's per-phase current while the controller plans,
learns the phases each vehicle draws on from per-phase Current.Import, and plans again. (What learning frees is
shown on the LP in tests/optimizer/test_circuits.py.)"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from csms_adapter.control.controller import Controller
from csms_adapter.emulator.circuit_meter import breaches, read_circuits
from csms_adapter.emulator.clock import EmulatorClock
from csms_adapter.emulator.fleet import start_fleet
from csms_adapter.emulator.plant import EVSpec, Quirks
from optimizer.battery import Battery
from optimizer.domain import ThermalModel
from optimizer.site_loader import parse_site

SPEED = 60.0
PASSWORD = "phase-learning-password"
SITE_YAML = """
site:
  name: phase-learning
  timezone: UTC
  voltage_v: 230
  grid: {import_limit_kw: 100}
  base_load: {kw: 0}
  circuits:
    - id: main
      max_current_a: 100
      children:
        - {id: sub, max_current_a: 40, chargers: [cp-1, cp-2]}
chargers:
  - {id: cp-1, phases: 3, max_current_a: 32, max_power_kw: 22, auth: {password_env: PL_PW}}
  - {id: cp-2, phases: 3, phase_rotation: L2L3L1, max_current_a: 32, max_power_kw: 22, auth: {password_env: PL_PW}}
fleet:
  defaults: {battery_kwh: 80, target_soc: 1.0, dwell_h: 10, max_power_kw: 4.6}
control: {interval_s: 30, step_min: 15, horizon_h: 6}
ocpp: {listen: "127.0.0.1:0", meter_interval_s: 10, call_timeout_s: 5}
"""


def ev_on(phases: int, tag: str) -> EVSpec:
    battery = Battery(capacity_kwh=80.0, max_power_kw=22.0, knee_soc=1.0, thermal=ThermalModel.none(),
                      efficiency=1.0)
    return EVSpec(id_tag=tag, battery=battery, soc=0.2, phases=phases)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
@pytest.mark.parametrize("unit", ["A", "W"])
@pytest.mark.parametrize("vehicle_phases", [1, 2, 3])
async def test_vehicles_phases_are_learned_and_every_phase_holds(version: str, unit: str,
                                                                 vehicle_phases: int) -> None:
    site = parse_site(SITE_YAML, "phase-learning.yaml")
    clock = EmulatorClock(SPEED, start=datetime(2026, 3, 2, 1, 0, tzinfo=UTC))
    quirks = Quirks.only_amps() if unit == "A" else Quirks.only_watts()
    async with Controller(site, clock=clock.now, speed=SPEED, env={"PL_PW": PASSWORD},
                          debounce_real_s=0.05) as controller:
        fleet = await start_fleet(site, controller.url, speed=SPEED, plug_in=False, clock=clock,
                                  quirks={c.id: quirks for c in site.chargers},
                                  passwords={c.id: PASSWORD for c in site.chargers}, versions=(version,))
        try:
            await fleet.wait_booted(timeout_s=20)
            # The vehicles arrive once the chargers hold their fail-safe (before it, a charger is at its own max).
            async with asyncio.timeout(20):
                while not all(controller.live.charger(c.id).failsafe_accepted for c in site.chargers):
                    await asyncio.sleep(0.02)
            for charger in fleet.chargers:
                await charger.plug_in(1, ev_on(vehicle_phases, f"EV-{charger.identity}"))
            seen: list[str] = []
            learned: dict[str, tuple[str, ...] | None] = {}
            deadline = time.monotonic() + 300 / SPEED  # 5 emulated minutes
            while time.monotonic() < deadline:
                seen += [str(b) for b in breaches(site, fleet.chargers, import_limit_kw=100.0)]
                tick = controller.last_tick
                if tick is not None:
                    learned = {s.charger_id: s.site_phases for s in tick.snapshot.sessions}
                await asyncio.sleep(0.05)
            readings, site_kw = read_circuits(site, fleet.chargers)
        finally:
            await fleet.stop()
    assert seen == [], seen[:5]
    wired = {c.id: c.phase_rotation for c in site.chargers}
    assert learned == {cid: tuple(str(p) for p in wired[cid][:vehicle_phases]) for cid in wired}
    # Both vehicles charge (the roster lets each take 4.6 kW: 20 A on one phase, so two fit 40 A even unknown).
    assert site_kw > 8.0, readings
