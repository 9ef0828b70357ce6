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
from csms_adapter.control.failsafe import FailsafeShare, compute_shares
from csms_adapter.control.failsafe_keeper import FailsafeKeeper
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
        shares = compute_shares(site)  # before any unit is known: each AC share counted as W (on one phase)
        self.live = LiveState(site, {cid: s.station_kw for cid, s in shares.items()},
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
                                     default_kw={cid: s.default_kw for cid, s in shares.items()})
        self.failsafe = FailsafeKeeper(site, self.live, self.dispatcher, self.server.links, self.capabilities,
                                       self.accepted, self.supervisor, shares)
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
    def shares(self) -> dict[str, FailsafeShare]:
        """The fail-safe shares to hand out now (``csms_adapter.control.failsafe_keeper``)."""
        return self.failsafe.shares

    @property
    def units(self) -> dict[str, RateUnit]:
        return self.failsafe.units

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
        self.failsafe.follow_cap(result.snapshot.grid_cap_kw)
        if self.recorder is not None:
            self.recorder.record_tick(result)
        for listener in self.tick_listeners:
            listener(result)

    # ------------------------------------------------------------------------------ charger setup

    async def _after_boot(self, link: ChargerLink) -> None:
        """Runs after the Accepted BootNotification answer is on the wire (never before: some firmwares loop)."""
        charger_id = link.charger_id
        self.accepted.add(charger_id)
        self.failsafe.setting_up(charger_id)  # its own fail-safe follows below: no update for it from a rebalance
        try:
            self.capabilities[charger_id] = await link.read_capabilities()
            self.failsafe.unit_known(charger_id)
        except ChargerError as exc:
            log.warning("charger=%s capabilities unknown (%s); assuming A and W", charger_id, exc.reason)
        try:
            # A charger that just booted has no transaction: a TxProfile still installed is a stale leftover that
            # only takes up one of its few profile slots.
            if await link.clear_tx_profiles():
                log.info("charger=%s had stale TxProfiles; cleared", charger_id)
        except ChargerError as exc:
            log.info("charger=%s could not clear old TxProfiles: %s", charger_id, exc.reason)
        await self.failsafe.apply(link)
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
        await self.failsafe.apply(link)
        self.loop.request_tick("charger reconnected")
