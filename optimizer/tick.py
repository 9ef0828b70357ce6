"""One control tick, for the live depot and the simulated one alike: observe → plan → check → apply.

``ControlledSite`` is the site seen from the tick (the issue calls it the ``Site`` protocol; it is named apart
from ``optimizer.domain.Site``, the site file's model): ``observe(now)`` returns the ``Snapshot`` the planner
sees, ``apply(plan, snapshot, now)`` carries out the plan and returns what was accepted. The live controller
(``csms_adapter.control.live_site.LiveSite``: live state, plug-in budget, billing peak, dispatcher) and the
benchmark's simulated depot (``benchmarks.simulated_site.SimulatedSite``: the plant behind the same rounding,
deadband, live station maximum and plug-in rules) both implement it, and the scheduler and the benchmark
harness both call ``run_tick``. See docs/architecture.md, "The tick".

No I/O and no clock here: the site and the planner do their own, and are passed in. The functions are
``async`` because the live site's apply talks to chargers; the simulated site and an in-process planner never
wait, so the benchmark completes each tick with ``complete_now``, without an event loop (it may itself be called
from inside one, as the live-mode comparison does).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from optimizer.domain import Plan, Snapshot
from optimizer.errors import PlanViolation

AppliedT = TypeVar("AppliedT")
AppliedT_co = TypeVar("AppliedT_co", covariant=True)
ResultT = TypeVar("ResultT")

TickPlanner = Callable[[Snapshot], Awaitable[Plan]]
PlanCheck = Callable[[Snapshot, Plan], Sequence[object]]
# Runs a blocking call where it does not hold up the caller (the live controller: a worker thread, so that the
# check of a 1,000-session plan, about 0.1 s of CPU, does not stop the event loop handling charger messages).
Offload = Callable[[Callable[[], Sequence[object]]], Awaitable[Sequence[object]]]


class ControlledSite(Protocol[AppliedT_co]):
    """A depot the tick can observe and command."""

    async def observe(self, now: datetime) -> Snapshot:
        """What the controller knows at ``now``; may advance time-dependent bookkeeping (once per tick)."""
        ...

    async def apply(self, plan: Plan, snapshot: Snapshot, now: datetime) -> AppliedT_co:
        """Carry out ``plan`` (planned on ``snapshot``) and say what was accepted."""
        ...


@dataclass(frozen=True, slots=True)
class TickOutcome(Generic[AppliedT]):
    """One tick: what was seen, planned, found wrong with the plan and accepted. ``error`` is set when no plan
    was applied (the planner raised or timed out, or the plan broke a limit and the tick refuses such plans)."""

    time: datetime
    snapshot: Snapshot
    plan: Plan | None
    problems: tuple[str, ...]  # what the independent check found (empty: the plan respects every limit)
    applied: AppliedT | None
    plan_ms: float | None  # waiting for the plan
    tick_ms: float
    error: Exception | None = None
    observe_ms: float | None = None  # building the snapshot


async def run_tick(site: ControlledSite[AppliedT], planner: TickPlanner, now: datetime, *, check: PlanCheck,
                   apply_unsafe: bool = False, offload: Offload | None = None) -> TickOutcome[AppliedT]:
    """Observe ``site`` at ``now``, plan, check the plan independently and apply it.

    A plan that fails ``check`` is not applied (the live rule: nothing is sent, the live profiles lapse to the
    fail-safe), unless ``apply_unsafe`` (the benchmark measures what such a plan physically causes); ``offload``
    runs the check (default: right here, as the benchmark's tick that never suspends needs). An
    exception from the planner is returned in ``error``, never raised, so that no tick stops control;
    ``CancelledError`` and other ``BaseException``s pass through. Exceptions from ``site`` propagate."""
    started = time.perf_counter()
    snapshot = await site.observe(now)
    plan_started = time.perf_counter()
    observe_ms = (plan_started - started) * 1000.0
    try:
        plan = await planner(snapshot)
    except Exception as exc:
        ms = (time.perf_counter() - plan_started) * 1000.0
        return TickOutcome(now, snapshot, None, (), None, ms, (time.perf_counter() - started) * 1000.0, exc,
                           observe_ms)
    plan_ms = (time.perf_counter() - plan_started) * 1000.0
    found = await offload(lambda: check(snapshot, plan)) if offload is not None else check(snapshot, plan)
    problems = tuple(str(v) for v in found)
    if problems and not apply_unsafe:
        return TickOutcome(now, snapshot, plan, problems, None, plan_ms, (time.perf_counter() - started) * 1000.0,
                           PlanViolation(list(problems)), observe_ms)
    applied = await site.apply(plan, snapshot, now)
    return TickOutcome(now, snapshot, plan, problems, applied, plan_ms, (time.perf_counter() - started) * 1000.0,
                       None, observe_ms)


def complete_now(coroutine: Coroutine[Any, Any, ResultT]) -> ResultT:
    """The result of a coroutine that never suspends (a tick on the simulated site). Raises RuntimeError, and
    closes it, if it does suspend: that would need an event loop."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        result: ResultT = done.value
        return result
    coroutine.close()
    raise RuntimeError("a tick that should complete at once waited for something")
