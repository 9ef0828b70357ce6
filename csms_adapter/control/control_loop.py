"""One control tick, and the scheduler that runs it.

``ControlLoop.tick`` runs ``optimizer.tick.run_tick`` — the tick the benchmark harness runs too — on the live
site (``csms_adapter.control.live_site``): observe (snapshot) → plan off the event loop (in the solver process,
``csms_adapter.control.solver_runner``) → check the plan independently, in a worker thread (refuse to dispatch a
plan that breaks a limit; what the check needs from the snapshot alone is resolved in that thread while the solver
works) → dispatch all profiles concurrently, each with a timeout → persist (``on_tick``). APScheduler runs it every
``control.interval_s`` (one at a time, late runs coalesced); ``request_tick`` brings it forward after a plug-in or
unplug, debounced so a burst of status messages gives one tick (and, rate-limited, after a vehicle stops drawing:
``csms_adapter.control.stop_ticks``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from csms_adapter.control.billing_peak import BillingPeak
from csms_adapter.control.command_hold import CommandHold
from csms_adapter.control.dispatch import Dispatcher, DispatchReport, Outcome
from csms_adapter.control.live_site import LiveSite
from csms_adapter.control.live_state import LiveState
from csms_adapter.control.solver_runner import Planner, PlanRunner, ProcessRunner, ThreadRunner, default_planner
from csms_adapter.control.thermal_learning import ThermalLearning
from csms_adapter.tasks import cancel_and_wait
from optimizer.domain import Plan, Site, Snapshot
from optimizer.errors import DepotError
from optimizer.plan_check import CheckBasis, check_plan, prepare_check
from optimizer.thermal_calibration import VehicleFit
from optimizer.tick import run_tick

log = logging.getLogger("depotctl.control")

Clock = Callable[[], datetime]
__all__ = ["Clock", "ControlLoop", "Planner", "TickResult", "default_planner"]


@dataclass(frozen=True, slots=True)
class TickResult:
    time: datetime
    snapshot: Snapshot
    plan: Plan | None
    report: DispatchReport | None
    tick_ms: float
    error: str | None = None
    solve_ms: float | None = None  # waiting for the plan, hand-over to and from the solver process included
    thermal_fits: tuple[VehicleFit, ...] = ()  # fits that learnt something this tick (for the store)
    snapshot_ms: float | None = None  # building the snapshot, on the event loop


def _retrieve(future: asyncio.Future[CheckBasis]) -> None:
    # A preparation left behind by a failed solve must not log "exception never retrieved".
    if not future.cancelled():
        future.exception()


async def _prepared(preparing: asyncio.Future[CheckBasis]) -> CheckBasis | None:
    """The check's basis, or None when preparing it failed: the check then resolves the snapshot itself and
    reports what is wrong with it, as it did before the preparation moved ahead."""
    try:
        return await preparing
    except Exception:
        return None


class ControlLoop:
    def __init__(
        self,
        site: Site,
        live: LiveState,
        dispatcher: Dispatcher,
        clock: Clock,
        *,
        planner: Planner | PlanRunner | None = None,
        on_tick: Callable[[TickResult], None] | None = None,
        interval_real_s: float | None = None,
        debounce_real_s: float = 2.0,
    ) -> None:
        """``interval_real_s`` is the wall-clock period (``control.interval_s`` unless time runs faster).
        ``planner``: None runs the site's strategy in the solver process; a ``PlanRunner`` is used as it is; any
        other callable (a test double, often not picklable) runs in a worker thread."""
        self.site = site
        self.live = live
        self.dispatcher = dispatcher
        self.clock = clock
        self._fallback: Planner | None = None
        self.runner: PlanRunner
        if planner is None:
            # Made here too, so that a strategy that cannot be made fails now, as it did before it moved out.
            self._fallback = default_planner(site)
            self.runner = ProcessRunner(site)
        elif isinstance(planner, PlanRunner):
            self.runner = planner
        else:
            self.runner = ThreadRunner(site, planner)
        self.on_tick = on_tick
        self.interval_real_s = interval_real_s if interval_real_s is not None else site.control.interval_s
        self.debounce_real_s = debounce_real_s
        self._lock = asyncio.Lock()
        self._scheduler: AsyncIOScheduler | None = None
        self._debounce: asyncio.TimerHandle | None = None
        self._pending: asyncio.Task[None] | None = None
        self._ticking: set[asyncio.Task[object]] = set()  # tasks inside ``tick`` (the scheduler's included)
        self._rerun = False
        self._stopped = False
        self.last: TickResult | None = None
        self.last_started: datetime | None = None  # when the running or last tick took its time (self.clock)
        self.ticks = 0
        self.billing_peak = BillingPeak(site) if site.tariff.demand_charge_per_kw > 0 else None
        self.thermal = ThermalLearning(site)  # ambient input and learnt battery thermal models (docs/battery.md)
        self.live_site = LiveSite(live, dispatcher, self.billing_peak, prepare=self.thermal.prepare)
        # Late ticks hold each command longer than one step; the plan caps batteries near their ceiling for it.
        self.command_hold = CommandHold(site.control.interval_s,
                                        site.ocpp.profile_ttl_intervals * site.control.interval_s)
        # The bound leaves the solver its own time limit plus slack for building the model.
        self.solve_timeout_s = 2 * site.control.solver_time_limit_s + 5

    async def tick(self, *, wait: bool = False) -> TickResult | None:
        """Run one tick now. When another tick is running: return None (coalesced into it), or with ``wait`` run
        right after it (an event arrived after that tick took its snapshot)."""
        if self._stopped or (self._lock.locked() and not wait):
            return None
        task = asyncio.current_task()
        if task is not None:
            self._ticking.add(task)
        try:
            async with self._lock:
                result = await self._tick()
        finally:
            if task is not None:
                self._ticking.discard(task)
        self.last = result
        self.ticks += 1
        if result.report is not None and any(r.outcome is Outcome.REJECTED for r in result.report.station_records):
            # That charger stays capped at its fail-safe share, not at what this plan gave it: its free connectors
            # must be reserved now, not one interval later, or a vehicle plugging in there draws unbudgeted power.
            self.request_tick("a live station max was refused")
        if self.on_tick is not None:
            try:
                self.on_tick(result)
            except Exception:  # a broken observer (store, display) must not stop control
                log.exception("tick observer failed")
        return result

    async def _tick(self) -> TickResult:
        now = self.clock()
        self.last_started = now
        runner = self.runner
        timeout_s = self.solve_timeout_s
        site = self.site
        basis: CheckBasis | None = None

        async def planner(snapshot: Snapshot) -> Plan:
            nonlocal basis
            # The check's sessions and circuits depend on the snapshot alone: resolve them while the solver
            # process works, not after it (19 of the check's 33 ms of CPU at 1,000 sessions: benchmarks.check_bench).
            preparing = asyncio.ensure_future(asyncio.to_thread(prepare_check, site, snapshot))
            preparing.add_done_callback(_retrieve)
            plan = await runner.solve(snapshot, timeout_s)
            basis = await _prepared(preparing)
            return plan

        def check(snapshot: Snapshot, plan: Plan) -> Sequence[object]:
            return check_plan(site, snapshot, plan, basis=basis)

        self.live_site.command_hold_s = self.command_hold.estimate_s()
        outcome = await run_tick(self.live_site, planner, now, check=check, offload=asyncio.to_thread)
        self.command_hold.ticked(now, self.clock(), dispatched=outcome.applied is not None)
        fits = tuple(self.thermal.take_changed())
        exc = outcome.error
        if exc is None:
            return TickResult(now, outcome.snapshot, outcome.plan, outcome.applied, outcome.tick_ms, None,
                              outcome.plan_ms, fits, outcome.observe_ms)
        # Nothing was sent: the live TxProfiles lapse (valid_to) to the fail-safe layers, never to "unlimited";
        # that is safer than a bad plan. DepotError, a timeout or a solver bug: none may stop control.
        if isinstance(exc, DepotError):
            reason = str(exc)
        elif isinstance(exc, TimeoutError):
            reason = f"solver gave no plan within {self.solve_timeout_s:g} s ({exc or 'timed out'})"
        else:
            reason = f"{type(exc).__name__}: {exc}"
        log.error("tick at %s produced no usable plan: %s", now.isoformat(), reason)
        return TickResult(now, outcome.snapshot, None, None, outcome.tick_ms, reason, outcome.plan_ms, fits,
                          outcome.observe_ms)

    # ------------------------------------------------------------------------------ scheduling

    async def start(self) -> None:
        """Get the solver ready (the worker process starts once, here), then schedule ticks."""
        try:
            await self.runner.start()
        except Exception as exc:
            if self._fallback is None:
                raise
            # Control in a thread stalls message handling during each solve, but it is still control.
            log.error("solver process could not start (%s: %s); solving in a thread instead, so charger messages "
                      "wait during each solve: check that this host allows child processes", type(exc).__name__, exc)
            await self.runner.close()
            self.runner = ThreadRunner(self.site, self._fallback)
        scheduler = AsyncIOScheduler(timezone="UTC")
        scheduler.add_job(self.tick, "interval", seconds=self.interval_real_s, id="control-tick", max_instances=1,
                          coalesce=True, misfire_grace_time=max(1, int(self.interval_real_s)))
        scheduler.start()
        self._scheduler = scheduler

    def request_tick(self, reason: str) -> None:
        """Bring the next tick forward (debounced); safe to call from event handlers."""
        if self._stopped:
            return
        loop = asyncio.get_running_loop()
        if self._debounce is not None:
            self._debounce.cancel()
        log.debug("tick requested: %s", reason)
        self._debounce = loop.call_later(self.debounce_real_s, self._fire)

    def _fire(self) -> None:
        self._debounce = None
        if self._pending is not None and not self._pending.done():
            self._rerun = True  # the running tick may have missed this event: one more after it
            return
        self._pending = asyncio.get_running_loop().create_task(self._debounced(), name="debounced-tick")

    async def _debounced(self) -> None:
        while True:
            self._rerun = False
            await self.tick(wait=True)
            if not self._rerun:
                return

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop scheduling; let a running tick finish its dispatch (up to ``grace_s``), then cancel what is left."""
        self._stopped = True  # ticks already handed to the scheduler's executor return at once
        if self._debounce is not None:
            self._debounce.cancel()
            self._debounce = None
        if self._scheduler is not None:
            self._scheduler.pause()
        await asyncio.sleep(0)  # let job tasks created just before the pause start (and return)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace_s), self._lock:
                pass
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        # APScheduler's shutdown cancels its job tasks without waiting for them: wait here, so that no tick is
        # left dispatching when the links and the store close.
        await cancel_and_wait([t for t in (self._pending, *self._ticking) if t is not None and not t.done()
                               and t is not asyncio.current_task()])
        await self.runner.close()
