"""Screens every frame a charger sends before the ``ocpp`` library sees it, and throttles floods.

Why a wrapper and not library hooks: ocpp 2.1.0 silently drops frames it cannot parse (the charger waits for an
answer that never comes), accepts ``NaN`` (Python's json does), swaps ``NotImplemented``/``NotSupported`` against
the spec tables, spells 1.6's ``FormationViolation`` the 2.0.1 way, queues any CALLRESULT without bound, and has
no rate limit (docs/security.md). ``GuardedConnection`` is what a link's ``ChargePoint`` receives instead of
the websocket: ``recv()`` only returns frames the library can route; everything else is answered here with the
CALLERROR the spec asks for (message id ``"-1"`` when the id cannot be read) or dropped, and counted.

CallError codes (OCPP-J 1.6 §4.2.3 + errata; 2.0.1 Part 4 §4.3):

    input                               1.6                    2.0.1
    binary frame / not JSON / not array FormationViolation -1  RpcFrameworkError -1
    NaN or Infinity in the JSON         FormationViolation     FormatViolation
    unknown MessageTypeId               FormationViolation     MessageTypeNotSupported
    CALL payload not an object          FormationViolation     FormatViolation
    unknown action                      NotImplemented         NotImplemented
    known action, no handler            NotSupported           NotSupported
    schema errors (library)             FormationViolation,    FormatViolation,
                                        TypeConstraintViolation, ProtocolError, OccurenceConstraintViolation...

Flood control is a token bucket per connection: past the burst, each frame waits for its token (back-off: the
websocket's receive queue fills and TCP pushes back on the sender); a connection that stays throttled for
``close_after_throttled_s`` is closed with 1008. A conformant charger waits for each answer before its next CALL,
so even a long offline backlog is only slowed, not closed, unless it lasts that long.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from websockets.frames import CloseCode

from csms_adapter.protocol.counters import Reason, SecurityCounters

log = logging.getLogger("depotctl.guard")

CALL, CALLRESULT, CALLERROR = 2, 3, 4
MAX_MESSAGE_ID = 36  # OCPP-J: message ids are at most 36 characters
_PENDING_IDS = 32  # our CALL ids remembered for matching answers (a timed-out one may still be answered)


@dataclass(frozen=True, slots=True)
class GuardLimits:
    """Limits for hostile or broken clients. ``idle_timeout_s`` None means 3 × the heartbeat interval + 60 s."""

    max_frame_bytes: int = 256 * 1024
    rate_per_s: float = 20.0
    burst: int = 100
    close_after_throttled_s: float = 60.0
    max_connections_per_address: int = 256  # chargers behind one NAT router share an address
    open_timeout_s: float = 10.0
    idle_timeout_s: float | None = None
    auth_failures_per_window: int = 10
    auth_window_s: float = 60.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with one frame: pass it on (``reason`` None), answer it (``reply``), or drop it.
    ``answer_id`` is set when the frame answers one of our CALLs."""

    reason: Reason | None = None
    reply: str | None = None
    code: str | None = None
    answer_id: str | None = None


PASS = Verdict()


def _codes(version: str) -> dict[str, str]:
    if version == "1.6":
        # The 1.6 spellings are kept on the wire on purpose (OCPP-J 1.6 errata §5.1/§5.2: "do not fix").
        return {"framing": "FormationViolation", "format": "FormationViolation", "type": "FormationViolation"}
    return {"framing": "RpcFrameworkError", "format": "FormatViolation", "type": "MessageTypeNotSupported"}


