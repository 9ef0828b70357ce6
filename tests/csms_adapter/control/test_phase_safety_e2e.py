"""End to end, the worst case of issue #13: W-only chargers, 1-phase vehicles, a sub-circuit tighter than its
chargers. The controller runs as its own process over real websockets; an independent meter on the emulated plant
reads every circuit's per-phase current under control, then the controller is SIGKILLed and the chargers run on
their fail-safe profiles alone (past the last live profile's validity): nothing is ever over a limit."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from csms_adapter.emulator.circuit_meter import breaches, read_circuits
from csms_adapter.emulator.clock import EmulatorClock
from csms_adapter.emulator.fleet import start_fleet
from csms_adapter.emulator.plant import EVSpec, Quirks
from optimizer.battery import Battery
from optimizer.domain import Phase, ThermalModel
from optimizer.site_loader import parse_site

SPEED = 30.0  # emulated seconds per wall second
START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
PASSWORD = "phase-safety-e2e-password"

SITE_YAML = """
site:
  name: phase-e2e
  timezone: UTC
  voltage_v: 230
  grid: {import_limit_kw: 40}
  base_load: {kw: 0}
  circuits:
    - id: main
      max_current_a: 63
      chargers: [cp-3]
      children:
        - {id: sub, max_current_a: 40, chargers: [cp-1, cp-2]}
chargers:
  - {id: cp-1, phases: 3, max_current_a: 32, max_power_kw: 22, auth: {password_env: E2E_PW}}
  - {id: cp-2, phases: 3, max_current_a: 32, max_power_kw: 22, auth: {password_env: E2E_PW}}
  - {id: cp-3, phases: 3, max_current_a: 32, max_power_kw: 22, auth: {password_env: E2E_PW}}
fleet:
  defaults: {battery_kwh: 80, target_soc: 1.0, dwell_h: 10, max_power_kw: 22}
control: {interval_s: 30, step_min: 15, horizon_h: 6}
ocpp: {listen: "127.0.0.1:0", meter_interval_s: 10, call_timeout_s: 5}
"""

CONTROLLER = """
import asyncio, sys, time
from datetime import datetime, timedelta
from csms_adapter.control.controller import Controller
from optimizer.site_loader import load_site

site = load_site(sys.argv[1])
start, wall0, speed = datetime.fromisoformat(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])

def clock():
    return start + timedelta(seconds=(time.time() - wall0) * speed)

async def main():
    async with Controller(site, clock=clock, speed=speed, env={"E2E_PW": sys.argv[5]}, debounce_real_s=0.05) as c:
        print(c.port, flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""


def one_phase_ev(tag: str) -> EVSpec:
    battery = Battery(capacity_kwh=80.0, max_power_kw=22.0, knee_soc=1.0, thermal=ThermalModel.none(),
                      efficiency=1.0)
    return EVSpec(id_tag=tag, battery=battery, soc=0.2, phases=1)


async def watch(site_yaml_site: object, fleet: object, seconds_wall: float, seen: list[str],
                peak: dict[str, float]) -> None:
    """Read every circuit every 50 ms of wall time (1.5 emulated seconds) and keep every breach."""
    from optimizer.domain import Site

    assert isinstance(site_yaml_site, Site)
    chargers = fleet.chargers  # type: ignore[attr-defined]
    deadline = time.monotonic() + seconds_wall
    while time.monotonic() < deadline:
        seen.extend(str(b) for b in breaches(site_yaml_site, chargers, import_limit_kw=40.0))
        readings, site_kw = read_circuits(site_yaml_site, chargers)
        for r in readings:
            for phase, amps in r.current_a.items():
                key = f"{r.circuit_id} {phase}"
                peak[key] = max(peak.get(key, 0.0), amps)
        peak["site kW"] = max(peak.get("site kW", 0.0), site_kw)
        await asyncio.sleep(0.05)


@pytest.mark.timeout(90)
async def test_w_only_chargers_with_one_phase_vehicles_stay_under_every_limit_before_and_after_sigkill(
        tmp_path: Path) -> None:
    site_file = tmp_path / "site.yaml"
    site_file.write_text(SITE_YAML, encoding="utf-8")
    site = parse_site(SITE_YAML, str(site_file))
    wall0 = time.time()
    clock = EmulatorClock(SPEED, start=START)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[3]))
    proc = subprocess.Popen([sys.executable, "-c", CONTROLLER, str(site_file), START.isoformat(), repr(wall0),
                             repr(SPEED), PASSWORD], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    fleet = None
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout=30)
        assert line.strip(), proc.stderr.read().decode() if proc.stderr else ""
        port = int(line)
        fleet = await start_fleet(site, f"ws://127.0.0.1:{port}/ocpp/", speed=SPEED, plug_in=False, clock=clock,
                                  quirks={c.id: Quirks.only_watts() for c in site.chargers},
                                  passwords={c.id: PASSWORD for c in site.chargers}, versions=("1.6", "2.0.1"))
        await fleet.wait_booted(timeout_s=20)
        # Every charger got its fail-safe before any vehicle arrives.
        async with asyncio.timeout(20):
            while not all(c.profiles.limit_at(0, clock.now(), None, voltage_v=230.0, phases=1).station_a
                          for c in fleet.chargers):
                await asyncio.sleep(0.05)
        for charger in fleet.chargers:
            await charger.plug_in(1, one_phase_ev(f"EV-{charger.identity}"))
        seen: list[str] = []
        peak: dict[str, float] = {}
        # Under control: 10 emulated minutes (the LP plans, learns the phases, re-plans).
        await watch(site, fleet, 600 / SPEED, seen, peak)
        controlled_kw = peak["site kW"]
        assert controlled_kw > 5.0, peak  # the vehicles really charged under control
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # On the fail-safe alone: past the live profiles' validity (3 intervals = 90 s) and a minute more.
        await watch(site, fleet, 240 / SPEED, seen, peak)
        readings, site_kw = read_circuits(site, fleet.chargers)
        assert site_kw > 1.0, readings  # still charging, on the fail-safe layers
        assert sum(r.current_a[Phase.L1] for r in readings if r.circuit_id == "main") > 1.0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        if fleet is not None:
            await fleet.stop()
    assert seen == [], (seen[:10], peak)
