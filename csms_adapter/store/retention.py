"""Retention of meter samples: raw for ``raw_days``, then one-minute aggregates (mean, min, max, last, count)
for ``aggregate_days``, then nothing. One pass is ``Store.run(apply_retention, store, policy, now)``; it works
through old samples in bounded chunks so a large backlog never holds one huge transaction."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session, col, select

from csms_adapter.store.models import MeterMinuteRow, MeterSampleRow
from csms_adapter.store.repository import Store

CHUNK_ROWS = 20_000


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    raw_days: float = 30.0
    aggregate_days: float = 400.0


@dataclass(frozen=True, slots=True)
class RetentionResult:
    aggregated_samples: int
    minutes_written: int
    minutes_deleted: int


def _minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def apply_retention(store: Store, policy: RetentionPolicy, now: datetime) -> RetentionResult:
    """Fold raw samples older than ``raw_days`` into minutes and delete them; delete minutes older than
    ``aggregate_days``. Only this store's site is touched. Minutes are complete: the raw cut-off is rounded down
    to a whole minute, so a minute is never split between two passes."""
    raw_cutoff = _minute(now - timedelta(days=policy.raw_days))
    aggregated = written = 0
    while True:
        def fold(session: Session) -> tuple[int, int]:
            rows = list(session.exec(
                select(MeterSampleRow).where(col(MeterSampleRow.measured_at) < raw_cutoff)
                .order_by(col(MeterSampleRow.measured_at), col(MeterSampleRow.id)).limit(CHUNK_ROWS)))
            if not rows:
                return 0, 0
            # A chunk may end inside a minute: keep that minute's rows for the next chunk (unless it is all).
            last_minute = _minute(rows[-1].measured_at)
            if len(rows) == CHUNK_ROWS and _minute(rows[0].measured_at) != last_minute:
                rows = [r for r in rows if _minute(r.measured_at) != last_minute]
            groups: dict[tuple[str, int, str, str | None, str | None, datetime], list[MeterSampleRow]] = (
                defaultdict(list))
            for r in rows:
                groups[(r.charger_id, r.connector_id, r.measurand, r.phase, r.unit, _minute(r.measured_at))].append(r)
            for (charger_id, connector_id, measurand, phase, unit, minute), members in groups.items():
                values = [m.value for m in members]
                session.add(MeterMinuteRow(
                    site=store.site, charger_id=charger_id, connector_id=connector_id, measurand=measurand,
                    phase=phase, unit=unit, minute=minute, mean=sum(values) / len(values), minimum=min(values),
                    maximum=max(values), last=members[-1].value, count=len(values)))
            ids = [r.id for r in rows]
            session.exec(delete(MeterSampleRow).where(col(MeterSampleRow.id).in_(ids)))
            return len(rows), len(groups)

        n, m = store.write("fold samples into minutes", fold)
        aggregated += n
        written += m
        if n == 0:
            break
    minute_cutoff = now - timedelta(days=policy.aggregate_days)

    def prune(session: Session) -> int:
        result = session.exec(delete(MeterMinuteRow).where(col(MeterMinuteRow.minute) < minute_cutoff))
        return int(result.rowcount or 0)

    deleted = store.write("prune minutes", prune)
    return RetentionResult(aggregated, written, deleted)
