"""``call_charger``: the one place where ocpp/websockets failures become depotctl errors."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import pytest
from ocpp.exceptions import FormatViolationError, NotSupportedError
from ocpp.messages import CallResult
from websockets.exceptions import ConnectionClosedOK

from csms_adapter.errors import ChargerError, ChargerTimeout
from csms_adapter.protocol import ocpp_tuning
from csms_adapter.protocol.link import ConnectionEnd, WireCall, call_charger, is_not_supported


@dataclass
class Ping:
    """A payload whose class name is the action."""


class FakeCp:
    def __init__(self, behaviour: Any) -> None:
        self.behaviour = behaviour
        self.calls = 0

    async def call(self, payload: Any, suppress: bool = True, skip_schema_validation: bool = False) -> Any:
        assert suppress is False  # CallErrors must raise, never return None (docs/architecture.md, "OCPP rules the code follows")
        self.calls += 1
        return await self.behaviour()


async def never() -> Any:
    await asyncio.Event().wait()


@pytest.mark.parametrize(
    ("exc", "expected", "reason_part"),
    [
        (NotSupportedError("no smart charging"), ChargerError, "not supported"),
        (FormatViolationError("bad"), ChargerError, "FormatViolationError"),
        (ConnectionClosedOK(None, None), ChargerError, "connection closed"),
    ],
)
async def test_library_errors_are_mapped(exc: Exception, expected: type[Exception], reason_part: str) -> None:
    async def fail() -> Any:
        raise exc

    with pytest.raises(expected) as info:
        await call_charger(FakeCp(fail), asyncio.Lock(), ConnectionEnd(), "cp", Ping(), 1.0)
    assert reason_part in str(info.value) and info.value.action == "Ping"  # type: ignore[attr-defined]
    assert is_not_supported(info.value) == (reason_part == "not supported")  # type: ignore[arg-type]


async def test_no_answer_is_a_timeout() -> None:
    with pytest.raises(ChargerTimeout):
        await call_charger(FakeCp(never), asyncio.Lock(), ConnectionEnd(), "cp", Ping(), 0.05)


async def test_a_dropped_connection_fails_the_pending_call_at_once() -> None:
    closed = ConnectionEnd()
    asyncio.get_running_loop().call_later(0.05, closed.set)
    started = time.perf_counter()
    with pytest.raises(ChargerError, match="connection closed"):
        await call_charger(FakeCp(never), asyncio.Lock(), closed, "cp", Ping(), 10.0)
    assert time.perf_counter() - started < 1.0  # not the 10 s timeout


async def test_calls_to_one_charger_are_serialised() -> None:
    in_flight = 0
    peak = 0

    async def slow() -> str:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return "ok"

    cp, lock, closed = FakeCp(slow), asyncio.Lock(), ConnectionEnd()
    results = await asyncio.gather(*(call_charger(cp, lock, closed, "cp", Ping(), 1.0) for _ in range(5)))
    assert results == ["ok"] * 5 and peak == 1


async def test_a_finished_call_leaves_the_connection_end_for_the_next_one() -> None:
    # Every call of a connection races the same end-of-connection future: a call that completed must not have
    # consumed (cancelled) it, or a later call would wait out its whole timeout on a dropped connection.
    async def ok() -> str:
        return "ok"

    closed = ConnectionEnd()
    assert await call_charger(FakeCp(ok), asyncio.Lock(), closed, "cp", Ping(), 1.0) == "ok"
    assert not closed.is_set() and not closed.future.cancelled()
    asyncio.get_running_loop().call_later(0.05, closed.set)
    started = time.perf_counter()
    with pytest.raises(ChargerError, match="connection closed"):
        await call_charger(FakeCp(never), asyncio.Lock(), closed, "cp", Ping(), 10.0)
    assert time.perf_counter() - started < 1.0
    with pytest.raises(ChargerError, match="not connected"):
        await call_charger(FakeCp(ok), asyncio.Lock(), closed, "cp", Ping(), 1.0)


class WireCp:
    """The library internals ``call_charger`` uses for a ``WireCall``: a charger that first delivers a late answer to
    an earlier call (which timed out), then the answer to this one."""

    ocpp_version = "1.6"
    id = "cp"

    def __init__(self, status: object) -> None:
        self.status = status
        self._call_lock = asyncio.Lock()
        self._response_queue: asyncio.Queue[Any] = asyncio.Queue()
        self._unique_id_generator = iter(["id-2"]).__next__
        self.sent: list[str] = []

    async def _send(self, message: str) -> None:
        self.sent.append(message)
        unique_id = json.loads(message)[1]
        self._response_queue.put_nowait(CallResult("id-1", {"status": "Rejected"}))  # the earlier call's answer
        self._response_queue.put_nowait(CallResult(unique_id, {"status": self.status}))


async def test_a_wire_call_takes_its_own_answer_and_drops_a_late_one() -> None:
    cp = WireCp("Accepted")
    answer = await call_charger(cp, asyncio.Lock(), ConnectionEnd(), "cp",
                                WireCall("SetChargingProfile", {"connectorId": 1}), 1.0)
    assert answer == {"status": "Accepted"}
    assert json.loads(cp.sent[0])[:3] == [2, "id-2", "SetChargingProfile"]
    assert cp._response_queue.empty()


async def test_a_wire_call_still_validates_the_chargers_answer() -> None:
    # What a charger sends is bad input to be caught: the answer is schema-checked even though our own request,
    # built in wire form, is not (tests/csms_adapter/protocol/test_wire_profiles.py checks those shapes).
    with pytest.raises(ChargerError, match="FormatViolation"):
        await call_charger(WireCp("Maybe"), asyncio.Lock(), ConnectionEnd(), "cp",
                           WireCall("SetChargingProfile", {"connectorId": 1}), 1.0)


async def test_an_invalid_answer_is_refused_every_time_and_the_kept_checks_stay_bounded() -> None:
    # Answers found valid are remembered (the same few answers come from every charger); an invalid one never is.
    for _ in range(2):
        with pytest.raises(ChargerError, match="FormatViolation"):
            await call_charger(WireCp("Maybe"), asyncio.Lock(), ConnectionEnd(), "cp",
                               WireCall("SetChargingProfile", {"connectorId": 1}), 1.0)
    for k in range(ocpp_tuning.VALID_PAYLOADS_KEPT + 20):
        cp = WireCp("Accepted")
        cp.ocpp_version = "2.0.1"
        cp.status = "Rejected"
        reason = f"R{k}"

        async def send(message: str, cp: WireCp = cp, reason: str = reason) -> None:
            cp._response_queue.put_nowait(CallResult(json.loads(message)[1],
                                                     {"status": "Rejected", "statusInfo": {"reasonCode": reason}}))

        cp._send = send  # type: ignore[method-assign]
        answer = await call_charger(cp, asyncio.Lock(), ConnectionEnd(), "cp",
                                    WireCall("SetChargingProfile", {"evseId": 1}), 1.0)
        assert answer["statusInfo"]["reasonCode"] == reason
    assert len(ocpp_tuning._valid_payloads) <= ocpp_tuning.VALID_PAYLOADS_KEPT
    with pytest.raises(ChargerError, match="FormatViolation"):  # still refused after all those valid ones
        await call_charger(WireCp("Maybe"), asyncio.Lock(), ConnectionEnd(), "cp",
                           WireCall("SetChargingProfile", {"connectorId": 1}), 1.0)
