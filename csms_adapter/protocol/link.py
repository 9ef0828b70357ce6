"""The version-neutral face of one connected charger, and what the OCPP modules share.

``ChargerLink`` is all the rest of depotctl may call on a charger; ``ocpp16.Ocpp16Link`` and
``ocpp201.Ocpp201Link`` implement it. ``call_charger`` is the one place where library exceptions become
depotctl errors and where the per-charger lock lives, so that no two calls are ever in flight to one charger
(OCPP-J §4.1.1) whoever calls: dispatch, fail-safe setup or configuration.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from ocpp.exceptions import NotImplementedError as OcppNotImplemented
from ocpp.exceptions import NotSupportedError as OcppNotSupported
from ocpp.exceptions import OCPPError
from ocpp.exceptions import ValidationError as OcppValidationError
from ocpp.messages import Call, CallError, CallResult, MessageType
from websockets.exceptions import ConnectionClosed

from csms_adapter.errors import ChargerError, ChargerTimeout
from csms_adapter.protocol import ocpp_tuning
from csms_adapter.protocol.authorization import ACCEPT_ALL, TokenDecision
from csms_adapter.protocol.events import Event
from csms_adapter.protocol.telemetry import Normalised
from csms_adapter.tasks import cancel_and_wait
from optimizer.domain import RateUnit

_wire_log = logging.getLogger("depotctl.ocpp.wire")
log = logging.getLogger("depotctl.link")

# Fixed profile ids: a profile is replaced by re-sending its id, never accumulated (K01.FR.05/39).
STATION_MAX_PROFILE_ID = 1
TX_DEFAULT_PROFILE_ID = 2
TX_PROFILE_ID_BASE = 100  # + connector id
LIVE_STATION_MAX_PROFILE_ID = 3
TX_STACK_LEVEL = 1
FAILSAFE_STACK_LEVEL = 0
# The live station max (the charger's planned total) sits one level above the permanent fail-safe share and lapses
# with the TxProfiles, so the LP can give a charger more than its share while the controller lives.
LIVE_STATION_MAX_STACK_LEVEL = 1
# Fail-safe profiles start long before any charger clock could be wrong and never end (docs/architecture.md, "OCPP rules the code follows").
FAILSAFE_START = datetime(2020, 1, 1, tzinfo=UTC)
# The live TxProfile starts a little in the past so a replacement never leaves a gap of default behaviour.
TX_START_BACKDATE_S = 5

# What the optimizer needs sampled during a transaction (Temperature is 1.6 only; ocpp16 adds it).
SAMPLED_MEASURANDS: tuple[str, ...] = (
    "Energy.Active.Import.Register",
    "Power.Active.Import",
    "Current.Import",
    "Current.Offered",
    "SoC",
)

Clock = Callable[[], datetime]
EventSink = Callable[[Event], None]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """Smart-charging abilities read after boot. Unknown stays at the permissive default."""

    smart_charging: bool = True
    rate_units: frozenset[RateUnit] = frozenset({RateUnit.AMPS, RateUnit.WATTS})
    max_stack_level: int | None = None
    max_periods: int | None = None
    max_profiles: int | None = None


@dataclass(frozen=True, slots=True)
class SamplingResult:
    measurands: tuple[str, ...]
    interval_s: int | None  # None: the charger refused the interval


@dataclass(frozen=True, slots=True)
class TransactionStatus:
    """2.0.1 GetTransactionStatus: ``ongoing`` None when the station did not say; ``queued``: it still holds
    messages of that transaction for us (its end may be among them)."""

    ongoing: bool | None
    queued: bool


class ChargerLink(Protocol):
    """One connected charger, whatever its OCPP version. Every method raises ``ChargerError`` (or a subclass)
    and nothing else; the profile setters raise ``ProfileRejected`` when the charger says no."""

    charger_id: str
    ocpp_version: str

    @property
    def connected(self) -> bool: ...

    async def set_tx_limit(
        self, connector_id: int, limit: float, unit: RateUnit, phases: int, valid_s: float, transaction_id: str,
        now: datetime,
    ) -> None: ...

    async def set_station_max(self, limit: float, unit: RateUnit, phases: int) -> None: ...

    async def set_live_station_max(self, limit: float, unit: RateUnit, phases: int, valid_s: float,
                                   now: datetime) -> None: ...

    async def set_default_profile(self, limit: float, unit: RateUnit, phases: int) -> None: ...

    async def clear_tx_profiles(self) -> bool: ...

    async def configure_sampling(self, measurands: tuple[str, ...], interval_s: int) -> SamplingResult: ...

    async def read_capabilities(self) -> Capabilities: ...

    async def composite_limit(self, connector_id: int, duration_s: int, unit: RateUnit) -> float | None:
        """The limit the charger reports for the end of the next ``duration_s`` (after shorter-lived profiles
        lapse); None when it reports no schedule."""
        ...

    async def trigger_status(self) -> None: ...

    async def change_availability(self, connector_id: int, operative: bool) -> str:
        """ChangeAvailability of one connector (0: the whole charger): the charger's answer, one of
        ``AVAILABILITY_ANSWERS`` (Scheduled: it takes effect once the running transaction ends)."""
        ...

    async def transaction_status(self, transaction_id: str) -> TransactionStatus | None:
        """What the charger says of a transaction; None when the version has no such question (1.6)."""
        ...

    async def configure_monitoring(self) -> None:
        """After boot: read the device model and set event monitors where the version has them (2.0.1)."""
        ...

    async def close(self, reason: str) -> None: ...


class Supervisor:
    """Owns background tasks: keeps a reference (asyncio only keeps weak ones), logs their failures (ocpp's
    ``@after`` would lose them) and cancels the rest on shutdown."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.name}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("task=%s failed: %s", task.get_name(), exc, exc_info=exc)

    async def close(self) -> None:
        await cancel_and_wait(list(self._tasks))

    def __len__(self) -> int:
        return len(self._tasks)


