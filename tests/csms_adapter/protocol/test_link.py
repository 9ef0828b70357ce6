"""``call_charger``: the one place where ocpp/websockets failures become depotctl errors."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import pytest
from ocpp.exceptions import FormatViolationError, NotSupportedError
from websockets.exceptions import ConnectionClosedOK

from csms_adapter.errors import ChargerError, ChargerTimeout
from csms_adapter.protocol.link import call_charger, is_not_supported


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
        await call_charger(FakeCp(fail), asyncio.Lock(), asyncio.Event(), "cp", Ping(), 1.0)
    assert reason_part in str(info.value) and info.value.action == "Ping"  # type: ignore[attr-defined]
    assert is_not_supported(info.value) == (reason_part == "not supported")  # type: ignore[arg-type]


async def test_no_answer_is_a_timeout() -> None:
    with pytest.raises(ChargerTimeout):
        await call_charger(FakeCp(never), asyncio.Lock(), asyncio.Event(), "cp", Ping(), 0.05)


async def test_a_dropped_connection_fails_the_pending_call_at_once() -> None:
    closed = asyncio.Event()
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

    cp, lock, closed = FakeCp(slow), asyncio.Lock(), asyncio.Event()
    results = await asyncio.gather(*(call_charger(cp, lock, closed, "cp", Ping(), 1.0) for _ in range(5)))
    assert results == ["ok"] * 5 and peak == 1
