"""The live controller: OCPP server + live state + control loop + dispatch + store, started and stopped as one.

    async with Controller(site, clock=...) as controller:
        print(controller.url)          # ws://host:port/ocpp/<identity>
        ...

Events from the chargers fan out to the live state (first, so a tick always sees them), the store, and — for a
plug-in, an unplug, a transaction or ISO 15118 needs — a debounced early tick. After a BootNotification is
accepted (and on a reconnect of a charger already accepted) the controller reads the charger's smart-charging
capabilities, pushes its fail-safe profiles and configures sampling, in a supervised task.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol

from csms_adapter.control.connector_state import Session
from csms_adapter.control.control_loop import ControlLoop, Planner, TickResult
from csms_adapter.control.dispatch import CommandRecord, Dispatcher
from csms_adapter.control.failsafe import (
    FailsafeShare,
    apply_failsafe,
    compute_shares,
    profile_unit,
    raises_that_fit,
    share_load,
    worst_case_ev_budget_kw,
)
from csms_adapter.control.live_state import LiveState
from csms_adapter.errors import ChargerError
from csms_adapter.protocol import events as ev
from csms_adapter.protocol.frame_guard import GuardLimits
from csms_adapter.protocol.link import (
    SAMPLED_MEASURANDS,
    Capabilities,
    ChargerLink,
    Clock,
    HandlingStats,
    LinkContext,
    Supervisor,
)
from csms_adapter.protocol.server import Admission, Link, OcppServer
from optimizer.circuits import PhaseLoad, wired_phases
from optimizer.domain import RateUnit, Site

log = logging.getLogger("depotctl.controller")


class Service(Protocol):
    """Something that runs beside the controller (the HTTP API): started after it, stopped before it."""

    async def start(self) -> object: ...

    async def stop(self) -> None: ...

_TICK_TRIGGERS = (ev.TransactionStarted, ev.TransactionStopped, ev.EvChargingNeeds)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Recorder(Protocol):
    """What the controller needs from the store (``csms_adapter.store``); all calls must be cheap on the event
    loop (the store batches and writes off the loop)."""

    async def start(self) -> None: ...

    def record_event(self, event: ev.Event) -> None: ...

    def record_tick(self, result: TickResult) -> None: ...

    def record_command(self, record: CommandRecord) -> None: ...

    def open_sessions(self) -> list[tuple[str, int, Session]]: ...

    def accepted_chargers(self) -> set[str]: ...

    def next_transaction_id(self) -> int: ...

    async def close(self) -> None: ...


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host, int(port)


class Controller:
    def __init__(
        self,
        site: Site,
        *,
        clock: Clock = utc_now,
        listen: str | None = None,
        env: Mapping[str, str] | None = None,
        recorder: Recorder | None = None,
        planner: Planner | None = None,
        speed: float = 1.0,
        ignore_grace_s: float | None = None,
        debounce_real_s: float = 2.0,
        guard_limits: GuardLimits | None = None,
    ) -> None:
        """``speed`` > 1 runs the control interval that much faster in wall time (with an accelerated ``clock``)."""
        self.site = site
        self.clock = clock
        self.host, self.port = split_listen(listen or site.ocpp.listen)
        self.env = env if env is not None else os.environ
        self.recorder = recorder
        # The fail-safe shares to hand out: for the day's lowest scheduled limit and any lower external cap in
        # force, with each charger's share where it can do the most harm on one phase for the unit it is sent in
        # (unknown until its capabilities are read: W). They are recomputed when either changes; a charger holds
        # what it last accepted until then (docs/safety-phases.md).
        self.units: dict[str, RateUnit] = {}
        self.shares: dict[str, FailsafeShare] = compute_shares(site)
        self._failsafe_cap_kw: float | None = None
        self._sending: set[str] = set()  # chargers with a fail-safe update in flight
        self._failsafe_failed: set[str] = set()  # refused or failed: what they hold is not known
        self._shares_key: tuple[float | None, tuple[tuple[str, RateUnit], ...]] = (None, ())
        self.live = LiveState(site, {cid: s.station_kw for cid, s in self.shares.items()},
                              ignore_grace_s=ignore_grace_s)
        self.capabilities: dict[str, Capabilities] = {}
        self.accepted: set[str] = set()  # chargers whose BootNotification we accepted (reconnects skip boot)
        self.supervisor = Supervisor("controller")
        if guard_limits is None:
            guard_limits = GuardLimits(**dataclasses.asdict(site.ocpp.limits))
        self.server = OcppServer(site, self._context, self._connected, self._disconnected, env=self.env,
                                 limits=guard_limits)
        self.dispatcher = Dispatcher(site, self.live, self.server.links, self.capabilities,
                                     record=recorder.record_command if recorder is not None else None,
                                     default_kw={cid: s.default_kw for cid, s in self.shares.items()})
        self.loop = ControlLoop(site, self.live, self.dispatcher, clock, planner=planner, on_tick=self._ticked,
                                interval_real_s=site.control.interval_s / speed, debounce_real_s=debounce_real_s)
        seed = int(clock().timestamp()) % 2_000_000_000  # 1.6 ids are int32 on many chargers
        self._tx_ids = itertools.count(seed)
        self.last_tick: TickResult | None = None
        self.handling = HandlingStats()  # charger messages handled and their latency (load benchmark, metrics)
        self.tick_listeners: list[Callable[[TickResult], None]] = []  # after the store; e.g. the HTTP side
        # Started after the controller and stopped before it (the dashboard and API, attached by the composition
        # root in csms_adapter.cli: control never imports the HTTP side).
        self.services: list[Service] = []

    @property
    def url(self) -> str:
        """The websocket base URL; a charger appends its identity."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"{self.server.scheme}://{host}:{self.port}/ocpp/"

    async def start(self) -> None:
        if self.recorder is not None:
            # Resume where the last run stopped: open sessions, and which chargers had booted (they reconnect
            # without a BootNotification).
            for charger_id, connector_id, session in self.recorder.open_sessions():
                if self.site.has_charger(charger_id):
                    self.live.restore_session(charger_id, connector_id, session)
            self.accepted |= self.recorder.accepted_chargers() & {c.id for c in self.site.chargers}
            await self.recorder.start()
        self.port = await self.server.start(self.host, self.port)
        await self.loop.start()
        for service in self.services:
            await service.start()
        log.info("controller listening url=%s chargers=%d", self.url, len(self.site.chargers))

    async def stop(self) -> None:
        for service in reversed(self.services):
            await service.stop()
        await self.loop.stop()
        await self.server.stop()
        await self.supervisor.close()
        if self.recorder is not None:
            await self.recorder.close()

    async def __aenter__(self) -> Controller:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    # ------------------------------------------------------------------------------ events

    def publish(self, event: ev.Event) -> None:
        plugged_or_unplugged = False
        if isinstance(event, ev.StatusChanged) and event.connector_id > 0:
            # Only a change of plug state brings a tick forward: Charging ↔ SuspendedEV and status resyncs keep
            # the plug as it was, and at a large depot they would otherwise keep the LP running back to back.
            known = self.live.chargers.get(event.charger_id)
            before = known.connectors.get(event.connector_id) if known is not None else None
            plugged_or_unplugged = (event.plug in (ev.PlugState.AVAILABLE, ev.PlugState.OCCUPIED)
                                    and (before is None or before.plug is not event.plug))
        self.live.apply(event)
        if self.recorder is not None:
            self.recorder.record_event(event)
        if isinstance(event, _TICK_TRIGGERS) or plugged_or_unplugged:
            self.loop.request_tick(type(event).__name__)

    def _next_tx(self) -> int:
        if self.recorder is not None:
            return self.recorder.next_transaction_id()
        return next(self._tx_ids)

    def _context(self, admission: Admission) -> LinkContext:
        return LinkContext(
            charger_id=admission.charger_id,
            sink=self.publish,
            clock=self.clock,
            supervisor=self.supervisor,
            call_timeout_s=self.site.ocpp.call_timeout_s,
            heartbeat_s=self.site.ocpp.heartbeat_s,
            monitor_only=admission.monitor_only,
            next_transaction_id=self._next_tx,
            on_accepted=self._after_boot,
            stats=self.handling,
        )

    async def _connected(self, link: Link, admission: Admission) -> None:
        self.dispatcher.forget(admission.charger_id)  # a new connection: re-send its live station max
        self.publish(ev.ChargerConnected(admission.charger_id, link.ocpp_version, self.clock(),
                                         admission.monitor_only))
        if admission.charger_id in self.accepted and not admission.monitor_only:
            # A reconnect without BootNotification (OCPP-J §5.4): resync state and re-verify the fail-safe.
            self.supervisor.spawn(self._after_reconnect(link), f"{admission.charger_id}:reconnect")

    async def _disconnected(self, link: Link) -> None:
        self.publish(ev.ChargerDisconnected(link.charger_id, self.clock()))

    def _ticked(self, result: TickResult) -> None:
        self.last_tick = result
        self._follow_cap(result.snapshot.grid_cap_kw)
        if self.recorder is not None:
            self.recorder.record_tick(result)
        for listener in self.tick_listeners:
            listener(result)

    # ------------------------------------------------------------------------------ charger setup

    async def _after_boot(self, link: ChargerLink) -> None:
        """Runs after the Accepted BootNotification answer is on the wire (never before: some firmwares loop)."""
        charger_id = link.charger_id
        self.accepted.add(charger_id)
        self._sending.add(charger_id)  # its own fail-safe follows below: no update for it from a rebalance
        try:
            self.capabilities[charger_id] = await link.read_capabilities()
            # Known units change where shares may land (A: a current per phase): recompute before this charger's
            # own fail-safe goes out; the others get theirs re-sent where it fits.
            self.units[charger_id] = profile_unit(self.site.charger(charger_id), self.capabilities[charger_id])
            self._rebalance_failsafe()
        except ChargerError as exc:
            log.warning("charger=%s capabilities unknown (%s); assuming A and W", charger_id, exc.reason)
        try:
            # A charger that just booted has no transaction: a TxProfile still installed is a stale leftover that
            # only takes up one of its few profile slots.
            if await link.clear_tx_profiles():
                log.info("charger=%s had stale TxProfiles; cleared", charger_id)
        except ChargerError as exc:
            log.info("charger=%s could not clear old TxProfiles: %s", charger_id, exc.reason)
        await self._failsafe(link)
        try:
            result = await link.configure_sampling(SAMPLED_MEASURANDS, self.site.ocpp.meter_interval_s)
            if result.interval_s is None or "Power.Active.Import" not in result.measurands:
                log.warning("charger=%s samples only %s (interval %s): limit-compliance checks are weaker",
                            charger_id, ",".join(result.measurands), result.interval_s)
        except ChargerError as exc:
            log.warning("charger=%s sampling not configured: %s", charger_id, exc.reason)
        self.loop.request_tick("charger ready")

    async def _after_reconnect(self, link: ChargerLink) -> None:
        try:
            await link.trigger_status()
        except ChargerError as exc:
            log.info("charger=%s status resync failed: %s", link.charger_id, exc.reason)
        await self._failsafe(link)
        self.loop.request_tick("charger reconnected")

    def _follow_cap(self, cap_kw: float | None) -> None:
        """The fail-safe always fits the lowest limit in force: an external import cap below the day's lowest
        limit lowers the shares while it holds, and they come back when it goes."""
        lowers = cap_kw is not None and (worst_case_ev_budget_kw(self.site, cap_kw)
                                         < worst_case_ev_budget_kw(self.site) - 1e-6)
        effective = cap_kw if lowers else None
        if effective != self._failsafe_cap_kw:
            self._failsafe_cap_kw = effective
            log.info("fail-safe shares follow the import cap: %s kW",
                     "none" if effective is None else f"{effective:g}")
        self._rebalance_failsafe()

    def _held(self) -> dict[str, tuple[float, PhaseLoad]]:
        """What each charger holds now for ``raises_that_fit``: its accepted share and the unit it went out in; its
        maximum when a fail-safe call failed; else the share it will be given when it connects."""
        out: dict[str, tuple[float, PhaseLoad]] = {}
        for charger in self.site.chargers:
            if charger.id in self._failsafe_failed:
                # Whatever it holds, its own current limit holds each phase (as live control budgets it).
                out[charger.id] = (charger.max_power_kw_for(charger.phases) * charger.connectors,
                                   share_load(charger, RateUnit.AMPS))
            elif self.live.charger(charger.id).failsafe_accepted and charger.id in self.live.failsafe_kw:
                spread = self.live.failsafe_spread.get(charger.id, 1)
                unit = RateUnit.WATTS if spread == 1 and charger.phases > 1 else RateUnit.AMPS
                out[charger.id] = (self.live.failsafe_kw[charger.id], share_load(charger, unit))
            else:
                out[charger.id] = (self.shares[charger.id].station_kw,
                                   share_load(charger, self.units.get(charger.id, charger.rate_unit)))
        return out

    def _rebalance_failsafe(self) -> None:
        """Recompute the shares when the limit in force or a known unit changed; send each connected charger its
        new share: at once where it falls, and where it rises only once it fits with every other charger as it
        holds now (so no moment has more out than the site carries; a held-back raise is retried next tick)."""
        key = (self._failsafe_cap_kw, tuple(sorted(self.units.items())))
        if key != self._shares_key:
            self._shares_key = key
            self.shares = compute_shares(self.site, cap_kw=self._failsafe_cap_kw, units=self.units)
        elif not self._pending_raise():
            return
        held = self._held()
        ready = {cid: self.server.links[cid] for cid in self.shares
                 if cid in self.server.links and cid in self.accepted and cid not in self._sending
                 and self.live.charger(cid).connected and self.live.charger(cid).failsafe_accepted}
        wanted: dict[str, tuple[float, PhaseLoad]] = {}
        for cid, link in sorted(ready.items()):
            share = self.shares[cid]
            if share.station_kw < held[cid][0] - 1e-9:
                self._send_failsafe(link)
            elif share.station_kw > held[cid][0] + 1e-9:
                wanted[cid] = (share.station_kw, share_load(self.site.charger(cid), self.units.get(cid)))
        if wanted:
            for cid in raises_that_fit(self.site, held, wanted, cap_kw=self._failsafe_cap_kw):
                self._send_failsafe(ready[cid])

    def _pending_raise(self) -> bool:
        return any(self.live.charger(cid).failsafe_accepted and cid in self.live.failsafe_kw
                   and share.station_kw > self.live.failsafe_kw[cid] + 1e-9 for cid, share in self.shares.items())

    def _send_failsafe(self, link: ChargerLink) -> None:
        self._sending.add(link.charger_id)
        self.supervisor.spawn(self._failsafe(link), f"{link.charger_id}:failsafe-update")

    async def _failsafe(self, link: ChargerLink) -> None:
        self._sending.add(link.charger_id)
        try:
            await self._apply_failsafe(link)
        finally:
            self._sending.discard(link.charger_id)

    async def _apply_failsafe(self, link: ChargerLink) -> None:
        charger = self.site.charger(link.charger_id)
        caps = self.capabilities.get(charger.id, Capabilities())
        share = self.shares[charger.id]
        try:
            # Verify past the live profiles' validity: on a reconnect a live station max may still be in force.
            verify_s = max(300, int(self.dispatcher.valid_s) + 60)
            ok = await apply_failsafe(link, charger, share, caps, verify_s=verify_s)
        except ChargerError as exc:
            log.warning("charger=%s fail-safe not set: %s", charger.id, exc.reason)
            ok = False
        if not ok:
            self._failsafe_failed.add(charger.id)
        else:
            # What it now holds: budgeted at this share, landing per phase as the unit it went out in lets it.
            self._failsafe_failed.discard(charger.id)
            unit = profile_unit(charger, caps)
            self.live.failsafe_kw[charger.id] = share.station_kw
            self.live.failsafe_spread[charger.id] = (
                1 if unit is RateUnit.WATTS and not charger.dc else max(1, len(wired_phases(charger))))
            self.dispatcher.default_kw[charger.id] = share.default_kw
        self.live.charger(charger.id).failsafe_accepted = ok
