"""The live tick resolves what its independent plan check needs from the snapshot while the solver works, and the
check still refuses a plan that breaks a limit: nothing of such a plan reaches a charger."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime

import pytest
from live_site import make_site

from csms_adapter.control import control_loop
from csms_adapter.control.control_loop import ControlLoop
from csms_adapter.control.dispatch import Dispatcher
from csms_adapter.control.live_state import LiveState
from csms_adapter.protocol import events as ev
from csms_adapter.protocol.link import Capabilities, SamplingResult
from optimizer.domain import Plan, RateUnit, Site, Snapshot
from optimizer.plan_check import CheckBasis
from optimizer.strategies import plan as lp_plan

T0 = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)
WAIT_S = 10.0


class CountingLink:
    """A charger link that accepts every profile and counts the calls."""

    def __init__(self) -> None:
        self.calls = 0

    @property
    def connected(self) -> bool:
        return True

    async def set_tx_limit(self, connector_id: int, limit: float, unit: RateUnit, phases: int, valid_s: float,
                           transaction_id: str, now: datetime) -> None:
        self.calls += 1

    async def set_live_station_max(self, limit: float, unit: RateUnit, phases: int, valid_s: float,
                                   now: datetime) -> None:
        self.calls += 1

    async def configure_sampling(self, measurands: tuple[str, ...], interval_s: int) -> SamplingResult:
        return SamplingResult(measurands, interval_s)


def depot() -> tuple[Site, LiveState, Dispatcher, dict[str, CountingLink]]:
    site = make_site()
    live = LiveState(site, {})
    links = {"cp-a": CountingLink(), "cp-b": CountingLink()}
    for charger_id, connector, tx in (("cp-a", 1, "1"), ("cp-a", 2, "2"), ("cp-b", 1, "3")):
        live.apply(ev.ChargerConnected(charger_id, "1.6", T0))
        live.charger(charger_id).set_up = True
        live.apply(ev.TransactionStarted(charger_id, connector, tx, None, 0.0, T0))
    dispatcher = Dispatcher(site, live, links, {cid: Capabilities() for cid in links})  # type: ignore[arg-type]
    return site, live, dispatcher, links


def overdrawn(plan: Plan) -> Plan:
    """Every connector at four times its planned power: over the 30 kW grid and the 40 A circuit."""
    connectors = tuple(dataclasses.replace(c, limit_kw=c.limit_kw * 4, limit_a=None,
                                           schedule_kw=tuple(kw * 4 for kw in c.schedule_kw))
                       for c in plan.connectors)
    return dataclasses.replace(plan, connectors=connectors)


@pytest.mark.parametrize("break_plan", [False, True])
async def test_the_check_is_prepared_while_the_solver_works_and_still_refuses_a_bad_plan(
        monkeypatch: pytest.MonkeyPatch, break_plan: bool) -> None:
    site, live, dispatcher, links = depot()
    prepared = threading.Event()
    bases: list[CheckBasis] = []
    real_prepare = control_loop.prepare_check

    def watched_prepare(site: Site, snapshot: Snapshot) -> CheckBasis:
        basis = real_prepare(site, snapshot)
        bases.append(basis)
        prepared.set()
        return basis

    def planner(site: Site, snapshot: Snapshot) -> Plan:
        # The solver's answer waits until the check's basis exists: they ran side by side.
        assert prepared.wait(WAIT_S), "the check was not prepared while the solver worked"
        plan = lp_plan(site, snapshot, "lp")
        return overdrawn(plan) if break_plan else plan

    monkeypatch.setattr(control_loop, "prepare_check", watched_prepare)
    loop = ControlLoop(site, live, dispatcher, lambda: T0, planner=planner)
    result = await loop.tick()
    assert result is not None
    assert len(bases) == 1 and bases[0].snapshot is result.snapshot
    assert len(result.snapshot.sessions) == 3
    if break_plan:
        assert result.report is None and result.error is not None
        assert "site_import_limit" in result.error and "circuit_phase_limit[main," in result.error
        assert sum(link.calls for link in links.values()) == 0
    else:
        assert result.error is None and result.report is not None
        assert sum(link.calls for link in links.values()) == 5  # three TxProfiles, two live station maxima


async def test_a_snapshot_the_check_cannot_resolve_leaves_the_check_to_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """A preparation that fails is not the check's verdict: the check runs on its own and nothing is sent."""
    site, live, dispatcher, links = depot()

    def failing_prepare(site: Site, snapshot: Snapshot) -> CheckBasis:
        raise ValueError("garbage in the snapshot")

    checked: list[Snapshot] = []
    real_check = control_loop.check_plan

    def watched_check(site: Site, snapshot: Snapshot, plan: Plan, *, basis: CheckBasis | None = None) -> list[object]:
        assert basis is None
        checked.append(snapshot)
        return list(real_check(site, snapshot, overdrawn(plan)))

    monkeypatch.setattr(control_loop, "prepare_check", failing_prepare)
    monkeypatch.setattr(control_loop, "check_plan", watched_check)
    loop = ControlLoop(site, live, dispatcher, lambda: T0, planner=lambda s, snap: lp_plan(s, snap, "lp"))
    result = await loop.tick()
    assert result is not None and len(checked) == 1
    assert result.report is None and result.error is not None and "site_import_limit" in result.error
    assert sum(link.calls for link in links.values()) == 0
