"""One emulated charging station: the physics of its connectors, its profile stack, a queue of
messages for the CSMS, and a websocket connection that reconnects (without a new BootNotification,
OCPP-J §5.4) when the CSMS goes away. The OCPP dialect lives in ``v16``/``v201``; this module only
sees version-neutral events.

Tasks per station: connection (connect, boot, receive), sender (drains the queue while online),
meter (advances the physics and samples every ``meter_interval_s`` emulated seconds) and heartbeat.
Physics keep running while offline, so an expired TxProfile makes the vehicle fall back to the
default and station-max profiles exactly as a real charger would when its controller dies.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import math
import random
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Literal, Protocol
from urllib.parse import quote

from ocpp.exceptions import OCPPError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from csms_adapter.emulator.clock import EmulatorClock
from csms_adapter.emulator.events import (
    DEFAULT_MEASURANDS,
    ConnectorStatus,
    DeviceProblem,
    Heartbeat,
    MeterReading,
    MeterSample,
    Outbound,
    StatusChange,
    TransactionEnded,
    TransactionStarted,
)
from csms_adapter.emulator.faults import FaultInjection, FaultKind, MeterFaultState
from csms_adapter.emulator.monitoring201 import Monitor
from csms_adapter.emulator.plant import ConnectorPlant, EVSpec, Quirks
from csms_adapter.emulator.profiles import ChargingProfile, InstallResult, ProfileStack, TxContext, water_level_a
from csms_adapter.tasks import cancel_and_wait
from optimizer.domain import Charger, RateUnit

log = logging.getLogger(__name__)
OcppVersion = Literal["1.6", "2.0.1"]
SUBPROTOCOL: dict[str, str] = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1"}
MAX_OUTBOX = 2_000  # queued messages kept while offline; the oldest meter readings go first
SEND_ATTEMPTS = 3


class Link(Protocol):
    """One OCPP connection in one dialect (a ``ocpp`` ChargePoint subclass)."""

    async def start(self) -> None: ...
    async def boot(self) -> tuple[str, int]: ...
    async def send(self, event: Outbound) -> None: ...


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
        self.reconnect_s = reconnect_s
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
        for coro in (self._connection_loop(), self._sender_loop(), self._meter_loop(), self._heartbeat_loop()):
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

    # ------------------------------------------------------------------------------- injected faults

    async def start_fault(self, fault: FaultInjection) -> None:
        """Make ``fault`` take effect now (see ``csms_adapter.emulator.faults``)."""
        now = self.clock.now()
        self.advance(now)  # the physics up to now ran without it
        if fault.kind is FaultKind.OFFLINE:
            # No duration: away for good (ten emulated years is as good and keeps the sleep arithmetic finite).
            await self.go_offline(now + timedelta(seconds=fault.duration_s if fault.duration_s is not None else 3e8))
        elif fault.kind is FaultKind.IGNORE_LIMIT:
            self.quirks = dataclasses.replace(self.quirks, ignores_limit=True)
        elif fault.kind is FaultKind.METER_GLITCH:
            rt = self.connectors[fault.connector_id]
            rt.meter.start(fault.glitch, rt.plant.energy_wh)
        else:
            rt = self.connectors[fault.connector_id]
            status = ConnectorStatus.FAULTED if fault.kind is FaultKind.FAULT else ConnectorStatus.UNAVAILABLE
            code = fault.code if fault.kind is FaultKind.FAULT else "NoError"
            rt.outage = StatusChange(fault.connector_id, status, now, code, fault.vendor_code, fault.info)
            rt.status = status
            self.enqueue(rt.outage)
            if self.version == "2.0.1" and fault.kind is FaultKind.FAULT:
                self.enqueue(DeviceProblem(fault.connector_id, True, now, fault.vendor_code or fault.code,
                                           fault.info or fault.code))

    def end_fault(self, fault: FaultInjection) -> None:
        """``fault`` is over: the charger reports and behaves as it would have without it."""
        now = self.clock.now()
        self.advance(now)
        if fault.kind is FaultKind.OFFLINE:
            self._offline_until = None  # the connection loop is already waiting to reconnect
        elif fault.kind is FaultKind.IGNORE_LIMIT:
            self.quirks = dataclasses.replace(self.quirks, ignores_limit=False)
        elif fault.kind is FaultKind.METER_GLITCH:
            self.connectors[fault.connector_id].meter.stop()
        else:
            rt = self.connectors[fault.connector_id]
            rt.outage = None
            rt.status = self._charging_state(rt) if rt.local_tx is not None else (
                ConnectorStatus.UNAVAILABLE if rt.inoperative else ConnectorStatus.AVAILABLE)
            self.enqueue(StatusChange(fault.connector_id, rt.status, now))
            if self.version == "2.0.1" and fault.kind is FaultKind.FAULT:
                self.enqueue(DeviceProblem(fault.connector_id, False, now, fault.vendor_code or fault.code,
                                           fault.info or fault.code))

    # ------------------------------------------------------------------------------- connection

    def _headers(self) -> dict[str, str]:
        if self.password is None:
            return {}
        token = base64.b64encode(f"{self.identity}:{self.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def _make_link(self, ws: ClientConnection) -> Link:
        if self.version == "1.6":
            from csms_adapter.emulator.v16 import V16Link

            return V16Link(self, ws)
        from csms_adapter.emulator.v201 import V201Link

        return V201Link(self, ws)

    async def _connection_loop(self) -> None:
        delay_s = self.reconnect_s[0]
        while True:
            if self._offline_until is not None and self._offline_until > self.clock.now():
                await self.clock.sleep_until(self._offline_until)
            try:
                async with connect(
                    self.url,
                    subprotocols=[Subprotocol(SUBPROTOCOL[self.version])],
                    additional_headers=self._headers(),
                    open_timeout=10,
                    ping_interval=20,
                    ping_timeout=20,
                    close_timeout=2,
                ) as ws:
                    if ws.subprotocol is None:
                        log.warning("charger=%s csms chose no subprotocol; retrying", self.identity)
                    else:
                        delay_s = self.reconnect_s[0]
                        await self._serve(ws)
            except (OSError, InvalidHandshake, InvalidStatus, ConnectionClosed, TimeoutError) as exc:
                log.debug("charger=%s connection failed: %r", self.identity, exc)
            self.online.clear()
            self._ws = None
            if self._inflight is not None:
                self._inflight.cancel()
            await asyncio.sleep(delay_s * (0.5 + self.rng.random()))
            delay_s = min(self.reconnect_s[1], delay_s * 2)

    async def _serve(self, ws: ClientConnection) -> None:
        self._ws = ws
        link = self._make_link(ws)
        self._link = link
        receiver = asyncio.create_task(link.start())
        try:
            if not self.accepted.is_set():
                await self._boot(link, receiver)
            else:
                self._queue_all_status()  # resync the CSMS after a reconnect, without booting again
            self.online.set()
            self._wake.set()
            await receiver
        except ConnectionClosed:
            pass
        finally:
            self.online.clear()
            self._link = None
            # The receiver may swallow one cancellation (the library, when a frame races it): cancel until it ends.
            await cancel_and_wait([receiver])
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise asyncio.CancelledError  # stop(): never swallow our own cancellation

    async def _boot(self, link: Link, receiver: asyncio.Task[None]) -> None:
        while not receiver.done():
            self.boot_count += 1
            status, interval_s = await link.boot()
            if status == "Accepted":
                if interval_s > 0:
                    self.heartbeat_s = float(interval_s)
                self.accepted.set()
                self._queue_all_status()
                return
            await self.clock.sleep(interval_s if interval_s > 0 else 30.0)
        await receiver  # raises the ConnectionClosed that ended it

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

    def enqueue(self, event: Outbound) -> None:
        if len(self._outbox) >= MAX_OUTBOX:
            # keep transaction boundaries; shed the oldest periodic reading
            for index, (queued, _) in enumerate(self._outbox):
                if isinstance(queued, MeterReading | Heartbeat):
                    del self._outbox[index]
                    self.dropped += 1
                    break
        self._outbox.append((event, 0))
        self._wake.set()

    async def _sender_loop(self) -> None:
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            while self._outbox and self.online.is_set() and self._ws is not None:
                event, attempts = self._outbox[0]
                link = self._link
                if link is None:
                    break
                self._inflight = asyncio.create_task(link.send(event))
                started = time.perf_counter()
                try:
                    await self._inflight
                    _raise_if_cancelling()
                    self.rtt_ms.append((time.perf_counter() - started) * 1000.0)
                    self._outbox.popleft()
                    self.sent += 1
                except asyncio.CancelledError:
                    _raise_if_cancelling()
                    break  # the connection dropped under the call: resend after reconnect
                except (ConnectionClosed, OSError):
                    break
                except (TimeoutError, OCPPError) as exc:
                    if attempts + 1 >= SEND_ATTEMPTS or isinstance(exc, OCPPError):
                        self._outbox.popleft()
                        self.dropped += 1
                        log.warning("charger=%s dropped %s after %r", self.identity, type(event).__name__, exc)
                    else:
                        self._outbox[0] = (event, attempts + 1)
                finally:
                    self._inflight = None

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
        while True:
            if self.meter_interval_s <= 0:  # 1.6: 0 = no sampled data; keep the physics moving
                await self.clock.sleep(60.0)
                self.advance()
                continue
            await self.clock.sleep(self.meter_interval_s)
            self.take_readings(triggered=False)

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

    def change_availability(self, connector_id: int, operative: bool) -> str:
        """ChangeAvailability from the CSMS for one connector or (0) all: Accepted, Scheduled (Inoperative asked
        while a transaction runs: applied when it ends, OCPP 1.6 §5.2 / 2.0.1 G03) or Rejected (no such
        connector). The status notifications go out after the answer (``announce_availability``)."""
        if connector_id != 0 and connector_id not in self.connectors:
            return "Rejected"
        self.advance()  # the physics up to now ran under the old availability
        scheduled = False
        for cid, rt in self.connectors.items():
            if connector_id not in (0, cid):
                continue
            if operative:
                rt.inoperative = rt.inoperative_pending = False
            elif rt.local_tx is not None:
                rt.inoperative_pending = scheduled = True
            else:
                rt.inoperative = True
        return "Scheduled" if scheduled else "Accepted"

    def announce_availability(self, connector_id: int) -> None:
        """After a ChangeAvailability answer: the status of each connector it touched, where that changed."""
        now = self.clock.now()
        for cid, rt in self.connectors.items():
            if connector_id not in (0, cid):
                continue
            state = self._charging_state(rt) if rt.local_tx is not None else (
                rt.outage.status if rt.outage is not None
                else ConnectorStatus.UNAVAILABLE if rt.inoperative else ConnectorStatus.AVAILABLE)
            if state is not rt.status:
                rt.status = state
                self.enqueue(self._status_change(cid, rt, now))

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


def _raise_if_cancelling() -> None:
    """Re-raise a cancellation of the current task that an awaited inner task swallowed (the inner task ended
    normally, so the outer ``await`` returned instead of raising): stop() must not wait for ever."""
    current = asyncio.current_task()
    if current is not None and current.cancelling():
        raise asyncio.CancelledError