class HandlingStats:
    """How many charger-initiated CALLs were handled and how long each took, from the library getting the frame
    to the answer being written (a cheap hook for the load benchmark and metrics). Keeps the last ``keep``
    latencies, so memory stays bounded on a long run."""

    def __init__(self, keep: int = 200_000) -> None:
        self.handled = 0
        self.latencies_ms: deque[float] = deque(maxlen=keep)

    def record(self, elapsed_ms: float) -> None:
        self.handled += 1
        self.latencies_ms.append(elapsed_ms)

    def percentile_ms(self, q: float) -> float | None:
        """The ``q`` quantile (0..1, nearest rank) of the kept latencies; None before any message."""
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def is_call_frame(raw_msg: object) -> bool:
    """A CALL (message type 2), i.e. a request from the charger rather than an answer to one of ours. Never
    raises: a hostile charger may send binary or garbage frames, which the library then answers."""
    if not isinstance(raw_msg, str):
        return False
    head = raw_msg.lstrip()[:4].replace(" ", "")
    return head.startswith("[2")


@dataclass
class LinkContext:
    """What a charger connection needs from the controller. ``next_transaction_id`` numbers 1.6 transactions
    (the CSMS assigns them there); ``on_accepted`` runs after a BootNotification is answered Accepted.
    ``registered``: the charger's boot was accepted, on this connection or an earlier one (a reconnecting charger
    need not boot again, OCPP-J §5.4); until then every CALL but BootNotification is refused (``LinkPlumbing``)."""

    charger_id: str
    sink: EventSink
    clock: Clock
    supervisor: Supervisor
    call_timeout_s: float
    heartbeat_s: int
    next_transaction_id: Callable[[], int]
    monitor_only: bool = False
    on_accepted: Callable[[ChargerLink], Coroutine[Any, Any, None]] | None = None
    stats: HandlingStats | None = None
    # The id-token rule (``authorization.decide`` bound to the site); the default accepts every token.
    authorize: Callable[[str], TokenDecision] = lambda _token: ACCEPT_ALL
    voltage_v: float = 230.0  # the charger's phase voltage, to compare limits given in A and in W
    registered: bool = False


def utc_iso(when: datetime) -> str:
    """OCPP date-time: UTC with a Z and millisecond precision."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class WireCall:
    """A CALL whose payload depotctl builds in its wire form (camelCase, no None): the charging profiles, one or
    two per charger and tick. It is sent as it is, because the library's dataclass-to-dict conversion and its
    schema check of the request took about 260 of the 370 µs a profile call cost the controller; the shapes are
    checked against the schemas in tests instead (and by every charger). The answer is still schema-checked; it
    comes back as the charger's camelCase dict."""

    action: str
    payload: dict[str, Any]


