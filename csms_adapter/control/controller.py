"""The live controller: OCPP server + live state + control loop + dispatch + store, started and stopped as one.

    async with Controller(site, clock=...) as controller:
        print(controller.url)          # ws://host:port/ocpp/<identity>
        ...

Events from the chargers fan out to the live state (first, so a tick always sees them), the store, and — for a
plug-in, an unplug, a transaction or ISO 15118 needs — a debounced early tick; a vehicle that stops drawing brings
one forward too, rate-limited (``stop_ticks``). After a BootNotification is
accepted (and on a reconnect of a charger already accepted) ``charger_setup`` runs the charger's set-up steps
once, in order; nothing is sent to a charger before that. At start the controller restores from the store what
the last run knew: open sessions (the newest per connector), which chargers had booted, the operator's inputs
and the billing-period peak (docs/operations-restart.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol, runtime_checkable

from csms_adapter.control import live_judgements, vehicle_stops
from csms_adapter.control.availability_requests import AvailabilityRequests
from csms_adapter.control.charger_setup import ChargerSetup
from csms_adapter.control.connector_state import Session
from csms_adapter.control.control_loop import ControlLoop, Planner, TickResult
from csms_adapter.control.dispatch import CommandRecord, Dispatcher
from csms_adapter.control.failsafe import FailsafeShare, compute_shares
from csms_adapter.control.failsafe_keeper import FailsafeKeeper
from csms_adapter.control.live_state import LiveState
from csms_adapter.control.operator_journal import OperatorState, StoreJournal
from csms_adapter.control.stop_ticks import StopTicks, min_gap_s
from csms_adapter.control.vehicle_stops import VehicleStop
from csms_adapter.monitoring import Monitor
from csms_adapter.monitoring.meter_integrity import MeterLimits
from csms_adapter.monitoring.monitor import ControlFinding, History
from csms_adapter.protocol import authorization
from csms_adapter.protocol import events as ev
from csms_adapter.protocol.frame_guard import GuardLimits
from csms_adapter.protocol.link import (
    Capabilities,
    ChargerLink,
    Clock,
    HandlingStats,
    LinkContext,
    Supervisor,
)
from csms_adapter.protocol.server import Admission, Link, OcppServer
from optimizer.domain import RateUnit, Site
from optimizer.thermal_calibration import VehicleFit

log = logging.getLogger("depotctl.controller")


class Service(Protocol):
    """Something that runs beside the controller (the HTTP API): started after it, stopped before it."""

    async def start(self) -> object: ...

    async def stop(self) -> None: ...

_TICK_TRIGGERS = (ev.TransactionStarted, ev.TransactionStopped, ev.EvChargingNeeds, ev.ChargingLimitReported,
                  ev.ChargingLimitCleared, ev.EvScheduleReported)
# How long a charger accepted on an earlier connection has, after reconnecting, to show that it boots (its first
# CALL is a BootNotification) before the controller resynchronises it as a reconnect without boot.
BOOT_WAIT_S = 3.0
# The 2.0.1 device-model reports after a boot are spread over half a second per charger, ten minutes at most.
DEVICE_MODEL_SPREAD_PER_CHARGER_S = 0.5
DEVICE_MODEL_SPREAD_MAX_S = 600.0


def utc_now() -> datetime:
    return datetime.now(UTC)


@runtime_checkable
class ThermalFitSource(Protocol):
    """A recorder that also keeps the learnt thermal models (the store does; test doubles need not)."""

    def thermal_fits(self) -> list[VehicleFit]: ...


class Recorder(Protocol):
    """What the controller needs from the store (``csms_adapter.store``); all calls must be cheap on the event
    loop (the store batches and writes off the loop)."""

    async def start(self) -> None: ...

    def record_event(self, event: ev.Event) -> None: ...

    def record_tick(self, result: TickResult) -> None: ...

    def record_command(self, record: CommandRecord) -> None: ...

    def open_sessions(self) -> list[tuple[str, int, Session]]: ...

    def close_stale_session(self, charger_id: str, transaction_id: str, stopped_at: datetime, reason: str) -> None:
        ...

    def operator_state(self, now: datetime) -> OperatorState: ...

    @property
    def journal(self) -> StoreJournal: ...

    def billing_peak_changed(self, period: str, peak_kw: float, at: datetime) -> None: ...

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
        boot_wait_s: float = BOOT_WAIT_S,
    ) -> None:
        """``speed`` > 1 runs the control interval that much faster in wall time (with an accelerated ``clock``).
        ``boot_wait_s``: see ``BOOT_WAIT_S``."""
        self.site = site
        self.clock = clock
        self.host, self.port = split_listen(listen or site.ocpp.listen)
        self.env = env if env is not None else os.environ
        self.recorder = recorder
        shares = compute_shares(site)  # before any unit is known: each AC share counted as W (on one phase)
        self.monitor = Monitor(
            site.monitoring, clock=clock, chargers=[c.id for c in site.chargers],
            connectors={c.id: c.connectors for c in site.chargers},
            meter_limits={c.id: MeterLimits(c.max_power_kw, c.max_current_a) for c in site.chargers},
            history=recorder if isinstance(recorder, History) else None,
            evaluate_every_s=min(1.0, site.control.interval_s / speed / 5))
        self._judgement_pending = False  # a compliance judgement is scheduled after the current message
        self.live = LiveState(site, {cid: s.station_kw for cid, s in shares.items()},
                              ignore_grace_s=ignore_grace_s)
        self.live.out_of_service = self.monitor.connector_out_of_service
        self.monitor.last_traffic = self._last_traffic
        self.capabilities: dict[str, Capabilities] = {}
        self.accepted: set[str] = set()  # chargers whose BootNotification we accepted (reconnects skip boot)
        self.supervisor = Supervisor("controller")
        if guard_limits is None:
            guard_limits = GuardLimits(**dataclasses.asdict(site.ocpp.limits))
        self.server = OcppServer(site, self._context, self._connected, self._disconnected, env=self.env,
                                 limits=guard_limits)
        self.dispatcher = Dispatcher(site, self.live, self.server.links, self.capabilities,
                                     record=recorder.record_command if recorder is not None else None,
                                     default_kw={cid: s.default_kw for cid, s in shares.items()},
                                     clock=clock)
        self.failsafe = FailsafeKeeper(site, self.live, self.dispatcher, self.server.links, self.capabilities,
                                       self.accepted, self.supervisor, shares, clock=clock)
        self.loop = ControlLoop(site, self.live, self.dispatcher, clock, planner=planner, on_tick=self._ticked,
                                interval_real_s=site.control.interval_s / speed, debounce_real_s=debounce_real_s)
        # A vehicle that stops drawing brings the next tick forward, at most once per gap (docs/operations.md).
        self.stop_ticks = StopTicks(self.loop.request_tick, lambda: self.loop.last_started, clock,
                                    min_gap_s=min_gap_s(site.control.interval_s, site.ocpp.meter_interval_s),
                                    confirm_s=site.ocpp.meter_interval_s, real_per_site_s=1.0 / speed)
        self._offer_settle = live_judgements.follow_time(site.ocpp.meter_interval_s)
        self.setup = ChargerSetup(site, self.live, self.capabilities, self.failsafe, clock=clock,
                                  publish=self.publish, ready=self._ready, boot_wait_s=boot_wait_s,
                                  on_failsafe=self.monitor.failsafe_result,
                                  spread_s=min(DEVICE_MODEL_SPREAD_MAX_S,
                                               DEVICE_MODEL_SPREAD_PER_CHARGER_S * len(site.chargers)))
        self.availability = AvailabilityRequests(self.live, self.monitor, self.server.links, clock,
                                                 self.loop.request_tick)
        self._saved_peak: tuple[str, float] | None = None
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
            await self._restore(self.recorder)
            if isinstance(self.recorder, ThermalFitSource):
                self.loop.thermal.restore(self.recorder.thermal_fits())
        await self.monitor.start()
        self.port = await self.server.start(self.host, self.port)
        await self.loop.start()
        for service in self.services:
            await service.start()
        log.info("controller listening url=%s chargers=%d", self.url, len(self.site.chargers))

    async def _restore(self, recorder: Recorder) -> None:
        """Resume where the last run stopped: open sessions (the newest per connector; older ones ended while the
        controller was away and are closed), which chargers had booted (they reconnect without a
        BootNotification), the operator's inputs and the billing-period peak."""
        now = self.clock()
        superseded: list[tuple[str, Session, Session]] = []
        for charger_id, connector_id, session in recorder.open_sessions():
            if self.site.has_charger(charger_id):
                left_out = self.live.restore_session(charger_id, connector_id, session)
                if left_out is not None:
                    winner = self.live.charger(charger_id).connector(connector_id).session
                    assert winner is not None
                    superseded.append((charger_id, left_out, winner))
        self.accepted |= recorder.accepted_chargers() & {c.id for c in self.site.chargers}
        state = recorder.operator_state(now)
        self.live.inputs.restore(state.grid_cap, state.overrides, state.vehicle_data)
        self.live.inputs.journal = recorder.journal
        self.failsafe.restore(state.failsafe_held)
        self.failsafe.on_held = recorder.journal.failsafe_held_changed
        self.availability.restore(state.operator_spans, recorder.journal.operator_spans_changed)
        peak = self.loop.billing_peak
        if peak is not None:
            period = peak.period_of(now)
            if period in state.billing_peaks:
                peak.restore(now, state.billing_peaks[period])
                self._saved_peak = (period, peak.peak_kw)
        await recorder.start()
        for charger_id, old, new in superseded:
            log.info("charger=%s transaction=%s was still open under the newer %s; closing it", charger_id,
                     old.transaction_id, new.transaction_id)
            recorder.close_stale_session(charger_id, old.transaction_id, new.started_at,
                                         f"superseded by transaction {new.transaction_id}")

    async def stop(self) -> None:
        for service in reversed(self.services):
            await service.stop()
        self.stop_ticks.close()
        await self.loop.stop()
        await self.server.stop()
        await self.setup.close()
        self.failsafe.close()
        await self.supervisor.close()
        await self.monitor.stop()
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
        stop: VehicleStop | None = None
        if isinstance(event, ev.StatusChanged) and event.connector_id > 0:
            # A change of plug state brings a tick forward at once. Charging -> SuspendedEV keeps the plug as it was:
            # the vehicle stopped, and its tick is rate-limited (``stop_ticks``), since at a large depot vehicles
            # stop one after another and would otherwise keep the LP running back to back.
            known = self.live.chargers.get(event.charger_id)
            before = known.connectors.get(event.connector_id) if known is not None else None
            plugged_or_unplugged = (event.plug in (ev.PlugState.AVAILABLE, ev.PlugState.OCCUPIED)
                                    and (before is None or before.plug is not event.plug))
            stop = vehicle_stops.status_stop(self.live, event, before.status if before is not None else None)
        ending = self.live.session_ending(event)
        if isinstance(event, ev.MeterSample):
            # A flagged sample is kept in the raw store but never reaches SoC estimation or the LP.
            if self.monitor.sample_ok(event):
                draw_before_kw = vehicle_stops.draw_kw(self.live, event)
                self.live.apply(event)
                self._judge_readings_soon()
                stop = (vehicle_stops.meter_stop(self.live, event, draw_before_kw)
                        or vehicle_stops.offer_refused(self.live, event, self._offer_settle))
        else:
            service = self.monitor.service_changes
            self.live.apply(event)
            self.monitor.observe(event)
            if self.monitor.service_changes != service:
                # A connector faulted, became unavailable or recovered: its capacity moves at once.
                self.loop.request_tick("connector service changed")
        if self.recorder is not None:
            self.recorder.record_event(event)
            if ending is not None:
                _connector_id, session, reason = ending
                self.recorder.close_stale_session(event.charger_id, session.transaction_id, event.time, reason)
        if isinstance(event, _TICK_TRIGGERS) or plugged_or_unplugged:
            self.loop.request_tick(type(event).__name__)
        elif stop is not None:
            self.stop_ticks.stopped(stop)

    def _judge_readings_soon(self) -> None:
        """Judge limit compliance once the link has published every sample of the message being handled (its
        handler publishes them in one synchronous run), not once per sample."""
        if self._judgement_pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # published outside the event loop (a synchronous caller): judge now
            self.live.judge_readings()
            return
        self._judgement_pending = True
        loop.call_soon(self._judge_readings)

    def _judge_readings(self) -> None:
        self._judgement_pending = False
        self.live.judge_readings()

    def _last_traffic(self, charger_id: str) -> datetime | None:
        link = self.server.links.get(charger_id)
        return link.last_message_at if link is not None else None

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
            authorize=lambda token: authorization.decide(self.site, token, self.clock()),
            voltage_v=(self.site.charger(admission.charger_id).voltage_v if self.site.has_charger(admission.charger_id)
                       else self.site.voltage_v),
            registered=admission.charger_id in self.accepted,
        )

    async def _connected(self, link: Link, admission: Admission) -> None:
        self.dispatcher.forget(admission.charger_id)  # a new connection: re-send its live station max
        self.publish(ev.ChargerConnected(admission.charger_id, link.ocpp_version, self.clock(),
                                         admission.monitor_only))
        self.live.charger(admission.charger_id).set_up = False  # nothing is sent to it until its set-up ran
        if admission.charger_id in self.accepted and not admission.monitor_only:
            # Accepted on an earlier connection: it may reconnect without BootNotification (OCPP-J §5.4), or boot.
            self.supervisor.spawn(self.setup.after_reconnect(link, link.first_call),
                                  f"{admission.charger_id}:reconnect")

    async def _disconnected(self, link: Link) -> None:
        self.publish(ev.ChargerDisconnected(link.charger_id, self.clock(), link.close_reason, link.close_code))

    def _ticked(self, result: TickResult) -> None:
        self.last_tick = result
        self.monitor.control_findings(self._control_findings(), self.clock())
        self.availability.after_tick(self.clock())
        self.failsafe.follow_cap(result.snapshot.grid_cap_kw)
        if self.recorder is not None:
            self.recorder.record_tick(result)
            self._save_peak(result.time)
        for listener in self.tick_listeners:
            listener(result)

    def _save_peak(self, now: datetime) -> None:
        peak = self.loop.billing_peak
        if peak is None or self.recorder is None:
            return
        period = peak.period_of(now)
        if self._saved_peak is None or self._saved_peak != (period, peak.peak_kw):
            self._saved_peak = (period, peak.peak_kw)
            self.recorder.billing_peak_changed(period, peak.peak_kw, now)

    # ------------------------------------------------------------------------------ charger setup

    async def _after_boot(self, link: ChargerLink) -> None:
        """Runs after the Accepted BootNotification answer is on the wire (never before: some firmwares loop)."""
        self.accepted.add(link.charger_id)
        await self.setup.after_boot(link)

    def _ready(self, charger_id: str) -> None:
        self.live.charger(charger_id).set_up = True
        self.loop.request_tick("charger ready")

    def _control_findings(self) -> list[ControlFinding]:
        """Connectors in a session: does each obey its limit and accept its profile? (for the Monitor)"""
        findings = []
        now = self.clock()
        for charger_id, state in self.live.chargers.items():
            if not state.connected or not self.site.has_charger(charger_id):
                continue
            charger = self.site.charger(charger_id)
            for connector_id, connector in state.connectors.items():
                if connector.session is None or connector_id < 1:
                    continue
                ignoring = connector.session.ignoring_limit
                draw = self.live.measured_power_kw(charger, connector, now) if ignoring else None
                limit = connector.command.limit_kw if ignoring and connector.command is not None else None
                findings.append(ControlFinding(charger_id, connector_id, ignoring, connector.rejected, draw, limit))
        return findings
