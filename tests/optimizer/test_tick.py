"""The one tick (``optimizer.tick.run_tick``) against a small fake site, as the live and simulated sites use it."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from optimizer.domain import Plan, PlanStatus, Snapshot
from optimizer.errors import PlanViolation
from optimizer.tick import complete_now, run_tick

T0 = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)


@dataclass
class FakeSite:
    observed: list[datetime] = field(default_factory=list)
    applied: list[Plan] = field(default_factory=list)

    async def observe(self, now: datetime) -> Snapshot:
        self.observed.append(now)
        return Snapshot(time=now)

    async def apply(self, plan: Plan, snapshot: Snapshot, now: datetime) -> int:
        self.applied.append(plan)
        return len(self.applied)


async def planner(snapshot: Snapshot) -> Plan:
    return Plan(PlanStatus.OPTIMAL, "fake", snapshot.time, 900.0, (900.0,), ())


def no_problems(_snapshot: Snapshot, _plan: Plan) -> list[str]:
    return []


def over_the_limit(_snapshot: Snapshot, _plan: Plan) -> list[str]:
    return ["site_import_limit: 3.0 kW over"]


def test_a_good_plan_is_applied_and_its_answer_returned() -> None:
    site = FakeSite()
    outcome = complete_now(run_tick(site, planner, T0, check=no_problems))
    assert site.observed == [T0] and len(site.applied) == 1
    assert outcome.applied == 1 and outcome.error is None and outcome.problems == ()
    assert outcome.plan is not None and outcome.plan_ms is not None and outcome.tick_ms >= outcome.plan_ms


def test_a_plan_that_breaks_a_limit_is_refused_unless_the_caller_measures_it() -> None:
    site = FakeSite()
    refused = complete_now(run_tick(site, planner, T0, check=over_the_limit))
    assert site.applied == [] and refused.applied is None
    assert isinstance(refused.error, PlanViolation) and "site_import_limit" in str(refused.error)
    measured = complete_now(run_tick(site, planner, T0, check=over_the_limit, apply_unsafe=True))
    assert len(site.applied) == 1 and measured.error is None and measured.problems == ("site_import_limit: 3.0 kW over",)


def test_a_planner_that_raises_gives_an_error_not_an_exception() -> None:
    async def broken(_snapshot: Snapshot) -> Plan:
        raise ZeroDivisionError("solver bug")

    site = FakeSite()
    outcome = complete_now(run_tick(site, broken, T0, check=no_problems))
    assert isinstance(outcome.error, ZeroDivisionError) and outcome.plan is None and site.applied == []
    assert outcome.snapshot.time == T0  # what it saw is still there for the record


def test_complete_now_refuses_a_tick_that_waits() -> None:
    async def waits(snapshot: Snapshot) -> Plan:
        await asyncio.sleep(0)
        return await planner(snapshot)

    with pytest.raises(RuntimeError, match="waited"):
        complete_now(run_tick(FakeSite(), waits, T0, check=no_problems))


async def test_the_live_loop_runs_the_same_tick() -> None:
    outcome = await run_tick(FakeSite(), planner, T0, check=no_problems)
    assert outcome.applied == 1


async def test_an_offloaded_check_runs_away_from_the_caller_and_still_refuses_a_bad_plan() -> None:
    threads: list[str] = []

    def over_the_limit_recorded(snapshot: Snapshot, plan: Plan) -> list[str]:
        threads.append(threading.current_thread().name)
        return over_the_limit(snapshot, plan)

    site = FakeSite()
    outcome = await run_tick(site, planner, T0, check=over_the_limit_recorded, offload=asyncio.to_thread)
    assert threads and threads[0] != threading.current_thread().name  # a worker thread did the check
    assert site.applied == [] and isinstance(outcome.error, PlanViolation)
    assert outcome.observe_ms is not None and outcome.observe_ms <= outcome.tick_ms