def call_error(message_id: str, code: str, description: str) -> str:
    # The description never echoes the offending frame (2.0.1 Part 4: invalid JSON SHALL NOT be sent back).
    return json.dumps([CALLERROR, message_id, code, description, {}])


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def screen(raw: str | bytes, version: str, known: frozenset[str], handled: frozenset[str],
           pending: Callable[[str], bool]) -> Verdict:
    """Decide about one incoming frame. ``pending(id)`` says whether ``id`` is a CALL of ours awaiting an answer.
    Pure apart from ``pending``; never raises."""
    codes = _codes(version)

    def reply(reason: Reason, message_id: str, kind: str, text: str) -> Verdict:
        code = codes.get(kind, kind)
        return Verdict(reason, call_error(message_id, code, text), code)

    if isinstance(raw, bytes):
        return reply(Reason.FRAME_BINARY, "-1", "framing", "OCPP-J uses text frames")
    try:
        frame = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        return reply(Reason.FRAME_NOT_JSON, "-1", "framing", "JSON nested too deeply")
    except ValueError:
        try:  # NaN/Infinity: the frame is readable once they are tolerated, so answer with its id
            lenient = json.loads(raw, parse_constant=lambda _c: None)
        except (ValueError, RecursionError):
            return reply(Reason.FRAME_NOT_JSON, "-1", "framing", "not valid JSON")
        if isinstance(lenient, list) and len(lenient) >= 2 and lenient[0] == CALL and _valid_id(lenient[1]):
            return reply(Reason.FRAME_NON_FINITE, lenient[1], "format", "NaN and Infinity are not JSON numbers")
        return Verdict(Reason.FRAME_NON_FINITE)  # an answer (or unreadable id) with NaN: drop, never answer it
    if not isinstance(frame, list) or not frame:
        return reply(Reason.FRAME_NOT_OCPP, "-1", "framing", "an OCPP-J message is a JSON array")
    kind = frame[0]
    if isinstance(kind, bool) or not isinstance(kind, int):
        return reply(Reason.FRAME_NOT_OCPP, "-1", "framing", "MessageTypeId must be a number")
    if kind in (CALLRESULT, CALLERROR):
        shape_ok = (len(frame) == 3 and isinstance(frame[2], dict)) if kind == CALLRESULT else (
            len(frame) == 5 and isinstance(frame[2], str) and isinstance(frame[3], str) and isinstance(frame[4], dict))
        if not shape_ok or not _valid_id(frame[1]):
            return Verdict(Reason.FRAME_NOT_OCPP)  # never answer an answer
        if not pending(frame[1]):
            return Verdict(Reason.FRAME_UNEXPECTED_RESPONSE)
        return Verdict(answer_id=frame[1])
    message_id = frame[1] if len(frame) >= 2 and _valid_id(frame[1]) else None
    if kind != CALL:
        if message_id is None:
            return reply(Reason.FRAME_BAD_MESSAGE_TYPE, "-1", "framing", "unknown MessageTypeId")
        return reply(Reason.FRAME_BAD_MESSAGE_TYPE, message_id, "type", f"MessageTypeId {kind} is not supported")
    if message_id is None:
        return reply(Reason.FRAME_NOT_OCPP, "-1", "framing", "message id must be a string of 1-36 characters")
    if len(frame) != 4 or not isinstance(frame[2], str) or not isinstance(frame[3], dict):
        return reply(Reason.FRAME_NOT_OCPP, message_id, "format", "a CALL is [2, id, action, {payload}]")
    action = frame[2]
    if action not in known:
        return reply(Reason.UNKNOWN_ACTION, message_id, "NotImplemented", f"action not known in OCPP {version}")
    if action not in handled:
        return reply(Reason.UNSUPPORTED_ACTION, message_id, "NotSupported", "action not supported by this CSMS")
    return PASS


# The head of a CALL as the ``ocpp`` library writes ours: [2,"<id>","<Action>",{...}] (json.dumps, no spaces).
_OUR_CALL_ID = re.compile(r'\[2,\s*"([^"\\]{1,36})"')


def _call_id(message: str) -> str:
    """The message id of one of our CALLs, read from its head instead of parsing the whole frame (a charging
    profile is the bulk of it); any other spelling falls back to the full parse."""
    head = _OUR_CALL_ID.match(message)
    return head.group(1) if head is not None else str(json.loads(message)[1])


def _valid_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_MESSAGE_ID


_RESPELL_16 = {"FormatViolation": "FormationViolation", "OccurrenceConstraintViolation": "OccurenceConstraintViolation"}


