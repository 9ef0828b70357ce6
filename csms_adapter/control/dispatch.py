"""Plan → one TxProfile per connector, in the charger's unit, sent concurrently across chargers.

Rules (docs/architecture.md, "Dispatch"): limits in A per phase (AC) or W total, rounded down to 0.1 (OCPP 1.6
multipleOf); a fixed profile id per connector (the link's job) and a validity of ``profile_ttl_intervals`` control
intervals, so a dead controller lets chargers fall back to their fail-safe; raises within ``deadband_a`` are not
sent unless the profile would lapse before the next tick, lower limits always are (``optimizer.charger_commands``);
connectors of one charger go one after another (the link's lock keeps one call in flight per charger), different
chargers in parallel. A failed call is recorded and
retried at the next tick (nothing is marked as sent); a refused profile moves the connector to
``Snapshot.uncontrolled`` via the live state.

Per charger, a live station-max profile (stack level 1 over the permanent fail-safe share at level 0) carries the
charger's planned total: the sum of its connectors' commands plus what its uncontrolled connectors are budgeted
at. Chargers apply min(station max, TxProfile), so without it the LP could never give a charger more than its
fail-safe share. It has the TxProfiles' validity and deadband; when the controller dies it lapses with them.

The live station max is also what keeps a plug-in safe: a charger with free connectors gets, on top of its
planned total, only the plug-in allowance the plan took from capacity nobody was planned (``Plan.plug_in``; 0
when the site is full). So the caps in force always fit the site and every circuit, whatever vehicle arrives
before the next tick. Every call that lowers a cap is sent (and confirmed) before any call that raises one: a
vehicle moved from one charger to another never sees both limits at once. When a lowering call fails, this
tick's raises of caps are held back (``Outcome.HELD``); the next tick plans around the cap still in force.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from csms_adapter.control.collector_pause import collections_paused
from csms_adapter.control.connector_state import Command
from csms_adapter.control.failsafe import profile_unit
from csms_adapter.control.live_state import LiveState
from csms_adapter.errors import ChargerError, ChargerTimeout, ProfileRejected
from csms_adapter.protocol.link import LIVE_STATION_MAX_STACK_LEVEL, Capabilities, ChargerLink
from optimizer import charger_commands as commands
from optimizer.charger_commands import Limit, limit_kw_of
from optimizer.domain import Charger, ConnectorPlan, Plan, RateUnit, Site, Snapshot

log = logging.getLogger("depotctl.dispatch")


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    TIMEOUT = "timeout"
    ERROR = "error"
    UNCHANGED = "unchanged"  # within the deadband; not sent
    OFFLINE = "offline"
    UNCONTROLLED = "uncontrolled"
    HELD = "held"  # a raise not sent because a lowering call of the same tick was not confirmed


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """One profile decision for one connector, for the store and the operator."""

    time: datetime
    charger_id: str
    connector_id: int
    transaction_id: str | None
    limit: float
    unit: RateUnit
    phases: int
    limit_kw: float
    outcome: Outcome
    reason: str = ""
    duration_ms: float = 0.0
    purpose: str = "TxProfile"  # or STATION_MAX (connector 0)


STATION_MAX = "StationMaxProfile"


@dataclass(frozen=True, slots=True)
class StationCommand:
    """The live station max last accepted by a charger."""

    limit: float
    unit: RateUnit
    phases: int
    sent_at: datetime
    limit_kw: float


@dataclass(frozen=True, slots=True)
class DispatchReport:
    records: tuple[CommandRecord, ...]  # TxProfiles, one per planned connector
    duration_ms: float
    station_records: tuple[CommandRecord, ...] = ()  # live station-max profiles, one per planned charger

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.records if r.outcome is outcome)


@dataclass(frozen=True, slots=True)
class _ChargerCalls:
    """One charger's calls of one tick, each limit computed once."""

    charger: Charger
    station: Limit | None  # None: the charger takes no live station max
    station_lowers: bool
    lowering: list[tuple[ConnectorPlan, Limit]]
    raising: list[tuple[ConnectorPlan, Limit]]


