"""In-memory recent history for the dashboard: site power against the grid limit, and the last ticks.

The store keeps per-connector samples for the long term; summing those for a chart every second would be far
too slow, so the HTTP side keeps its own small series of site totals while it runs (a restart starts an empty
chart, which is acceptable for a live view; the long-term record is the store's).
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

from csms_adapter.control.control_loop import TickResult
from csms_adapter.http_api.schemas import SeriesPoint

HISTORY_SPAN = timedelta(hours=6)
# At most one point per this much controller time: 6 h in 720 points whatever the speed of the clock.
HISTORY_RESOLUTION = timedelta(seconds=30)
TICKS_KEPT = 200


class SiteHistory:
    def __init__(self, span: timedelta = HISTORY_SPAN, resolution: timedelta = HISTORY_RESOLUTION) -> None:
        self.span = span
        self.resolution = resolution
        self._points: deque[SeriesPoint] = deque()

    def record(self, point: SeriesPoint) -> bool:
        """Add a point unless the last one is closer than the resolution; returns whether it was added."""
        if self._points and point.time - self._points[-1].time < self.resolution:
            return False
        self._points.append(point)
        while self._points and point.time - self._points[0].time > self.span:
            self._points.popleft()
        return True

    def since(self, start: datetime) -> list[SeriesPoint]:
        return [p for p in self._points if p.time >= start]

    def __len__(self) -> int:
        return len(self._points)


class TickLog:
    """The last ``TICKS_KEPT`` tick results, newest last."""

    def __init__(self, keep: int = TICKS_KEPT) -> None:
        self._ticks: deque[TickResult] = deque(maxlen=keep)

    def add(self, tick: TickResult) -> None:
        self._ticks.append(tick)

    def last(self, n: int) -> list[TickResult]:
        """Up to ``n`` ticks, newest first."""
        return list(reversed(self._ticks))[:n]
