"""How long a tick's command may stand: the time from a tick's snapshot until the next tick's command has been
dispatched, learnt from the last few ticks.

The plan's first step is one control interval long, but its command stands until the next tick has observed,
solved and dispatched. On a busy host (a slow solve, ticks coalesced, a tick that failed and sent nothing) that
is longer, and a battery near its ceiling keeps heating at the old limit. The estimate goes into
``Snapshot.command_hold_s`` so the planner caps such batteries' first-step power (``optimizer.thermal_hold``).
It never falls below one interval and never exceeds the profiles' time to live (after that the limit lapses to
the fail-safe layers).
"""

from __future__ import annotations

from collections import deque
from datetime import datetime

# Recent spans that decide the estimate: the worst of them, so one late tick is remembered for a few more.
SPANS_REMEMBERED = 6


class CommandHold:
    def __init__(self, interval_s: float, ttl_s: float) -> None:
        self.interval_s = interval_s
        self.ttl_s = max(ttl_s, interval_s)
        self._commanded_from: datetime | None = None  # snapshot time of the command that stands now
        self._spans_s: deque[float] = deque(maxlen=SPANS_REMEMBERED)

    def estimate_s(self) -> float:
        """How long the command of the tick about to run is expected to stand (seconds)."""
        worst = max(self._spans_s, default=0.0)
        return min(self.ttl_s, max(self.interval_s, worst))

    def ticked(self, snapshot_at: datetime, finished_at: datetime, *, dispatched: bool) -> None:
        """A tick that observed at ``snapshot_at`` finished at ``finished_at``; with ``dispatched`` its command
        replaced the standing one (otherwise the older command stands on)."""
        if not dispatched:
            return
        if self._commanded_from is not None:
            span = (finished_at - self._commanded_from).total_seconds()
            if span > 0:
                self._spans_s.append(span)
        self._commanded_from = snapshot_at
