"""Waiting in the live tests: poll a condition at short intervals until it holds, instead of sleeping a fixed time.

A fixed sleep is either too short on a loaded machine (a flaky test) or too long on a quiet one (a slow suite);
polling every few milliseconds returns as soon as the condition holds and fails, naming it, only at the time-out.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

# Generous: a loaded CI machine must not turn a slow-but-correct run into a failure. A hang still ends here, well
# under pytest-timeout's 120 s, as a failure that says what was awaited.
DEFAULT_TIMEOUT_S = 15.0
DEFAULT_INTERVAL_S = 0.01


async def eventually(
    check: Callable[[], Any | Awaitable[Any]],
    timeout_s: float = DEFAULT_TIMEOUT_S,
    interval_s: float = DEFAULT_INTERVAL_S,
) -> Any:
    """Call ``check`` (plain or async) every ``interval_s`` until it returns something truthy, and return that.

    After ``timeout_s`` (an awaited check that hangs included) raise an AssertionError naming the check and its last
    answer: a bare TimeoutError would not say which condition never held.
    """
    last: Any = None
    deadline = asyncio.timeout(timeout_s)
    try:
        async with deadline:
            while True:
                answer = check()
                last = await answer if inspect.isawaitable(answer) else answer
                if last:
                    return last
                await asyncio.sleep(interval_s)
    except TimeoutError:
        if not deadline.expired():  # the check itself timed out: its own error says more
            raise
        raise AssertionError(f"not true within {timeout_s} s: {_describe(check)} (last answer: {last!r})") from None


def _describe(check: Callable[..., object]) -> str:
    try:
        return inspect.getsource(check).strip()
    except (OSError, TypeError):
        return repr(check)
