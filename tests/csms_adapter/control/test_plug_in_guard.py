"""A vehicle that plugs in while the site is fully allocated must not push the site over its limit before the next
tick: every charger's live station max (stack level 1) only ever holds what the plan gave it plus a plug-in
allowance taken from capacity nobody was planned, and lowered limits are confirmed before raised ones are sent.
Emulated 1.6J/2.0.1 chargers, real websockets, real solver, time 60× faster."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import pytest
from live_site import TWO_BIG_CHARGERS_YAML, make_site
from test_dispatch import T0, FakeLink

from csms_adapter.control.control_loop import ControlLoop, TickResult
from csms_adapter.control.controller import Controller
from csms_adapter.control.dispatch import Dispatcher
from csms_adapter.control.failsafe import worst_case_ev_budget_kw
from csms_adapter.control.live_state import LiveState
from csms_adapter.control.plug_in_guard import RESERVE_REASON, with_plug_in_budget
from csms_adapter.emulator.clock import EmulatorClock
from csms_adapter.emulator.credentials import simulated_site
from csms_adapter.emulator.fleet import make_ev, start_fleet
from csms_adapter.emulator.station import OcppVersion
from csms_adapter.errors import ProfileRejected
from csms_adapter.protocol import events as ev
from csms_adapter.protocol.link import Capabilities
from optimizer.domain import Plan, PlanStatus, PlugInAllowance, PlugInSlot, RateUnit
from optimizer.site_loader import parse_site
from optimizer.strategies import plan

SPEED = 60.0


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_plug_in_on_a_fully_allocated_site_stays_under_the_limit(version: OcppVersion) -> None:
    site, env, passwords = simulated_site(parse_site(TWO_BIG_CHARGERS_YAML, "two-big-chargers.yaml"), 2)
    budget_kw = worst_case_ev_budget_kw(site)
    clock = EmulatorClock(SPEED)
    # A real debounce (1 s = 1 emulated minute): the window in which a plug-in runs on what the chargers hold.
    controller = Controller(site, env=env, clock=clock.now, speed=SPEED, debounce_real_s=1.0)
    await controller.start()
    fleet = await start_fleet(site, controller.url, n=2, speed=SPEED, passwords=passwords, clock=clock,
                              versions=("1.6", version), plug_in=False)
    cp_a, cp_b = fleet.charger("cp-a"), fleet.charger("cp-b")
    rng = random.Random(1)
    try:
        await fleet.wait_booted(timeout_s=10)
        await cp_a.plug_in(1, make_ev(site.fleet_defaults, site.charger("cp-a"), "VAN-A", rng, 20.0))
        async with asyncio.timeout(20):  # cp-a alone takes (almost) the whole site
            while sum(v.power_kw for v in cp_a.view()) < budget_kw - 4:
                await asyncio.sleep(0.05)
        await clock.sleep(2 * site.control.interval_s)  # a periodic tick after the raise: idle cp-b is told 0
        await cp_b.plug_in(1, make_ev(site.fleet_defaults, site.charger("cp-b"), "VAN-B", rng, 20.0))
        peak_kw = 0.0
        b_charged = False
        deadline = clock.now().timestamp() + 3 * site.control.interval_s
        while clock.now().timestamp() < deadline:
            peak_kw = max(peak_kw, fleet.site_power_kw())
            b_charged = b_charged or sum(v.power_kw for v in cp_b.view()) > 4.0
            await asyncio.sleep(0.01)
        assert peak_kw <= budget_kw + 0.05, f"site EV power reached {peak_kw:.2f} kW on {budget_kw:.2f} kW"
        assert b_charged, "the new vehicle was never given power"
    finally:
        await controller.stop()
        await fleet.stop()


def guarded_depot() -> tuple[LiveState, Dispatcher, dict[str, FakeLink]]:
    """live_site's depot (cp-a: 2 connectors, 16 A; cp-b: 22 kW): both connected, fail-safe taken, cp-a idle."""
    site = make_site()
    live = LiveState(site, {"cp-a": 10.0, "cp-b": 12.0})
    links = {cid: FakeLink(cid) for cid in ("cp-a", "cp-b")}
    for cid in links:
        live.apply(ev.ChargerConnected(cid, "1.6", T0))
        live.charger(cid).failsafe_accepted = True
    live.apply(ev.TransactionStarted("cp-b", 1, "9", None, 0.0, T0))
    amps = {cid: Capabilities(rate_units=frozenset({RateUnit.AMPS})) for cid in links}
    return live, Dispatcher(site, live, links, amps, default_kw={"cp-a": 5.0, "cp-b": 12.0}), links


