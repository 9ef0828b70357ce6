"""When an emulated station takes its sampled meter readings: every ``meter_interval_s`` counted from the start of each
connector's transaction (OCPP 1.6 ``MeterValueSampleInterval``: "from the start of the charging transaction"; 2.0.1
``SampledDataTxUpdatedInterval`` likewise), so stations whose vehicles arrived at different moments report at
different moments. Counted from the station's start instead, every station of a fleet started at once reported in
the same instant: 1,000 MeterValues in one burst every interval (docs/benchmarks.md, "The slow third full tick").
A reading that falls due while the station was held up is taken once, late; missed ones are not made up in a burst.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

TxKey = tuple[int, str]  # (connector, local transaction)


class MeterSchedule:
    """The next sampled reading of each running transaction."""

    def __init__(self) -> None:
        self._due: dict[TxKey, datetime] = {}

    def clear(self) -> None:
        self._due.clear()

    def due_now(self, running: Mapping[TxKey, datetime], now: datetime, step: timedelta) -> list[TxKey]:
        """The transactions whose reading falls due at ``now``, given those ``running`` (key → start); each of them
        is next due at the first multiple of ``step`` after ``now``. Transactions that ended are forgotten."""
        due = self._due
        for key in list(due):
            if key not in running:
                del due[key]
        for key, started_at in running.items():
            due.setdefault(key, started_at + step)
        ready = [key for key, at in due.items() if at <= now]
        for key in ready:
            while due[key] <= now:
                due[key] += step
        return ready

    def next_at(self, now: datetime, step: timedelta) -> datetime:
        """When to look again: the next reading due, or an interval from ``now`` when no transaction runs (one that
        starts meanwhile is first due an interval after its start, so it is never late for that wake-up)."""
        return min(self._due.values(), default=now + step)
