"""The emulated clock: wall time scaled by a speed factor, so a test can live an hour in seconds.

Everything the emulator times (meter intervals, heartbeats, profile validity, battery physics,
timestamps on the wire) goes through one ``EmulatorClock``. ``speed=60`` means one wall second is one
emulated minute. The clock never jumps: emulated time is ``start + (monotonic() - t0) * speed``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class EmulatorClock:
    """Emulated UTC time running ``speed`` times faster than the wall clock."""

    def __init__(
        self,
        speed: float = 1.0,
        start: datetime | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        if start is not None and start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self.speed = speed
        self._monotonic = monotonic
        self._t0 = monotonic()
        self._start = (start or datetime.now(UTC)).astimezone(UTC)

    def now(self) -> datetime:
        """The emulated time, timezone-aware UTC."""
        return self._start + timedelta(seconds=(self._monotonic() - self._t0) * self.speed)

    def wall_s(self, emulated_s: float) -> float:
        """Wall seconds that pass while ``emulated_s`` emulated seconds pass."""
        return max(0.0, emulated_s) / self.speed

    async def sleep(self, emulated_s: float) -> None:
        """Sleep for ``emulated_s`` emulated seconds."""
        await asyncio.sleep(self.wall_s(emulated_s))

    async def sleep_until(self, at: datetime) -> None:
        """Sleep until the emulated clock reads ``at`` (returns at once if it already passed)."""
        await self.sleep((at - self.now()).total_seconds())


def ocpp_time(at: datetime) -> str:
    """An OCPP ``dateTime``: UTC with a ``Z`` and millisecond precision."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_ocpp_time(text: str) -> datetime:
    """Parse an OCPP ``dateTime`` (``Z`` or an offset; naive values are taken as UTC)."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