def test_free_connectors_become_plug_in_slots_where_the_station_max_is_live() -> None:
    live, dispatcher, _ = guarded_depot()
    snap = with_plug_in_budget(live.snapshot(T0), live, dispatcher, T0)
    assert snap.plug_in == (PlugInSlot("cp-a", 10.0, 3),)  # two free connectors at their 5 kW default
    assert [u for u in snap.uncontrolled if u.reason == RESERVE_REASON] == []


async def test_a_charger_without_a_live_station_max_has_its_free_connectors_reserved() -> None:
    live, dispatcher, links = guarded_depot()
    links["cp-a"].station_fail = ProfileRejected("cp-a", "SetChargingProfile", "status Rejected")
    await dispatcher.dispatch(Plan(status=PlanStatus.OPTIMAL, strategy="t", time=T0, step_s=60, schedule_step_s=(60,),
                                   connectors=(), plug_in=(PlugInAllowance("cp-a", 3.0, 3),)), T0)
    assert not dispatcher.station_controlled("cp-a")
    snap = with_plug_in_budget(live.snapshot(T0), live, dispatcher, T0)
    assert snap.plug_in == ()
    # Its stack-0 share (10 kW) caps both free connectors' 5 kW defaults: 10 kW the plan must leave alone.
    assert [(u.charger_id, u.power_kw) for u in snap.uncontrolled if u.reason == RESERVE_REASON] == [("cp-a", 10.0)]


async def test_a_disconnected_charger_is_budgeted_at_the_live_cap_it_still_holds() -> None:
    live, dispatcher, _ = guarded_depot()
    plan = Plan(status=PlanStatus.OPTIMAL, strategy="t", time=T0, step_s=60, schedule_step_s=(60,), connectors=(),
                plug_in=(PlugInAllowance("cp-a", 11.0, 3),))
    await dispatcher.dispatch(plan, T0)
    live.apply(ev.ChargerDisconnected("cp-a", T0))
    snap = with_plug_in_budget(live.snapshot(T0), live, dispatcher, T0 + timedelta(seconds=30))
    held = sum(u.power_kw for u in snap.uncontrolled if u.charger_id == "cp-a")
    assert held == pytest.approx(11.0, abs=0.05)  # 10 kW share + the 1 kW of live cap above it
    lapsed = with_plug_in_budget(live.snapshot(T0), live, dispatcher, T0 + timedelta(seconds=dispatcher.valid_s + 1))
    assert sum(u.power_kw for u in lapsed.uncontrolled if u.charger_id == "cp-a") == pytest.approx(10.0)


async def test_a_refused_live_station_max_brings_the_next_tick_forward_with_the_connectors_reserved() -> None:
    live, dispatcher, links = guarded_depot()
    links["cp-a"].station_fail = ProfileRejected("cp-a", "SetChargingProfile", "status Rejected")
    ticks: list[TickResult] = []
    loop = ControlLoop(dispatcher.site, live, dispatcher, lambda: T0, planner=lambda site, snap: plan(site, snap, "lp"),
                       on_tick=ticks.append, debounce_real_s=0.05)
    try:
        first = await loop.tick()
        assert first is not None and first.plan is not None
        assert any(a.charger_id == "cp-a" and a.limit_kw > 0 for a in first.plan.plug_in)  # cp-a was given room
        async with asyncio.timeout(10):  # not one control interval later: right after the refusal
            while len(ticks) < 2:
                await asyncio.sleep(0.01)
        reserved = [u for u in ticks[1].snapshot.uncontrolled if u.reason == RESERVE_REASON]
        assert [(u.charger_id, u.power_kw) for u in reserved] == [("cp-a", 10.0)]
    finally:
        await loop.stop()
