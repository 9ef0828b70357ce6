"""Bring the next tick forward when a vehicle stops drawing, at most once per ``min_gap_s`` since the last tick.

A vehicle that stops mid-interval (``csms_adapter.control.vehicle_stops``) leaves the power it was allowed unused
until the next tick; an early tick gives it to the others. At a large depot vehicles stop one after another, so the
early ticks are rate-limited: when the last tick (of any kind) started less than ``min_gap_s`` ago, the request
waits until the gap has passed, and every stop seen meanwhile rides on that one tick. A stop that a tick has seen
since (one started after it) needs nothing more. The tick also waits ``confirm_s`` (one meter interval) after the
first stop it is for, so that the next reading shows whether the vehicle really stopped: a vehicle that pauses for a
few seconds (some do when their limit changes) would otherwise be judged full on its one zero reading and planned at
0 until its re-probe (``optimizer.vehicle_limit.REPROBE``). docs/operations.md, "Ticks brought forward".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from csms_adapter.control.vehicle_stops import VehicleStop

log = logging.getLogger("depotctl.control")

# The gap between early ticks for stops: a fifth of the control interval (the benchmark plant re-plans at the next
# fifth of the interval after a stop), at least this long.
MIN_GAP_FLOOR_S = 5.0
GAP_SHARE_OF_INTERVAL = 0.2


def min_gap_s(interval_s: float, meter_interval_s: float) -> float:
    """Seconds (site time) between a tick and a tick brought forward for a stop: a fifth of the control interval,
    at least ``MIN_GAP_FLOOR_S``, and at least the two meter intervals the vehicle-limit memory lets a vehicle
    follow its last command before judging its draw (an earlier tick could not see the stop)."""
    return max(MIN_GAP_FLOOR_S, GAP_SHARE_OF_INTERVAL * interval_s, 2.0 * meter_interval_s)


class StopTicks:
    """Collects stops and asks for one early tick per gap. Used from the event loop only."""

    def __init__(self, request_tick: Callable[[str], None], last_started: Callable[[], datetime | None],
                 clock: Callable[[], datetime], *, min_gap_s: float, confirm_s: float = 0.0,
                 real_per_site_s: float = 1.0) -> None:
        """``request_tick``: brings a tick forward (``ControlLoop.request_tick``, itself debounced).
        ``last_started``: when the last tick started (site clock), None before the first. ``confirm_s``: site seconds
        from the first stop to its tick. ``real_per_site_s``: wall seconds per site second (1 / speed when time runs
        faster)."""
        self._request_tick = request_tick
        self._last_started = last_started
        self._clock = clock
        self.min_gap_s = min_gap_s
        self.confirm_s = confirm_s
        self._real_per_site_s = real_per_site_s
        self._pending: dict[str, datetime] = {}  # "charger/connector" -> when the controller learnt of the stop
        self._timer: asyncio.TimerHandle | None = None
        self._requested_at: datetime | None = None  # when the last early tick was asked for (site clock)
        self._closed = False
        self.brought_forward = 0  # early ticks asked for since the start

    @property
    def waiting(self) -> tuple[str, ...]:
        """The connectors whose stop waits for its tick."""
        return tuple(sorted(self._pending))

    def stopped(self, stop: VehicleStop) -> None:
        """A vehicle stopped drawing: ask for a tick once the stop is confirmed and the gap since the last tick has
        passed."""
        if self._closed:
            return
        self._pending.setdefault(stop.where, self._clock())
        if self._timer is None:
            self._due()

    def _wait_s(self) -> float:
        now = self._clock()
        first_stop = min(self._pending.values())
        wait_s = self.confirm_s - (now - first_stop).total_seconds()
        started = self._last_started()
        if started is not None:
            wait_s = max(wait_s, self.min_gap_s - (now - started).total_seconds())
        return wait_s

    def _due(self) -> None:
        self._timer = None
        if self._closed:
            return
        started = self._last_started()
        if started is not None:
            # A tick that started after a stop planned with it (the live state takes every event before a tick).
            self._pending = {where: at for where, at in self._pending.items() if at >= started}
            if self._requested_at is not None and started >= self._requested_at:
                self._requested_at = None
        if not self._pending:
            return
        # While the tick asked for has not started, it will see these stops too: asking again would only restart
        # the loop's debounce. Look again a gap later.
        wait_s = self.min_gap_s if self._requested_at is not None else self._wait_s()
        if wait_s > 0:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # published outside the event loop: no tick to bring forward
                return
            self._timer = loop.call_later(wait_s * self._real_per_site_s, self._due)
            return
        where = ", ".join(sorted(self._pending))
        self._pending.clear()
        self._requested_at = self._clock()
        self.brought_forward += 1
        log.info("tick brought forward: vehicle stopped drawing at %s", where)
        self._request_tick(f"vehicle stopped drawing at {where}")

    def close(self) -> None:
        """Forget what waits; ask for nothing more."""
        self._closed = True
        self._pending.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
