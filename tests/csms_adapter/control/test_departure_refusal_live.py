"""End-to-end: a vehicle that leaves while its TxProfile is on the way gets that profile refused (its transaction is
over), and the refusal must not follow the connector: the next vehicle plugged in there is planned at its first tick
and its own TxProfile is accepted. Before this was fixed the refusal stuck to the connector, and the next vehicle
waited on the fail-safe layers for its whole visit (docs/benchmarks.md, "Live mode").

Emulated 1.6J/2.0.1 chargers over real websockets on 127.0.0.1, the real solver. The race is made certain, not left
to the host's timing: the controller's link to the charger unplugs the vehicle (and waits until the controller has
handled the end of its transaction) just before it sends the profile, which the emulated charger then refuses as
any charger would. The periodic tick is pushed out of the test; assertions are on the order of events, never on
wall-clock time."""

from __future__ import annotations

import random
from typing import Any

import pytest
from polling import eventually

from csms_adapter.control.control_loop import TickResult
from csms_adapter.control.controller import Controller
from csms_adapter.control.dispatch import Outcome
from csms_adapter.emulator.clock import EmulatorClock
from csms_adapter.emulator.credentials import simulated_site
from csms_adapter.emulator.fleet import make_ev, start_fleet
from csms_adapter.emulator.station import OcppVersion
from optimizer.site_loader import parse_site

SPEED = 60.0

# One two-connector charger with room for both vehicles: whoever is plugged in is planned a non-zero limit.
DEPOT_YAML = """
site:
  name: departure-refusal
  timezone: UTC
  voltage_v: 230
  grid: {import_limit_kw: 40}
  base_load: {kw: 2}
  circuits:
    - {id: main, max_current_a: 63, chargers: [cp-a]}
chargers:
  - {id: cp-a, connectors: 2, phases: 3, max_current_a: 32, max_power_kw: 22}
fleet:
  defaults: {battery_kwh: 60, target_soc: 0.9, dwell_h: 6, max_power_kw: 11}
control: {interval_s: 300, step_min: 15, horizon_h: 8, strategy: lp}
ocpp: {listen: "127.0.0.1:0", meter_interval_s: 10, call_timeout_s: 5}
"""


def tx_records(tick: TickResult, transaction_id: str) -> list[Outcome]:
    if tick.report is None:
        return []
    return [r.outcome for r in tick.report.records if r.transaction_id == transaction_id]


def shows_connector_1(tick: TickResult) -> bool:
    """The tick's snapshot has a session on cp-a/1, planned or budgeted as uncontrolled."""
    snapshot = tick.snapshot
    return (any((s.charger_id, s.connector_id) == ("cp-a", 1) for s in snapshot.sessions)
            or any((u.charger_id, u.connector_id) == ("cp-a", 1) for u in snapshot.uncontrolled))


def open_tx(controller: Controller) -> str | None:
    connector = controller.live.chargers["cp-a"].connectors.get(1)
    session = connector.session if connector is not None else None
    return session.transaction_id if session is not None else None


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_profile_refused_for_a_vehicle_that_left_does_not_keep_the_next_one_out_of_the_plan(
        version: OcppVersion, monkeypatch: pytest.MonkeyPatch) -> None:
    site, env, passwords = simulated_site(parse_site(DEPOT_YAML, "departure-refusal.yaml"), 1)
    clock = EmulatorClock(SPEED)
    controller = Controller(site, env=env, clock=clock.now, speed=SPEED, debounce_real_s=0.05)
    controller.loop.interval_real_s = 3600.0  # no periodic tick within the test: each tick has an event behind it
    ticks: list[TickResult] = []
    controller.tick_listeners.append(ticks.append)
    await controller.start()
    fleet = await start_fleet(site, controller.url, n=1, speed=SPEED, passwords=passwords, clock=clock,
                              versions=(version,), plug_in=False)
    rng = random.Random(5)
    try:
        await fleet.wait_booted(timeout_s=20)
        await eventually(lambda: controller.live.reachable("cp-a") and controller.live.charger("cp-a").failsafe_accepted,
                         timeout_s=20)
        station = fleet.charger("cp-a")
        await station.plug_in(1, make_ev(site.fleet_defaults, site.charger("cp-a"), "VAN-1", rng, 20.0))
        first = await eventually(lambda: open_tx(controller), timeout_s=20)
        await eventually(lambda: [t for t in ticks if Outcome.ACCEPTED in tx_records(t, first)], timeout_s=30)

        # The vehicle leaves while the next profile for it is on its way.
        link = controller.server.links["cp-a"]
        send = link.set_tx_limit
        left: list[str] = []

        async def leave_then_send(connector_id: int, *args: Any, **kwargs: Any) -> None:
            if connector_id == 1 and not left:
                left.append(first)
                await station.unplug(1)
                await eventually(lambda: open_tx(controller) is None, timeout_s=20)
            await send(connector_id, *args, **kwargs)

        monkeypatch.setattr(link, "set_tx_limit", leave_then_send)
        controller.live.charger("cp-a").connector(1).command = None  # so that this tick sends cp-a/1 a profile
        await eventually(lambda: not controller.loop._lock.locked(), timeout_s=30)
        refused = await controller.loop.tick(wait=True)
        assert refused is not None and left == [first]
        assert tx_records(refused, first) == [Outcome.REJECTED]  # the charger had no such transaction any more
        assert controller.live.chargers["cp-a"].connectors[1].rejected is None

        # The next vehicle on that connector is planned at the first tick that sees it.
        await station.plug_in(1, make_ev(site.fleet_defaults, site.charger("cp-a"), "VAN-2", rng, 20.0))
        second = await eventually(lambda: open_tx(controller), timeout_s=20)
        assert second != first
        seen = await eventually(lambda: [t for t in ticks if t.time >= refused.time and t is not refused
                                         and shows_connector_1(t)], timeout_s=30)
        first_seen = seen[0]
        assert [(s.charger_id, s.connector_id) for s in first_seen.snapshot.sessions] == [("cp-a", 1)]
        assert all(u.connector_id != 1 for u in first_seen.snapshot.uncontrolled)
        plan = first_seen.plan
        assert plan is not None and plan.for_connector("cp-a", 1) is not None
        assert tx_records(first_seen, second) == [Outcome.ACCEPTED]
    finally:
        await controller.stop()
        await fleet.stop()
