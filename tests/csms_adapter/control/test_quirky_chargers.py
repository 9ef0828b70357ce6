"""Chargers that only take amps, only take watts, reject TxProfiles, or ignore their limit — each handled as
docs/operations.md says, over real websockets against the emulated plant (60× time)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from csms_adapter.control.controller import Controller
from csms_adapter.control.dispatch import Outcome
from csms_adapter.emulator.credentials import simulated_site
from optimizer.domain import RateUnit, UncontrolledLoad
from optimizer.site_loader import parse_site

emulator = pytest.importorskip("csms_adapter.emulator.fleet")
plant = pytest.importorskip("csms_adapter.emulator.plant")
clock_mod = pytest.importorskip("csms_adapter.emulator.clock")

SITE = """
site:
  name: quirky
  grid: {import_limit_kw: 30}
  base_load: {kw: 5}
  circuits:
    - id: main
      max_current_a: 100
      chargers: [q-amps, q-watts, q-reject]
      children: [{id: feeder, max_kw: 8, chargers: [q-ignore]}]  # its limit stays below what it draws
chargers:
  - {id: q-amps, max_current_a: 16}
  - {id: q-watts, max_current_a: 16}
  - {id: q-reject, max_current_a: 16}
  - {id: q-ignore, max_current_a: 16}
fleet:
  defaults: {battery_kwh: 60, target_soc: 0.9, dwell_h: 8, max_power_kw: 11}
control: {interval_s: 60, strategy: lp}
ocpp: {meter_interval_s: 10, listen: "127.0.0.1:0"}
"""


async def test_quirky_chargers_are_each_handled() -> None:
    site, env, passwords = simulated_site(parse_site(SITE, "quirky.yaml"), 4)
    quirks = {
        "q-amps": plant.Quirks.only_amps(),
        "q-watts": plant.Quirks.only_watts(),
        "q-reject": plant.Quirks(rejects_tx_profile=True),
        "q-ignore": plant.Quirks(ignores_limit=True, reports_soc=False),
    }
    clock = clock_mod.EmulatorClock(60.0)
    async with Controller(site, env=env, clock=clock.now, speed=60.0, debounce_real_s=0.05) as controller:
        fleet = await emulator.start_fleet(site, controller.url, n=4, speed=60.0, passwords=passwords, clock=clock,
                                           quirks=quirks, arrival_window_s=20.0)
        try:
            await fleet.wait_booted(timeout_s=10)
            units: dict[str, set[RateUnit]] = {}

            def budgeted_at_their_draw(uncontrolled: dict[str, UncontrolledLoad]) -> bool:
                # Budgeted at what they really draw: the tick's snapshot holds the last fresh meter value, and the
                # plant moves on between samples (a vehicle ramping up right after its plug-in; on a busy host the
                # tick's snapshot is older), so a later tick's is awaited rather than the first one taken as final.
                drawn = {(v.charger_id, v.connector_id): v.power_kw for v in fleet.connectors()}
                return (uncontrolled["q-ignore"].power_kw == pytest.approx(drawn[("q-ignore", 1)], rel=0.15)
                        and uncontrolled["q-reject"].power_kw == pytest.approx(drawn[("q-reject", 1)], rel=0.15,
                                                                                abs=0.3))

            async with asyncio.timeout(40):
                while True:
                    tick = controller.last_tick
                    if tick is not None and tick.report is not None:
                        for record in tick.report.records:
                            if record.outcome is Outcome.ACCEPTED:
                                units.setdefault(record.charger_id, set()).add(record.unit)
                    uncontrolled = {u.charger_id: u for u in tick.snapshot.uncontrolled} if tick else {}
                    if ({"q-reject", "q-ignore"} <= set(uncontrolled) and {"q-amps", "q-watts"} <= set(units)
                            and budgeted_at_their_draw(uncontrolled)):
                        break
                    await asyncio.sleep(0.05)
            assert units["q-amps"] == {RateUnit.AMPS}
            assert units["q-watts"] == {RateUnit.WATTS}
            assert "rejected" in uncontrolled["q-reject"].reason
            assert "more than its limit" in uncontrolled["q-ignore"].reason
            # Once both are budgeted, the steerable two get what is left: the site comes back under its limit.
            settle = clock.now() + timedelta(seconds=2 * site.control.interval_s)
            while clock.now() < settle:
                await asyncio.sleep(0.05)
            end = clock.now() + timedelta(minutes=3)
            while clock.now() < end:
                assert fleet.site_power_kw() <= site.grid.import_limit_kw - 5 + 0.3
                await asyncio.sleep(0.05)
        finally:
            await fleet.stop()
