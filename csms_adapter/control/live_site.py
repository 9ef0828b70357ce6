"""The live depot as the tick sees it (``optimizer.tick.ControlledSite``): observe builds the snapshot from the
live state (after advancing its time-dependent judgements), adds the plug-in budget and the billing period's peak;
apply sends the plan through the dispatcher and returns its report."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime

from csms_adapter.control.billing_peak import BillingPeak
from csms_adapter.control.dispatch import Dispatcher, DispatchReport
from csms_adapter.control.live_state import LiveState
from csms_adapter.control.plug_in_guard import with_plug_in_budget
from optimizer.domain import Plan, Snapshot


class LiveSite:
    def __init__(self, live: LiveState, dispatcher: Dispatcher, billing_peak: BillingPeak | None, *,
                 prepare: Callable[[Snapshot], Snapshot] | None = None) -> None:
        self.live = live
        self.dispatcher = dispatcher
        self.billing_peak = billing_peak
        self.prepare = prepare  # last touches (ambient, learnt thermal models: control/thermal_learning.py)
        self.command_hold_s: float | None = None  # how long this tick's command may stand (control/command_hold.py)

    async def observe(self, now: datetime) -> Snapshot:
        # Each session carries the unit its charger is commanded in: a W limit with the vehicle's phases unknown
        # is budgeted on one phase (docs/safety-phases.md).
        snapshot = with_plug_in_budget(self.dispatcher.with_units(self.live.observe(now)), self.live,
                                       self.dispatcher, now)
        if self.billing_peak is not None:
            peak_kw = self.billing_peak.observe(now, self.live.site_power_kw(now), snapshot.base_load_kw)
            snapshot = dataclasses.replace(snapshot, peak_so_far_kw=peak_kw)
        if self.command_hold_s is not None:
            snapshot = dataclasses.replace(snapshot, command_hold_s=self.command_hold_s)
        return self.prepare(snapshot) if self.prepare is not None else snapshot

    async def apply(self, plan: Plan, snapshot: Snapshot, now: datetime) -> DispatchReport:
        return await self.dispatcher.dispatch(plan, now, snapshot)