async def _send_wire(cp: Any, version: str, wire: WireCall) -> dict[str, Any]:
    # ChargePoint.call() without its conversions: the same internals, in the same order (ocpp 2.1.0; a release
    # that renames them fails every profile test at once, not silently).
    message = Call(str(cp._unique_id_generator()), wire.action, wire.payload)
    async with cp._call_lock:  # one CALL in flight per connection, whoever sends it
        await cp._send(message.to_json())
        response = await _answer_to(cp, message.unique_id)
    if response.message_type_id == MessageType.CallError:
        raise response.to_exception()
    response.action = wire.action
    await _validate_answer(response, version)
    return dict(response.payload)


async def _validate_answer(response: CallResult, version: str) -> None:
    # The profile answers of a thousand chargers are a handful of distinct payloads ({"status": "Accepted"}, ...):
    # the check that remembers payloads already found valid (bounded; an invalid one is checked every time) takes
    # the library's jsonschema check off most calls.
    await ocpp_tuning.validate_payload(response, version)


async def _answer_to(cp: Any, unique_id: str) -> Any:
    """The answer to our CALL ``unique_id`` from the library's response queue. The library's own wait puts each
    get in ``asyncio.wait_for`` (a task and a timer per call); ``call_charger``, the only caller, bounds this wait
    with its own timeout. An answer to an older CALL (one that timed out) is dropped, as the library does."""
    while True:
        response = await cp._response_queue.get()
        if response.unique_id == unique_id:
            return response
        _wire_log.warning("charger=%s: dropped an answer to an earlier call (id %.36s)", cp.id, response.unique_id)


class ConnectionEnd:
    """Set once, when a charger's connection ends. Each call races its future: a future shared by every call of
    the connection, where an ``asyncio.Event`` would need a task per call to wait on it (and one to cancel)."""

    def __init__(self) -> None:
        self._ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def set(self) -> None:
        if not self._ended.done():
            self._ended.set_result(None)

    def is_set(self) -> bool:
        return self._ended.done()

    @property
    def future(self) -> asyncio.Future[None]:
        return self._ended