class Dispatcher:
    def __init__(
        self,
        site: Site,
        live: LiveState,
        links: Mapping[str, ChargerLink],
        capabilities: Mapping[str, Capabilities],
        record: Callable[[CommandRecord], None] | None = None,
        default_kw: Mapping[str, float] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """``default_kw``: each charger's fail-safe TxDefaultProfile per connector (what a new session draws until
        its first TxProfile); unknown = 0, so that a first TxProfile always counts as a raise."""
        self.site = site
        self.live = live
        self.links = links
        self.capabilities = capabilities
        self._record = record or (lambda _r: None)
        self.default_kw = dict(default_kw or {})
        self.clock = clock  # stamps acceptances; None: the tick's time
        self._station: dict[str, StationCommand] = {}
        self._station_refused: dict[str, str] = {}  # charger → why; retried after it reconnects
        self._station_unconfirmed: set[str] = set()  # the last call failed: the charger may hold an older cap
        self.pause_collector = True  # False only to measure what the pause is worth (load benchmark)
        interval = site.control.interval_s
        self.valid_s = site.ocpp.profile_ttl_intervals * interval
        # Re-send an unchanged limit once it would lapse before the tick after next.
        self.refresh_after_s = max(interval, self.valid_s - 2 * interval)

    def unit_of(self, charger: Charger) -> RateUnit:
        """The unit ``charger``'s profiles go out in."""
        return profile_unit(charger, self.capabilities.get(charger.id, Capabilities()))

    def with_units(self, snapshot: Snapshot) -> Snapshot:
        """``snapshot`` with each session's command unit: the optimizer budgets a W limit on an AC charger, phases
        not known, as landing wholly on one phase (``optimizer.circuits.phase_load``)."""
        sessions = tuple(dataclasses.replace(s, rate_unit=self.unit_of(self.site.charger(s.charger_id)))
                         if self.site.has_charger(s.charger_id) else s for s in snapshot.sessions)
        return dataclasses.replace(snapshot, sessions=sessions)

    def command_for(self, cp: ConnectorPlan) -> Limit:
        """(limit, unit, phases) the charger is told for ``cp``."""
        charger = self.site.charger(cp.charger_id)
        return commands.connector_command(charger, cp, profile_unit(charger, self.capabilities.get(charger.id,
                                                                                                   Capabilities())))

    def _unchanged(self, charger: Charger, cp: ConnectorPlan, limit: float, unit: RateUnit, phases: int,
                   tx: str, now: datetime) -> bool:
        state = self.live.charger(charger.id).connectors.get(cp.connector_id)
        last = state.command if state is not None else None
        if last is None or last.transaction_id != tx:
            return False
        age_s = (now - last.sent_at).total_seconds()
        if not 0 <= age_s <= self.refresh_after_s:  # < 0: the clock jumped back; the charger's copy may lapse
            return False
        return commands.within_deadband_kw(charger, limit_kw_of(charger, limit, unit, phases), last.limit_kw, phases,
                                           self.site.ocpp.deadband_a, last.limit_a)

    def forget(self, charger_id: str) -> None:
        """The charger (re)connected: its live station max may be gone and a refusal may no longer hold.
        What it last accepted still bounds what it may draw until that lapses, so that is kept for budgeting."""
        self._station_refused.pop(charger_id, None)
        last = self._station.get(charger_id)
        if last is not None:
            self._station[charger_id] = dataclasses.replace(last, limit=math.nan)  # never within the deadband

    def station_controlled(self, charger_id: str) -> bool:
        """True when the charger takes live station-max profiles (or has not refused one yet)."""
        link = self.links.get(charger_id)
        caps = self.capabilities.get(charger_id, Capabilities())
        return (link is not None and link.connected and self.live.charger(charger_id).set_up
                and charger_id not in self._station_refused
                and (caps.max_stack_level is None or caps.max_stack_level >= LIVE_STATION_MAX_STACK_LEVEL))

    def station_confirmed(self, charger_id: str) -> bool:
        """False when the last live station-max call failed: the charger may still hold an older, higher cap."""
        return charger_id not in self._station_unconfirmed

    def live_station_kw(self, charger_id: str, now: datetime) -> float | None:
        """The live station max the charger accepted and that has not lapsed at ``now`` (kW), or None."""
        last = self._station.get(charger_id)
        if last is None or not 0 <= (now - last.sent_at).total_seconds() < self.valid_s:
            return None
        return last.limit_kw

    def cap_in_force_kw(self, charger_id: str, now: datetime) -> float:
        """The most the charger may draw at ``now``: its live station max, else its fail-safe share (its
        maximum when it never took the share)."""
        live = self.live_station_kw(charger_id, now)
        if live is not None:
            return live
        return self.live.fallback_kw(charger_id)

    async def dispatch(self, plan: Plan, now: datetime, snapshot: Snapshot | None = None) -> DispatchReport:
        """Send ``plan``; ``snapshot`` (the one it was planned on) adds each charger's uncontrolled budget to
        its live station max, so the charger's own balancing does not starve its controlled connectors.
        Lowering calls go first (all chargers at once), then raising ones (held back if a lowering failed).
        The garbage collector waits until the calls are answered (``collector_pause``)."""
        if not self.pause_collector:
            return await self._dispatch(plan, now, snapshot)
        with collections_paused():
            return await self._dispatch(plan, now, snapshot)

    async def _dispatch(self, plan: Plan, now: datetime, snapshot: Snapshot | None) -> DispatchReport:
        started = time.perf_counter()
        by_charger: dict[str, list[ConnectorPlan]] = {}
        for cp in plan.connectors:
            by_charger.setdefault(cp.charger_id, []).append(cp)
        extra_kw: dict[str, float] = {}
        for load in snapshot.uncontrolled if snapshot is not None else ():
            if load.connector_id > 0:  # connector 0 = a disconnected charger: nothing to send it
                extra_kw[load.charger_id] = extra_kw.get(load.charger_id, 0.0) + load.power_kw
        for allowance in plan.plug_in:
            by_charger.setdefault(allowance.charger_id, [])
            extra_kw[allowance.charger_id] = extra_kw.get(allowance.charger_id, 0.0) + allowance.limit_kw
        calls = [self._calls(cid, cps, extra_kw.get(cid, 0.0), now) for cid, cps in by_charger.items()]
        first = await asyncio.gather(*(self._send(c, now, lowering=True, hold=False) for c in calls))
        hold = any(self._cap_unconfirmed(r) for group in first for r in group)
        if hold:
            log.warning("a lowering profile call was not confirmed: raises of this tick are held back")
        second = await asyncio.gather(*(self._send(c, now, lowering=False, hold=hold) for c in calls))
        done = [r for group in (*first, *second) for r in group]
        stations = tuple(r for r in done if r.purpose == STATION_MAX)
        records = tuple(r for r in done if r.purpose != STATION_MAX)
        for record in (*stations, *records):
            self._record(record)
        return DispatchReport(records, (time.perf_counter() - started) * 1000.0, stations)

    def _cap_unconfirmed(self, record: CommandRecord) -> bool:
        """A lowering call failed where it was the charger's cap: its station max, or the TxProfile of a charger
        without one. (Under a live station max a refused TxProfile — e.g. for a transaction that just ended —
        only moves power within the charger.)"""
        if record.outcome not in (Outcome.REJECTED, Outcome.TIMEOUT, Outcome.ERROR):
            return False
        return record.purpose == STATION_MAX or not self.station_controlled(record.charger_id)

    def _calls(self, charger_id: str, plans: list[ConnectorPlan], extra_kw: float, now: datetime) -> _ChargerCalls:
        """Which of one charger's calls lower what it may draw (sent first) and which raise it."""
        charger = self.site.charger(charger_id)
        commands = [(cp, self.command_for(cp)) for cp in plans]
        station: Limit | None = None
        station_lowers = False
        if self.station_controlled(charger_id):
            station = self._station_limit(charger, [limit for _, (limit, _, _) in commands], extra_kw)
            station_lowers = limit_kw_of(charger, *station) < self.cap_in_force_kw(charger_id, now) - 1e-3
        lowering: list[tuple[ConnectorPlan, Limit]] = []
        raising: list[tuple[ConnectorPlan, Limit]] = []
        for cp, command in commands:
            lowers = limit_kw_of(charger, *command) < self._tx_in_force_kw(charger, cp, now) - 1e-3
            (lowering if lowers else raising).append((cp, command))
        return _ChargerCalls(charger, station, station_lowers, lowering, raising)

    def _tx_in_force_kw(self, charger: Charger, cp: ConnectorPlan, now: datetime) -> float:
        state = self.live.charger(charger.id).connectors.get(cp.connector_id)
        last = state.command if state is not None else None
        session = state.session if state is not None else None
        if (last is not None and session is not None and last.transaction_id == session.transaction_id
                and 0 <= (now - last.sent_at).total_seconds() < self.valid_s):
            return last.limit_kw
        return self.default_kw.get(charger.id, 0.0)

    async def _send(self, calls: _ChargerCalls, now: datetime, *, lowering: bool, hold: bool) -> list[CommandRecord]:
        """One phase of one charger's calls, one after another (one call in flight per charger); the station max
        first: raising it first lets raised TxProfiles act at once, lowering it first restricts sooner."""
        out: list[CommandRecord] = []
        if calls.station is not None and calls.station_lowers == lowering:
            record = await self._station_max(calls.charger, calls.station, now, held=hold)
            if record is not None:
                out.append(record)
        # Under a live station max a TxProfile only shares the charger's cap; without one it is the cap.
        hold_tx = hold and not self.station_controlled(calls.charger.id)
        for cp, command in calls.lowering if lowering else calls.raising:
            out.append(await self._connector(calls.charger, cp, command, now, held=hold_tx))
        return out

    def _station_limit(self, charger: Charger, connector_limits: list[float], extra_kw: float) -> Limit:
        """(limit, unit, phases) of the live station max: the sum of the connectors' commands in the charger's
        unit (A per phase: an upper bound on any one phase) plus the uncontrolled budget and plug-in allowance."""
        unit = profile_unit(charger, self.capabilities.get(charger.id, Capabilities()))
        return commands.station_limit(charger, unit, connector_limits, extra_kw)

    async def _station_max(self, charger: Charger, station: Limit, now: datetime, *, held: bool = False
                           ) -> CommandRecord | None:
        link = self.links.get(charger.id)
        if link is None or not self.station_controlled(charger.id):
            return None  # the stack-0 share stays the cap: safe, the charger just gets less than planned
        limit, unit, phases = station
        limit_kw = limit_kw_of(charger, limit, unit, phases)

        def record(outcome: Outcome, reason: str = "", ms: float = 0.0) -> CommandRecord:
            return CommandRecord(now, charger.id, 0, None, limit, unit, phases, limit_kw, outcome, reason, ms,
                                 STATION_MAX)

        last = self._station.get(charger.id)
        if (last is not None and last.unit is unit and (now - last.sent_at).total_seconds() <= self.refresh_after_s
                and self._within_deadband(charger, limit, last.limit, unit, phases)):
            return record(Outcome.UNCHANGED)
        if held:
            return record(Outcome.HELD, "a lowering call of this tick was not confirmed")
        t0 = time.perf_counter()
        try:
            await link.set_live_station_max(limit, unit, phases, self.valid_s, now)
        except ProfileRejected as exc:
            self._station_unconfirmed.discard(charger.id)  # refused: the old cap stays and is budgeted as such
            self._station_refused[charger.id] = exc.reason
            log.warning("charger=%s refused its live station max (%s): it stays capped at its fail-safe share; "
                        "check its ChargePointMaxProfile/stack-level support", charger.id, exc.reason)
            return record(Outcome.REJECTED, exc.reason, (time.perf_counter() - t0) * 1000.0)
        except ChargerError as exc:
            self._station_unconfirmed.add(charger.id)
            outcome = Outcome.TIMEOUT if isinstance(exc, ChargerTimeout) else Outcome.ERROR
            return record(outcome, exc.reason, (time.perf_counter() - t0) * 1000.0)
        self._station_unconfirmed.discard(charger.id)
        self._station[charger.id] = StationCommand(limit, unit, phases, now, limit_kw)
        return record(Outcome.ACCEPTED, "", (time.perf_counter() - t0) * 1000.0)

    def _within_deadband(self, charger: Charger, new: float, old: float, unit: RateUnit, phases: int) -> bool:
        return commands.station_limits_within_deadband(charger, new, old, unit, phases, self.site.ocpp.deadband_a)

    async def _connector(self, charger: Charger, cp: ConnectorPlan, command: Limit, now: datetime, *,
                         held: bool = False) -> CommandRecord:
        limit, unit, phases = command
        limit_kw = limit_kw_of(charger, limit, unit, phases)
        session = self.live.charger(charger.id).connectors.get(cp.connector_id)
        tx = session.session.transaction_id if session is not None and session.session is not None else None

        def record(outcome: Outcome, reason: str = "", ms: float = 0.0) -> CommandRecord:
            return CommandRecord(now, charger.id, cp.connector_id, tx, limit, unit, phases, limit_kw, outcome,
                                 reason, ms)

        link = self.links.get(charger.id)
        if link is None or not link.connected or not self.live.charger(charger.id).set_up:
            return record(Outcome.OFFLINE)  # not set up: nothing goes to a charger before its boot is accepted
        if tx is None or not self.live.controllable(charger.id, cp.connector_id):
            return record(Outcome.UNCONTROLLED)
        if self._unchanged(charger, cp, limit, unit, phases, tx, now):
            return record(Outcome.UNCHANGED)
        if held:
            return record(Outcome.HELD, "a lowering call of this tick was not confirmed")
        t0 = time.perf_counter()
        try:
            await link.set_tx_limit(cp.connector_id, limit, unit, phases, self.valid_s, tx, now)
        except ProfileRejected as exc:
            ms = (time.perf_counter() - t0) * 1000.0
            if not self.live.record_rejection(charger.id, cp.connector_id, tx, exc.reason):
                # The vehicle left while the profile was on its way: nothing to hold against the connector.
                log.info("charger=%s connector=%d refused a TxProfile for transaction %s, which has ended since (%s)",
                         charger.id, cp.connector_id, tx, exc.reason)
                return record(Outcome.REJECTED, f"{exc.reason} (transaction ended)", ms)
            log.warning("charger=%s connector=%d refused its TxProfile (%s); budgeting what it draws", charger.id,
                        cp.connector_id, exc.reason)
            return record(Outcome.REJECTED, exc.reason, ms)
        except ChargerTimeout as exc:
            self.live.record_failure(charger.id, cp.connector_id, now)
            return record(Outcome.TIMEOUT, exc.reason, (time.perf_counter() - t0) * 1000.0)
        except ChargerError as exc:
            self.live.record_failure(charger.id, cp.connector_id, now)
            return record(Outcome.ERROR, exc.reason, (time.perf_counter() - t0) * 1000.0)
        limit_a = limit if unit is RateUnit.AMPS and not charger.dc else None
        accepted_at = self.clock() if self.clock is not None else now
        self.live.record_command(charger.id, cp.connector_id, Command(limit_kw, limit_a, now, tx, accepted_at))
        return record(Outcome.ACCEPTED, "", (time.perf_counter() - t0) * 1000.0)
