"""``Store``: short synchronous transactions over the tables. Each method opens and commits its own
session and returns detached rows (safe to read after the call). From async code call them through
``Store.run`` (a one-thread executor), so the event loop never waits on the database."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Engine, func, insert, text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from csms_adapter.store.engine import StoreError, make_engine, safe_url
from csms_adapter.store.models import (
    ChargerRow,
    CommandRow,
    ConnectorRow,
    MeterMinuteRow,
    MeterSampleRow,
    PlanRow,
    SessionRow,
    SiteRow,
    ThermalFitRow,
)
from csms_adapter.store.site_scope import claim_unowned_rows, scope_to_site
from optimizer.domain import Plan

P = ParamSpec("P")
T = TypeVar("T")
INT32_MAX = 2**31 - 1  # 1.6 transactionId is an integer; many chargers store it as int32


@dataclass(frozen=True, slots=True)
class SampleRecord:
    """One normalised sampled value, as the live state hands it to the store (SI units; ``value`` in
    ``unit``; ``source`` e.g. measured | iso15118 | estimated)."""

    charger_id: str
    connector_id: int
    measurand: str
    value: float
    unit: str | None
    measured_at: datetime
    source: str = "measured"
    phase: str | None = None
    location: str | None = None
    transaction_id: str | None = None


_SAMPLE_FIELDS = tuple(f.name for f in fields(SampleRecord))


@dataclass(frozen=True, slots=True)
class CommandEntry:
    """One call sent to a charger (``Store.record_commands``): its JSON-serialisable ``payload``, its answer status
    or error and the round-trip latency."""

    charger_id: str
    connector_id: int | None
    action: str
    payload: dict[str, Any]
    sent_at: datetime
    answer: str | None = None
    error: str | None = None
    latency_ms: float | None = None


def _adding(row: T) -> Callable[[Session], T]:
    """A ``_write`` body that adds ``row`` and returns it (detached after the commit)."""

    def work(session: Session) -> T:
        session.add(row)
        return row

    return work


class Store:
    """One site's view of the database. Open with ``Store.open(url, site=name)``; ``close()`` when done.

    Every row this store writes carries ``site``, and every query it makes is limited to that site (an ORM
    criteria added to each SELECT, UPDATE and DELETE of a site-scoped table), so controllers of many depots
    share one database without seeing each other's rows."""

    def __init__(self, engine: Engine, url: str, site: str = "") -> None:
        self.engine = engine
        self.url = safe_url(url)
        self.site = site
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")

    @classmethod
    def open(cls, url: str, *, site: str = "", create_tables: bool = True) -> Store:
        """Raises ``StoreError`` when the database cannot be opened. Rows from before sites existed (site '')
        are claimed by the first site that opens the database."""
        store = cls(make_engine(url, create_tables=create_tables), url, site)
        if site and create_tables:
            store.write("claim rows", lambda session: claim_unowned_rows(session, site))
        return store

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.engine.dispose()

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a Store method off the event loop: ``await store.run(store.last_plan)``."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def _session(self) -> Session:
        session = Session(self.engine, expire_on_commit=False)
        scope_to_site(session, self.site)
        return session

    def write(self, what: str, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` in one transaction of this site's session and commit; ``what`` names it in a StoreError.
        The repositories of this package (monitoring, operator state, retention) write through it."""
        try:
            with self._session() as session:
                result = fn(session)
                session.commit()
                return result
        except SQLAlchemyError as exc:
            raise StoreError(self.url, f"{what} failed: {getattr(exc, 'orig', None) or exc}") from exc

    def read(self, what: str, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` in a session scoped to this site, without committing; ``what`` names it in a StoreError."""
        try:
            with self._session() as session:
                return fn(session)
        except SQLAlchemyError as exc:
            raise StoreError(self.url, f"{what} failed: {getattr(exc, 'orig', None) or exc}") from exc

    def journal_mode(self) -> str:
        with self.engine.connect() as conn:
            return str(conn.execute(text("PRAGMA journal_mode")).scalar())

    # ---------------------------------------------------------------------------- chargers

    def upsert_charger(self, charger_id: str, **fields: Any) -> ChargerRow:
        """Create or update a charger; ``fields`` are ChargerRow columns (ocpp_version, vendor, model,
        firmware, last_boot_at, last_seen_at, connected). None values leave a column unchanged."""

        def work(session: Session) -> ChargerRow:
            row = session.get(ChargerRow, (self.site, charger_id)) or ChargerRow(site=self.site, id=charger_id)
            for name, value in fields.items():
                if value is not None:
                    setattr(row, name, value)
            session.add(row)
            return row

        return self.write("upsert charger", work)

    def set_connected(self, charger_id: str, connected: bool, at: datetime) -> ChargerRow:
        return self.upsert_charger(charger_id, connected=connected, last_seen_at=at)

    def chargers(self) -> list[ChargerRow]:
        return self.read("read chargers", lambda s: list(s.exec(select(ChargerRow).order_by(ChargerRow.id))))

    def upsert_connector(self, charger_id: str, connector_id: int, status: str | None, at: datetime) -> ConnectorRow:
        def work(session: Session) -> ConnectorRow:
            if session.get(ChargerRow, (self.site, charger_id)) is None:
                session.add(ChargerRow(site=self.site, id=charger_id))
                session.flush()
            row = session.get(ConnectorRow, (self.site, charger_id, connector_id)) or ConnectorRow(
                site=self.site, charger_id=charger_id, connector_id=connector_id
            )
            row.status, row.updated_at = status, at
            session.add(row)
            return row

        return self.write("upsert connector", work)

    def connectors(self, charger_id: str) -> list[ConnectorRow]:
        query = select(ConnectorRow).where(ConnectorRow.charger_id == charger_id).order_by(col(ConnectorRow.connector_id))
        return self.read("read connectors", lambda s: list(s.exec(query)))

    # ---------------------------------------------------------------------------- sessions

    def open_session(
        self,
        charger_id: str,
        connector_id: int,
        transaction_id: str,
        *,
        started_at: datetime,
        id_tag: str | None = None,
        meter_start_wh: float | None = None,
    ) -> SessionRow:
        """Record a transaction start. Idempotent per (charger, transaction id): a replayed start
        (charger reconnecting with its queue) returns the existing row instead of a duplicate."""

        def work(session: Session) -> SessionRow:
            existing = session.exec(
                select(SessionRow).where(
                    SessionRow.charger_id == charger_id, SessionRow.transaction_id == transaction_id
                )
            ).first()
            if existing is not None:
                return existing
            row = SessionRow(
                charger_id=charger_id,
                connector_id=connector_id,
                transaction_id=transaction_id,
                id_tag=id_tag,
                started_at=started_at,
                meter_start_wh=meter_start_wh,
                is_open=True,
            )
            session.add(row)
            return row

        return self.write("open session", work)

    def close_session(
        self,
        charger_id: str,
        transaction_id: str,
        *,
        stopped_at: datetime,
        meter_stop_wh: float | None = None,
        reason: str | None = None,
    ) -> SessionRow | None:
        """Close a transaction; returns None if it is unknown. Energy = stop − start when both known."""

        def work(session: Session) -> SessionRow | None:
            row = session.exec(
                select(SessionRow).where(
                    SessionRow.charger_id == charger_id, SessionRow.transaction_id == transaction_id
                )
            ).first()
            if row is None:
                return None
            row.stopped_at, row.meter_stop_wh, row.stop_reason, row.is_open = stopped_at, meter_stop_wh, reason, False
            if meter_stop_wh is not None and row.meter_start_wh is not None:
                row.energy_wh = max(0.0, meter_stop_wh - row.meter_start_wh)
            session.add(row)
            return row

        return self.write("close session", work)

    def open_sessions(self, charger_id: str | None = None) -> list[SessionRow]:
        """Open transactions (to resume after a restart), oldest first."""
        query = select(SessionRow).where(col(SessionRow.is_open).is_(True))
        if charger_id is not None:
            query = query.where(SessionRow.charger_id == charger_id)
        query = query.order_by(col(SessionRow.started_at))
        return self.read("read open sessions", lambda s: list(s.exec(query)))

    def max_numeric_transaction_id(self) -> int | None:
        """The largest transaction id ever stored that is a non-negative int32 (what the controller assigns to
        1.6 transactions), open or closed; None when there is none. 2.0.1 ids (text, chosen by the stations)
        are skipped unless they happen to be such numbers, which only raises the result.

        Portable SQL (no GLOB/regex): among ids of at most 10 characters without a leading zero (the controller
        never makes one), a longer digit string is a larger number and equal lengths compare as text, so the
        first all-digit row in that order is the maximum."""
        length = func.length(col(SessionRow.transaction_id))
        tx_col = col(SessionRow.transaction_id)
        query = (select(SessionRow.transaction_id)
                 .where(length <= len(str(INT32_MAX)), tx_col >= "1", tx_col < ":")  # starts with 1-9
                 .order_by(length.desc(), tx_col.desc()).limit(1000))

        def work(session: Session) -> int | None:
            for tx in session.exec(query):
                if tx.isascii() and tx.isdigit() and int(tx) <= INT32_MAX:
                    return int(tx)
            return None

        return self.read("read max transaction id", work)

    def session(self, charger_id: str, transaction_id: str) -> SessionRow | None:
        query = select(SessionRow).where(
            SessionRow.charger_id == charger_id, SessionRow.transaction_id == transaction_id
        )
        return self.read("read session", lambda s: s.exec(query).first())

    # ----------------------------------------------------------------------------- samples

    def add_samples(self, records: Sequence[SampleRecord]) -> int:
        """Insert ``records`` in one transaction (one executemany); returns how many."""
        if not records:
            return 0
        # Not dataclasses.asdict: it deep-copies every value (a datetime by pickling it), which for the samples of
        # a thousand chargers kept this thread on the GIL long enough to delay the event loop's socket writes.
        rows = [{"site": self.site, **{name: getattr(r, name) for name in _SAMPLE_FIELDS}} for r in records]

        def work(session: Session) -> int:
            # Core executemany on the table, not the ORM's bulk insert: the ORM path builds a state per row and
            # took about twice the CPU, all of it holding the GIL beside the event loop.
            session.connection().execute(insert(MeterSampleRow.__table__), rows)  # type: ignore[attr-defined]
            return len(rows)

        return self.write("write samples", work)

    def meter_history(
        self,
        charger_id: str,
        connector_id: int,
        start: datetime,
        end: datetime,
        measurands: Iterable[str] | None = None,
    ) -> list[MeterSampleRow]:
        """Samples of one connector with ``start <= measured_at < end``, in time order."""
        query = select(MeterSampleRow).where(
            MeterSampleRow.charger_id == charger_id,
            MeterSampleRow.connector_id == connector_id,
            col(MeterSampleRow.measured_at) >= start,
            col(MeterSampleRow.measured_at) < end,
        )
        if measurands is not None:
            query = query.where(col(MeterSampleRow.measurand).in_(list(measurands)))
        query = query.order_by(col(MeterSampleRow.measured_at), col(MeterSampleRow.id))
        return self.read("read meter history", lambda s: list(s.exec(query)))

    def minute_history(self, charger_id: str, connector_id: int, start: datetime, end: datetime
                       ) -> list[MeterMinuteRow]:
        """One-minute aggregates of one connector with ``start <= minute < end``, in time order."""
        query = select(MeterMinuteRow).where(
            MeterMinuteRow.charger_id == charger_id,
            MeterMinuteRow.connector_id == connector_id,
            col(MeterMinuteRow.minute) >= start,
            col(MeterMinuteRow.minute) < end,
        ).order_by(col(MeterMinuteRow.minute), col(MeterMinuteRow.measurand), col(MeterMinuteRow.id))
        return self.read("read minute history", lambda s: list(s.exec(query)))

    # ------------------------------------------------------------------------------- plans

    def record_plan(self, plan: Plan) -> PlanRow:
        """Store one tick's plan: status, objective, timings, totals, reason, binding constraints and
        the commanded limit of each connector."""
        row = PlanRow(
            time=plan.time,
            strategy=plan.strategy,
            status=plan.status.value,
            objective=plan.objective,
            solve_ms=plan.solve_ms,
            build_ms=plan.build_ms,
            connectors=len(plan.connectors),
            total_limit_kw=plan.total_limit_kw,
            energy_needed_kwh=sum(c.energy_needed_kwh for c in plan.connectors),
            energy_planned_kwh=sum(c.energy_planned_kwh for c in plan.connectors),
            reason=plan.reason,
            binding=list(plan.binding),
            limits={f"{c.charger_id}/{c.connector_id}": c.limit_kw for c in plan.connectors},
        )
        return self.write("record plan", _adding(row))

    def last_plan(self) -> PlanRow | None:
        query = select(PlanRow).order_by(col(PlanRow.time).desc(), col(PlanRow.id).desc()).limit(1)
        return self.read("read last plan", lambda s: s.exec(query).first())

    # ---------------------------------------------------------------------------- commands

    def record_command(
        self,
        charger_id: str,
        connector_id: int | None,
        action: str,
        payload: dict[str, Any],
        *,
        sent_at: datetime,
        answer: str | None = None,
        error: str | None = None,
        latency_ms: float | None = None,
    ) -> CommandRow:
        """Store a call sent to a charger (``payload`` must be JSON-serialisable: use the wire dict)
        with its answer status or error and the round-trip latency."""
        row = CommandRow(
            charger_id=charger_id,
            connector_id=connector_id,
            action=action,
            payload=payload,
            answer=answer,
            error=error,
            sent_at=sent_at,
            latency_ms=latency_ms,
        )
        return self.write("record command", _adding(row))

    def record_commands(self, entries: Sequence[CommandEntry]) -> int:
        """Store many calls in one transaction (one executemany); returns how many. A dispatch sends up to two
        calls per charger at once: one commit per call kept the store thread on the GIL for seconds per tick at a
        thousand chargers, beside the event loop that was waiting for their answers."""
        rows = [{"site": self.site, "charger_id": e.charger_id, "connector_id": e.connector_id, "action": e.action,
                 "payload": e.payload, "answer": e.answer, "error": e.error, "sent_at": e.sent_at,
                 "latency_ms": e.latency_ms} for e in entries]

        def work(session: Session) -> int:
            session.connection().execute(insert(CommandRow.__table__), rows)  # type: ignore[attr-defined]
            return len(rows)

        return self.write("record commands", work) if rows else 0

    def commands(self, charger_id: str, connector_id: int | None = None, limit: int = 100) -> list[CommandRow]:
        """Commands sent to a charger (or one connector), newest first."""
        query = select(CommandRow).where(CommandRow.charger_id == charger_id)
        if connector_id is not None:
            query = query.where(CommandRow.connector_id == connector_id)
        query = query.order_by(col(CommandRow.sent_at).desc(), col(CommandRow.id).desc()).limit(limit)
        return self.read("read commands", lambda s: list(s.exec(query)))

    # ------------------------------------------------------------------------------- sites

    def report_site(self, row: SiteRow) -> SiteRow:
        """Create or update this site's line (the fleet view's source); ``started_at`` kept unless given."""

        def work(session: Session) -> SiteRow:
            existing = session.get(SiteRow, self.site)
            if existing is None:
                row.site = self.site
                session.add(row)
                return row
            for name in ("timezone", "chargers_configured", "limit_kw", "power_kw", "last_seen_at", "started_at"):
                value = getattr(row, name)
                if value is not None:
                    setattr(existing, name, value)
            session.add(existing)
            return existing

        return self.write("report site", work)

    # ------------------------------------------------------------------------ thermal fits

    def save_thermal_fits(self, rows: Sequence[ThermalFitRow]) -> int:
        """Insert or replace each fit by its key (one transaction)."""
        def work(session: Session) -> int:
            for row in rows:
                row.site = self.site
                session.merge(row)
            return len(rows)

        return self.write("save thermal fits", work)

    def thermal_fits(self) -> list[ThermalFitRow]:
        query = select(ThermalFitRow).order_by(col(ThermalFitRow.key))
        return self.read("read thermal fits", lambda s: list(s.exec(query)))