async def call_charger(
    cp: Any, lock: asyncio.Lock, closed: ConnectionEnd, charger_id: str, payload: Any, timeout_s: float,
) -> Any:
    """Send one CALL and return its result; map every library failure to a ``ChargerError``.

    ``payload`` is a library call dataclass (the result is the matching ``call_result`` dataclass) or a
    ``WireCall`` (the result is the answer's payload as sent). The library's ``call()`` does not notice a dropped
    connection and would wait its whole timeout (docs/architecture.md, "OCPP rules the code follows"), so the
    call races ``closed``, which the server sets when the socket goes away."""
    action = payload.action if isinstance(payload, WireCall) else type(payload).__name__
    async with lock:
        if closed.is_set():
            raise ChargerError(charger_id, action, "not connected")
        sending = (_send_wire(cp, cp.ocpp_version, payload) if isinstance(payload, WireCall)
                   else cp.call(payload, suppress=False))
        call = asyncio.ensure_future(sending)
        gone = closed.future  # shared by the connection's calls: waited on, never cancelled here
        try:
            done, _ = await asyncio.wait({call, gone}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
            if call in done:
                return call.result()
            if gone in done:
                raise ChargerError(charger_id, action, "connection closed")
            raise ChargerTimeout(charger_id, action, f"no answer within {timeout_s:g} s")
        except TimeoutError as exc:
            raise ChargerTimeout(charger_id, action, f"no answer within {timeout_s:g} s") from exc
        except (OcppNotSupported, OcppNotImplemented) as exc:
            raise ChargerError(charger_id, action, f"not supported by the charger: {exc.description}") from exc
        except OCPPError as exc:
            raise ChargerError(charger_id, action, f"{type(exc).__name__}: {exc.description}") from exc
        except OcppValidationError as exc:
            raise ChargerError(charger_id, action, f"invalid message: {exc}") from exc
        except ConnectionClosed as exc:
            raise ChargerError(charger_id, action, "connection closed") from exc
        finally:
            # The library's call may swallow one cancellation when its answer races it: cancel until it ends.
            await cancel_and_wait([call])


class LinkPlumbing:
    """What the 1.6 and 2.0.1 links share, mixed in before the version's ``ocpp`` ChargePoint: the context, one
    call in flight at a time (``call_charger``), the closed flag, event emission and handling-latency stats."""

    ctx: LinkContext
    charger_id: str
    _connection: Any

    def __init__(self, ctx: LinkContext, connection: Any) -> None:
        # The library's own timeout is a backstop; call_charger's asyncio.timeout fires first.
        super().__init__(ctx.charger_id, connection,  # type: ignore[call-arg]
                         response_timeout=ctx.call_timeout_s + 5, logger=_wire_log)
        self.ctx = ctx
        self.charger_id = ctx.charger_id
        self._lock = asyncio.Lock()
        self._gone = ConnectionEnd()
        # The action of the charger's first CALL on this connection: tells a reconnect that boots from one that
        # does not, before anything is sent to the charger.
        self.first_call: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        # Why the connection ended and its websocket close code (set by the server before it reports the loss).
        self.close_reason: str | None = None
        self.close_code: int | None = None
        self.last_message_at: datetime | None = None

    def _emit(self, event: Event) -> None:
        self.ctx.sink(event)

    def _emit_all(self, data: Normalised) -> None:
        for sample in data.samples:
            self.ctx.sink(sample)
        for rejected in data.rejected:
            self.ctx.sink(rejected)

    async def route_message(self, raw_msg: str | bytes) -> None:
        self.last_message_at = self.ctx.clock()  # any frame is a sign of life (heartbeats publish no event)
        route = super().route_message  # type: ignore[misc]
        if not is_call_frame(raw_msg):
            await route(raw_msg)
            return
        if not self.first_call.done() or not self.ctx.registered:
            head = _call_head(raw_msg)
            if head is not None:
                unique_id, action = head
                if not self.first_call.done():
                    self.first_call.set_result(action)
                if not self.ctx.registered and action != "BootNotification":
                    await self._refuse_before_boot(unique_id, action)
                    return
        if self.ctx.stats is None:
            await route(raw_msg)
            return
        started = time.perf_counter()
        await route(raw_msg)  # returns once the answer is written (after-hooks are only scheduled)
        self.ctx.stats.record((time.perf_counter() - started) * 1000.0)

    async def _refuse_before_boot(self, unique_id: str, action: str) -> None:
        # OCPP 2.0.1 B02.FR.09 / B03.FR.07 and OCPP-J 1.6 §4.2.3 with errata 3.8: a charger whose boot was not
        # accepted gets SecurityError for anything but BootNotification (docs/operations-restart.md).
        log.warning("charger=%s sent %s before its BootNotification was accepted; answered SecurityError",
                    self.charger_id, action)
        error = CallError(unique_id, "SecurityError", "BootNotification not yet accepted", {})
        await self._send(error.to_json())  # type: ignore[attr-defined]

    @property
    def connected(self) -> bool:
        return not self._gone.is_set()

    def mark_closed(self) -> None:
        self._gone.set()

    async def _call(self, payload: Any) -> Any:
        return await call_charger(self, self._lock, self._gone, self.charger_id, payload, self.ctx.call_timeout_s)

    async def close(self, reason: str) -> None:
        self._gone.set()
        await self._connection.close(code=1000, reason=reason)


def _call_head(raw_msg: str | bytes) -> tuple[str, str] | None:
    """(unique id, action) of a CALL frame; None when the frame is malformed (the library answers those)."""
    try:
        frame = json.loads(raw_msg)
    except (ValueError, UnicodeDecodeError):
        return None
    if (isinstance(frame, list) and len(frame) >= 3 and frame[0] == MessageType.Call
            and isinstance(frame[1], str) and isinstance(frame[2], str)):
        return frame[1], frame[2]
    return None


AVAILABILITY_ANSWERS = frozenset({"Accepted", "Scheduled", "Rejected"})


def availability_answer(charger_id: str, status: object) -> str:
    """The ChangeAvailability answer as one of ``AVAILABILITY_ANSWERS``; anything else is a ``ChargerError``."""
    if not isinstance(status, str) or status not in AVAILABILITY_ANSWERS:
        raise ChargerError(charger_id, "ChangeAvailability", f"unexpected status {str(status)[:40]!r}")
    return status


def is_not_supported(exc: ChargerError) -> bool:
    return exc.reason.startswith("not supported")


def tenth_down(value: float) -> float:
    """A profile ``limit`` must be a multiple of 0.1 (1.6 schema multipleOf; 2.0.1 alike); round down so a limit never grows."""
    return max(0.0, int(value * 10 + 1e-6) / 10)