class TokenBucket:
    """``rate_per_s`` tokens a second, at most ``burst`` saved. ``wait_s()`` takes one token and says how long the
    caller must wait for it (0 when one was available)."""

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self.clock = clock
        self.tokens = float(burst)
        self.at = clock()

    def wait_s(self) -> float:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class Socket(Protocol):
    async def recv(self) -> str | bytes: ...

    async def send(self, message: str) -> None: ...

    async def close(self, code: int = ..., reason: str = ...) -> None: ...


class GuardedConnection:
    """The websocket as the ``ocpp`` ChargePoint sees it (``recv``/``send``/``close``). Set ``handled`` to the
    link's route names once the link exists."""

    def __init__(self, ws: Socket | Any, charger_id: str, version: str, known: frozenset[str],
                 limits: GuardLimits, counters: SecurityCounters, idle_timeout_s: float) -> None:
        self.ws = ws
        self.charger_id = charger_id
        self.version = version
        self.known = known
        self.handled: frozenset[str] = frozenset()
        self.limits = limits
        self.counters = counters
        self.idle_timeout_s = idle_timeout_s
        self.bucket = TokenBucket(limits.rate_per_s, limits.burst)
        self._throttled_since: float | None = None
        self._pending: deque[str] = deque(maxlen=_PENDING_IDS)
        self._closing: asyncio.Task[None] | None = None

    def _begin_close(self, code: int, reason: str) -> None:
        """Start the closing handshake without waiting for it: the peer's close frame may sit behind frames it
        already sent, which ``recv`` must keep draining (and dropping) for the handshake to finish."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self.ws.close(code, reason))

    async def _next_frame(self) -> str | bytes:
        try:
            async with asyncio.timeout(self.idle_timeout_s if self._closing is None else None):
                return await self.ws.recv()
        except TimeoutError:
            self.counters.add(Reason.IDLE_CLOSED, self.charger_id)
            log.warning("charger=%s sent nothing for %.0f s; closing", self.charger_id, self.idle_timeout_s)
            self._begin_close(CloseCode.NORMAL_CLOSURE, "idle timeout")
            return await self._next_frame()
        except BaseException:
            if self._closing is not None:
                await asyncio.gather(self._closing, return_exceptions=True)
            raise

    async def recv(self) -> str:
        while True:
            raw = await self._next_frame()  # raises ConnectionClosed once closed, which ends the link
            if self._closing is not None:
                continue  # closing: what the peer still sends is dropped unread
            verdict = screen(raw, self.version, self.known, self.handled, self._pending.__contains__)
            if verdict.answer_id is not None and isinstance(raw, str):
                self._pending.remove(verdict.answer_id)  # an answer to our CALL: not subject to the rate limit
                return raw
            await self._throttle()
            if self._closing is not None:
                continue
            if verdict.reason is None:
                assert isinstance(raw, str)
                return raw
            self.counters.add(verdict.reason, self.charger_id)
            log.info("charger=%s frame refused: %s", self.charger_id, verdict.reason)
            if verdict.reply is not None:
                await self.send(verdict.reply)

    async def _throttle(self) -> None:
        wait = self.bucket.wait_s()
        if wait <= 0:
            self._throttled_since = None
            return
        now = time.monotonic()
        if self._throttled_since is None:
            self._throttled_since = now
            log.warning("charger=%s exceeds %g messages/s; slowing it down", self.charger_id, self.limits.rate_per_s)
        self.counters.add(Reason.THROTTLED, self.charger_id)
        if now - self._throttled_since > self.limits.close_after_throttled_s:
            self.counters.add(Reason.RATE_CLOSED, self.charger_id)
            log.warning("charger=%s flooded for %.0f s; closing: check its firmware or who is using its identity",
                        self.charger_id, now - self._throttled_since)
            self._begin_close(CloseCode.POLICY_VIOLATION, "message rate limit exceeded")
            return
        await asyncio.sleep(wait)

    async def send(self, message: str) -> None:
        if message.startswith("[4"):
            frame = json.loads(message)
            code = str(frame[2])
            if self.version == "1.6" and code in _RESPELL_16:
                frame[2] = code = _RESPELL_16[code]
                message = json.dumps(frame)
            self.counters.call_error_sent(code, self.charger_id)
        elif message.startswith("[2"):
            self._pending.append(_call_id(message))
        await self.ws.send(message)

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        await self.ws.close(code, reason)
