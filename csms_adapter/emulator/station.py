"""One emulated charging station: the physics of its connectors, its profile stack, a queue of
messages for the CSMS, and a websocket connection that reconnects (without a new BootNotification,
OCPP-J §5.4) when the CSMS goes away. The OCPP dialect lives in ``v16``/``v201``; this module only
sees version-neutral events. Two jobs live beside it: ``station_connection`` (the websocket: connect, boot,
reconnect, drain the queue) and ``station_service`` (injected faults and ChangeAvailability).

Tasks per station: connection (connect, boot, receive), sender (drains the queue while online),
meter (advances the physics and samples each transaction every ``meter_interval_s`` emulated seconds from its
start: ``metering``) and heartbeat.
Physics keep running while offline, so an expired TxProfile makes the vehicle fall back to the
default and station-max profiles exactly as a real charger would when its controller dies.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection

from csms_adapter.emulator import station_connection, station_service
from csms_adapter.emulator.clock import EmulatorClock
from csms_adapter.emulator.events import (
    DEFAULT_MEASURANDS,
    ConnectorStatus,
    Heartbeat,
    MeterReading,
    MeterSample,
    Outbound,
    StatusChange,
    TransactionEnded,
    TransactionStarted,
)
from csms_adapter.emulator.faults import FaultInjection, MeterFaultState
from csms_adapter.emulator.metering import MeterSchedule
from csms_adapter.emulator.monitoring201 import Monitor
from csms_adapter.emulator.plant import ConnectorPlant, EVSpec, Quirks
from csms_adapter.emulator.profiles import ChargingProfile, InstallResult, ProfileStack, TxContext, water_level_a
from csms_adapter.emulator.station_connection import SUBPROTOCOL, Link, OcppVersion
from csms_adapter.tasks import cancel_and_wait
from optimizer.domain import Charger, RateUnit

log = logging.getLogger(__name__)
MAX_OUTBOX = 2_000  # queued messages kept while offline; the oldest meter readings go first
__all__ = ["SUBPROTOCOL", "CompositeResult", "ConnectorRuntime", "ConnectorView", "EmulatedCharger", "Link",
           "OcppVersion"]



@dataclass(slots=True)
class ConnectorRuntime:
    plant: ConnectorPlant
    status: ConnectorStatus = ConnectorStatus.AVAILABLE
    local_tx: str | None = None
    id_tag: str | None = None
    tx: TxContext | None = None  # known once the CSMS has an id for the transaction
    started_at: datetime | None = None
    outage: StatusChange | None = None  # an injected Faulted/Unavailable status with its codes (faults.py)
    inoperative: bool = False  # the CSMS made it Inoperative (ChangeAvailability): Unavailable, delivers nothing
    inoperative_pending: bool = False  # asked while a transaction ran: Inoperative once it ends ("Scheduled")
    meter: MeterFaultState = field(default_factory=MeterFaultState)


@dataclass(frozen=True, slots=True)
class ConnectorView:
    """The live physical state of one connector, for the terminal view and tests."""

    charger_id: str
    connector_id: int
    ocpp_version: str
    plugged: bool
    soc: float | None
    power_kw: float
    limit_kw: float  # what the charger offers now (composite limit, capped by hardware)
    limit_a: float
    temp_c: float | None
    energy_kwh: float
    status: str
    online: bool


@dataclass(frozen=True, slots=True)
class CompositeResult:
    start: datetime
    duration_s: float
    unit: RateUnit
    periods: tuple[tuple[float, float, int], ...]  # (offset s, limit in unit, phases)


class EmulatedCharger:
    """An OCPP 1.6J or 2.0.1 charging station with vehicles that obey its composite limit."""

    def __init__(
        self,
        charger: Charger,
        url: str,
        clock: EmulatorClock,
        *,
        version: OcppVersion,
        quirks: Quirks | None = None,
        password: str | None = None,
        meter_interval_s: float = 10.0,
        ambient_c: float = 20.0,
        response_timeout_s: float = 30.0,
        reconnect_s: tuple[float, float] = (0.2, 5.0),
        rng: random.Random | None = None,
        validate_schemas: bool = True,
        shed_superseded_readings: bool = False,
    ) -> None:
        self.charger = charger
        self.identity = charger.id
        self.url = f"{url.rstrip('/')}/{quote(charger.id, safe='')}"
        self.clock = clock
        self.version: OcppVersion = version
        self.quirks = quirks or Quirks()
        self.password = password
        self.meter_interval_s = meter_interval_s
        self.heartbeat_s = 300.0
        self.measurands: tuple[str, ...] = DEFAULT_MEASURANDS
        self.response_timeout_s = response_timeout_s
        # False only for load runs (``--no-schema-validation``): the emulator then stops checking what the CSMS
        # sends and what it sends itself against the OCPP schemas, which it otherwise does like a strict charger.
        self.validate_schemas = validate_schemas
        self.reconnect_s = reconnect_s
        # True only for runs faster than real time (``benchmarks.live``): a periodic reading still waiting to be sent
        # when a newer one of the same transaction is taken is dropped, so that transaction messages do not queue
        # behind readings a host could not send in time. Readings queued while offline are always kept.
        self.shed_superseded_readings = shed_superseded_readings
        self.superseded = 0  # readings dropped that way
        self.rng = rng or random.Random(charger.id)
        units = self.quirks.rate_units if not charger.dc else self.quirks.rate_units & {RateUnit.WATTS}
        self.profiles = ProfileStack(units or {RateUnit.WATTS}, replace_same_stack_level=version == "1.6")
        now = clock.now()
        self.connectors = {
            k: ConnectorRuntime(ConnectorPlant(charger, k, now, ambient_c)) for k in range(1, charger.connectors + 1)
        }
        self.seq_no = 0  # 2.0.1 TransactionEvent sequence, kept across reconnects
        self.event_id = 0  # 2.0.1 NotifyEvent eventId
        self.monitors: list[Monitor] = []  # 2.0.1 variable monitors the CSMS set
        self.next_monitor_id = 1
        self.boot_count = 0
        self.accepted = asyncio.Event()
        self.online = asyncio.Event()
        self.sent = 0  # queued events delivered (one may take two CALLs: Authorize + start)
        self.calls_answered = 0
        self.dropped = 0
        self.received_calls: list[str] = []  # actions the CSMS called, for tests and the view
        self.rtt_ms: deque[float] = deque(maxlen=10_000)  # wall round trip of answered messages (load tests)
        self._outbox: deque[tuple[Outbound, int]] = deque()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._ws: ClientConnection | None = None
        self._link: Link | None = None
        self._inflight: asyncio.Task[None] | None = None
        self._tx_counter = 0
        self._tx_ids: dict[str, str] = {}  # local transaction → the id the CSMS knows it by
        self._offline_until: datetime | None = None  # an injected outage of the connection (faults.py)

    # --------------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Start connecting, metering and heart-beating; returns at once."""
        for coro in (station_connection.connection_loop(self), station_connection.sender_loop(self),
                     self._meter_loop(), self._heartbeat_loop()):
            self._tasks.append(asyncio.create_task(coro, name=f"emu:{self.identity}"))

    async def stop(self) -> None:
        """Cancel every task and close the socket. Never hangs: a task that swallowed its cancellation (the
        ocpp library may, when a reply races the cancel) is cancelled again until it ends."""
        self._stopping = True
        self._wake.set()
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        if self._ws is not None:
            await self._ws.close()
            self._ws = None

    async def drop_connection(self) -> None:
        """Close the socket as a network blip would; the station reconnects without booting."""
        if self._ws is not None:
            await self._ws.close()

    async def go_offline(self, until: datetime) -> None:
        """Lose the connection and stay away until emulated time ``until`` (then reconnect without booting)."""
        self._offline_until = until
        await self.drop_connection()

    # ------------------------------------------------------------------------ in service (station_service)

    async def start_fault(self, fault: FaultInjection) -> None:
        """Make ``fault`` take effect now (see ``csms_adapter.emulator.faults``)."""
        await station_service.start_fault(self, fault)

    def end_fault(self, fault: FaultInjection) -> None:
        """``fault`` is over: the charger reports and behaves as it would have without it."""
        station_service.end_fault(self, fault)

    def change_availability(self, connector_id: int, operative: bool) -> str:
        """ChangeAvailability from the CSMS: Accepted, Scheduled or Rejected (``station_service``)."""
        return station_service.change_availability(self, connector_id, operative)

    def announce_availability(self, connector_id: int) -> None:
        """After a ChangeAvailability answer: the status notifications of what it changed."""
        station_service.announce_availability(self, connector_id)

    # ----------------------------------------------------------------------------------- sending

    @property
    def pending_messages(self) -> int:
        """Messages queued for the CSMS and not yet answered."""
        return len(self._outbox)

    def has_queued(self, local_tx: str | None = None) -> bool:
        """Transaction messages still queued for the CSMS (of ``local_tx``, or of any transaction)."""
        return any(getattr(event, "local_tx", None) is not None
                   and (local_tx is None or getattr(event, "local_tx", None) == local_tx)
                   for event, _ in self._outbox)

    @property
    def oldest_queued_at(self) -> datetime | None:
        """When the oldest message taken while online and still waiting for the CSMS was taken, in emulated time
        (None: none queued). What was queued while offline waits for the connection, not for the host."""
        for event, _ in self._outbox:
            if isinstance(event, MeterReading | TransactionStarted | TransactionEnded):
                if not event.offline:
                    return event.sample.at
            elif isinstance(event, StatusChange):
                return event.at
        return None

    def enqueue(self, event: Outbound) -> None:
        if self.shed_superseded_readings and isinstance(event, MeterReading):
            self._shed_superseded(event)
        if len(self._outbox) >= MAX_OUTBOX:
            # keep transaction boundaries; shed the oldest periodic reading
            for index, (queued, _) in enumerate(self._outbox):
                if isinstance(queued, MeterReading | Heartbeat):
                    del self._outbox[index]
                    self.dropped += 1
                    break
        self._outbox.append((event, 0))
        self._wake.set()

    def _shed_superseded(self, newer: MeterReading) -> None:
        """Drop the queued periodic readings of ``newer``'s transaction (never the one in flight)."""
        if newer.offline or newer.triggered or newer.local_tx is None:
            return
        in_flight = 1 if self._inflight is not None else 0
        kept: deque[tuple[Outbound, int]] = deque()
        for index, (queued, attempts) in enumerate(self._outbox):
            if (index >= in_flight and isinstance(queued, MeterReading) and not queued.offline and not queued.triggered
                    and queued.connector_id == newer.connector_id and queued.local_tx == newer.local_tx):
                self.superseded += 1
                continue
            kept.append((queued, attempts))
        self._outbox = kept


    # ------------------------------------------------------------------------------------ physics

    def _station_share(self) -> int:
        return max(1, sum(1 for rt in self.connectors.values() if rt.plant.plugged))

    def limit_a_at(self, connector_id: int, at: datetime) -> tuple[float | None, int]:
        """The per-phase current this connector may draw at ``at`` and the phases in use."""
        rt = self.connectors[connector_id]
        if rt.outage is not None or rt.inoperative:
            return 0.0, rt.plant.available_phases()  # a faulted or unavailable connector delivers nothing
        limit = self.profiles.limit_at(
            connector_id, at, rt.tx, voltage_v=self.charger.voltage_v, phases=rt.plant.available_phases()
        )
        if limit.station_a is None or not rt.plant.plugged:
            return limit.combined_a(self._station_share()), limit.phases
        others = [
            self.profiles.limit_at(cid, at, other.tx, voltage_v=self.charger.voltage_v,
                                   phases=other.plant.available_phases()).tx_or_default_a
            for cid, other in self.connectors.items() if cid != connector_id and other.plant.plugged
        ]
        level = water_level_a(limit.station_a, [limit.tx_or_default_a, *others])
        caps = [x for x in (limit.tx_or_default_a, level) if x is not None and x != math.inf]
        return (min(caps) if caps else None), limit.phases

    def advance(self, now: datetime | None = None) -> None:
        """Bring every connector's physics up to ``now`` (emulated)."""
        now = now or self.clock.now()
        for connector_id, rt in self.connectors.items():
            rt.plant.advance(now, partial(self.limit_a_at, connector_id),
                             ignores_limit=self.quirks.ignores_limit and rt.outage is None)

    def station_temp_c(self) -> float:
        """The station's own temperature: its surroundings (the emulator does not model its electronics heating)."""
        return next(iter(self.connectors.values())).plant.ambient_c

    def set_ambient_c(self, ambient_c: float, now: datetime | None = None) -> None:
        """The air temperature around the vehicles from ``now`` on (the physics up to ``now`` keep the old one)."""
        self.advance(now)
        for rt in self.connectors.values():
            rt.plant.ambient_c = ambient_c

    def sample(self, connector_id: int) -> MeterSample:
        plant = self.connectors[connector_id].plant
        reports = plant.ev.reports_soc if plant.ev is not None and plant.ev.reports_soc is not None else None
        soc = plant.soc if (self.quirks.reports_soc if reports is None else reports) else None
        return self.connectors[connector_id].meter.register(MeterSample(
            at=plant.updated_at,
            energy_wh=plant.energy_wh,
            power_w=plant.power_kw * 1000.0,
            current_a=plant.current_a,
            offered_a=plant.offered_a,
            offered_w=plant.offered_kw * 1000.0,
            voltage_v=self.charger.voltage_v,
            phases=plant.phases_used,
            soc=soc,
            wired_phases=0 if self.charger.dc else self.charger.phases,
        ))

    def _charging_state(self, rt: ConnectorRuntime) -> ConnectorStatus:
        if rt.outage is not None:
            return rt.outage.status
        if rt.inoperative:
            return ConnectorStatus.UNAVAILABLE
        plant = rt.plant
        if plant.ev is None:
            return ConnectorStatus.AVAILABLE
        if plant.power_kw > 0:
            return ConnectorStatus.CHARGING
        soc = plant.soc or 0.0
        if plant.ev.battery.acceptance_kw(soc) <= 0 or soc >= plant.ev.target_soc - 1e-9:
            return ConnectorStatus.SUSPENDED_EV
        return ConnectorStatus.SUSPENDED_EVSE

    async def _meter_loop(self) -> None:
        """Sampled readings when ``metering.MeterSchedule`` says they are due, the physics kept moving between."""
        schedule = MeterSchedule()
        while True:
            interval_s = self.meter_interval_s
            if interval_s <= 0:  # 1.6: 0 = no sampled data; keep the physics moving
                schedule.clear()
                await self.clock.sleep(60.0)
                self.advance()
                continue
            step = timedelta(seconds=interval_s)
            now = self.clock.now()
            running = {(cid, rt.local_tx): rt.started_at or now for cid, rt in self.connectors.items()
                       if rt.local_tx is not None}
            ready = schedule.due_now(running, now, step)
            for connector_id, _local_tx in ready:
                self.take_readings(triggered=False, connector_id=connector_id)
            if not ready:
                self.advance()
            await self.clock.sleep_until(schedule.next_at(now, step))

    def take_readings(self, *, triggered: bool, connector_id: int | None = None) -> None:
        """Advance the physics and queue one reading per connector in a transaction."""
        self.advance()
        offline = not self.online.is_set()
        for cid, rt in self.connectors.items():
            if rt.local_tx is None or (connector_id not in (None, cid)):
                continue
            state = self._charging_state(rt)
            if state is not rt.status:
                rt.status = state
                self.enqueue(StatusChange(cid, state, rt.plant.updated_at))
            reading = self.sample(cid) if triggered else rt.meter.reading(self.sample(cid))
            self.enqueue(MeterReading(cid, rt.local_tx, reading, state, triggered, offline))

    async def _heartbeat_loop(self) -> None:
        await self.accepted.wait()
        while True:
            await self.clock.sleep(self.heartbeat_s)
            if self.online.is_set():
                self.enqueue(Heartbeat())

    # -------------------------------------------------------------------------------- vehicles

    def new_local_tx(self) -> str:
        self._tx_counter += 1
        return f"{self.identity[:20]}-{self._tx_counter}-{self.rng.getrandbits(32):08x}"

    async def plug_in(self, connector_id: int, ev: EVSpec) -> None:
        """A vehicle plugs in and authorises with its id tag; a transaction starts."""
        rt = self.connectors[connector_id]
        if rt.plant.plugged:
            raise ValueError(f"{self.identity} connector {connector_id} is already occupied")
        now = self.clock.now()
        self.advance(now)
        rt.plant.plug(ev, now)
        rt.local_tx = self.new_local_tx()
        rt.id_tag = ev.id_tag
        rt.status = rt.outage.status if rt.outage is not None else (
            ConnectorStatus.UNAVAILABLE if rt.inoperative else ConnectorStatus.PREPARING)
        rt.started_at = now
        if self.version == "2.0.1":
            self.transaction_confirmed(rt.local_tx, rt.local_tx)  # 2.0.1 stations name transactions
        offline = not self.online.is_set()
        self.enqueue(self._status_change(connector_id, rt, now))
        self.enqueue(TransactionStarted(connector_id, rt.local_tx, ev.id_tag, self.sample(connector_id), offline))

    def transaction_confirmed(self, local_tx: str, transaction_id: str) -> None:
        """The CSMS knows ``local_tx`` as ``transaction_id`` (1.6 StartTransaction.conf)."""
        self._tx_ids[local_tx] = transaction_id
        for rt in self.connectors.values():
            if rt.local_tx == local_tx:
                rt.tx = TxContext(transaction_id, rt.started_at or rt.plant.updated_at)

    def csms_transaction_id(self, local_tx: str) -> str | None:
        return self._tx_ids.get(local_tx)

    def forget_transaction(self, local_tx: str) -> None:
        """Called once the end of a transaction reached the CSMS."""
        self._tx_ids.pop(local_tx, None)

    async def unplug(self, connector_id: int) -> None:
        """The vehicle leaves: the transaction ends and its TxProfiles are dropped."""
        rt = self.connectors[connector_id]
        if rt.local_tx is None or rt.id_tag is None:
            return
        now = self.clock.now()
        self.advance(now)
        self.enqueue(
            TransactionEnded(connector_id, rt.local_tx, rt.id_tag, self.sample(connector_id), not self.online.is_set())
        )
        rt.plant.unplug(now)
        self.profiles.end_transaction(connector_id)
        rt.local_tx = rt.id_tag = None
        rt.tx = rt.started_at = None
        if rt.inoperative_pending:  # a Scheduled ChangeAvailability takes effect now the transaction is over
            rt.inoperative, rt.inoperative_pending = True, False
        rt.status = rt.outage.status if rt.outage is not None else (
            ConnectorStatus.UNAVAILABLE if rt.inoperative else ConnectorStatus.AVAILABLE)
        self.enqueue(self._status_change(connector_id, rt, now))

    def trigger(self, message: str, connector_id: int | None) -> None:
        """Send what a TriggerMessage asked for (called after the answer went out)."""
        if message in ("MeterValues", "TransactionEvent"):
            self.take_readings(triggered=True, connector_id=connector_id)
        elif message == "StatusNotification":
            now = self.clock.now()
            for cid, rt in self.connectors.items():
                if connector_id in (None, cid):
                    self.enqueue(self._status_change(cid, rt, now))
        elif message == "Heartbeat":
            self.enqueue(Heartbeat())

    def _queue_all_status(self) -> None:
        now = self.clock.now()
        for cid, rt in self.connectors.items():
            self.enqueue(self._status_change(cid, rt, now))

    @staticmethod
    def _status_change(connector_id: int, rt: ConnectorRuntime, at: datetime) -> StatusChange:
        """The connector's status now, with the error code of an injected fault while it lasts."""
        if rt.outage is not None:
            return dataclasses.replace(rt.outage, at=at)
        if rt.inoperative:
            return StatusChange(connector_id, ConnectorStatus.UNAVAILABLE, at)
        return StatusChange(connector_id, rt.status, at)

    # ------------------------------------------------------------------ smart charging (handlers)

    def active_transactions(self) -> dict[int, TxContext]:
        return {cid: rt.tx for cid, rt in self.connectors.items() if rt.tx is not None}

    def install_profile(self, profile: ChargingProfile) -> InstallResult:
        """Advance physics under the old limit, then install (a handler calls this)."""
        if profile.purpose.value == "TxProfile" and self.quirks.rejects_tx_profile:
            return InstallResult(False, "TxProfile not supported")
        self.advance()
        return self.profiles.install(profile, self.active_transactions())

    def clear_profiles(self, **criteria: object) -> int:
        self.advance()
        return self.profiles.clear(**criteria)  # type: ignore[arg-type]

    def default_unit(self) -> RateUnit:
        return RateUnit.AMPS if RateUnit.AMPS in self.profiles.units else RateUnit.WATTS

    def composite(self, connector_id: int, duration_s: float, unit: RateUnit | None) -> CompositeResult | None:
        """GetCompositeSchedule: None when the connector does not exist or the unit is unsupported."""
        unit = unit or self.default_unit()
        if unit not in self.profiles.units or (connector_id != 0 and connector_id not in self.connectors):
            return None
        start = self.clock.now()
        rt = self.connectors.get(connector_id)
        phases = rt.plant.available_phases() if rt is not None else (3 if self.charger.dc else self.charger.phases)
        hardware_a = self.charger.max_current_a * (1 if connector_id else len(self.connectors))
        raw = self.profiles.composite_schedule(
            connector_id,
            start,
            duration_s,
            rt.tx if rt is not None else None,
            voltage_v=self.charger.voltage_v,
            phases=phases,
            hardware_a=hardware_a,
        )
        periods = []
        for offset_s, current_a, n in raw:
            value = current_a if unit is RateUnit.AMPS else current_a * self.charger.voltage_v * n
            periods.append((round(offset_s), int(value * 10) / 10.0, n))  # one decimal, rounded down
        return CompositeResult(start, duration_s, unit, tuple(periods))

    # ---------------------------------------------------------------------------------- view

    def view(self) -> list[ConnectorView]:
        online = self.online.is_set()
        out = []
        for cid, rt in self.connectors.items():
            plant = rt.plant
            out.append(
                ConnectorView(
                    charger_id=self.identity,
                    connector_id=cid,
                    ocpp_version=self.version,
                    plugged=plant.plugged,
                    soc=plant.soc,
                    power_kw=plant.power_kw,
                    limit_kw=plant.offered_kw,
                    limit_a=plant.offered_a,
                    temp_c=plant.temp_c,
                    energy_kwh=plant.energy_wh / 1000.0,
                    status=rt.status.value,
                    online=online,
                )
            )
        return out
