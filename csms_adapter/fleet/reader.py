"""Reads every site's line, chargers and sessions from a shared database (no site scope: all depots)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Engine, func, inspect, text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from csms_adapter.store.engine import StoreError, make_engine, safe_url
from csms_adapter.store.models import ChargerRow, ConnectorRow, SessionRow, SiteRow

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ConnectorView:
    connector: int
    status: str | None
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class ChargerView:
    id: str
    online: bool
    ocpp_version: str | None
    vendor: str | None
    model: str | None
    firmware: str | None
    last_seen: datetime | None
    open_sessions: int
    connectors: tuple[ConnectorView, ...]


@dataclass(frozen=True, slots=True)
class SiteSummary:
    site: str
    chargers_configured: int
    chargers_online: int
    sessions: int
    power_kw: float | None
    limit_kw: float | None
    open_incidents: int
    last_seen: datetime | None


class FleetReader:
    """Read-only queries over all sites. Raises ``StoreError`` for database failures."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = safe_url(url)

    @classmethod
    def open(cls, url: str) -> FleetReader:
        # Never migrates: the fleet view only reads what the controllers wrote (and may run with fewer rights).
        return cls(make_engine(url, create_tables=False), url)

    def close(self) -> None:
        self.engine.dispose()

    def _read(self, what: str, fn: Callable[[Session], T]) -> T:
        try:
            with Session(self.engine) as session:
                return fn(session)
        except SQLAlchemyError as exc:
            raise StoreError(self.url, f"{what} failed: {getattr(exc, 'orig', None) or exc}") from exc

    def _open_incidents(self, session: Session) -> dict[str, int]:
        """Open incidents per site, where the database has the monitoring tables (older schemas do not)."""
        if "incidents" not in inspect(session.connection()).get_table_names():
            return {}
        rows = session.connection().execute(text(
            "SELECT site, COUNT(*) FROM incidents WHERE resolved_at IS NULL GROUP BY site"))
        return {str(site): int(n) for site, n in rows}

    def sites(self) -> list[SiteSummary]:
        def work(session: Session) -> list[SiteSummary]:
            online = dict(session.exec(select(ChargerRow.site, func.count()).where(col(ChargerRow.connected))
                                       .group_by(col(ChargerRow.site))).all())
            sessions = dict(session.exec(select(SessionRow.site, func.count()).where(col(SessionRow.is_open))
                                         .group_by(col(SessionRow.site))).all())
            incidents = self._open_incidents(session)
            out = []
            for row in session.exec(select(SiteRow).order_by(col(SiteRow.site))):
                out.append(SiteSummary(row.site, row.chargers_configured, int(online.get(row.site, 0)),
                                       int(sessions.get(row.site, 0)), row.power_kw, row.limit_kw,
                                       incidents.get(row.site, 0), row.last_seen_at))
            return out

        return self._read("read sites", work)

    def site(self, name: str) -> tuple[SiteSummary, list[ChargerView]] | None:
        summary = next((s for s in self.sites() if s.site == name), None)
        if summary is None:
            return None

        def work(session: Session) -> list[ChargerView]:
            connectors: dict[str, list[ConnectorView]] = {}
            for c in session.exec(select(ConnectorRow).where(ConnectorRow.site == name)
                                  .order_by(col(ConnectorRow.charger_id), col(ConnectorRow.connector_id))):
                connectors.setdefault(c.charger_id, []).append(ConnectorView(c.connector_id, c.status, c.updated_at))
            open_by_charger = dict(session.exec(
                select(SessionRow.charger_id, func.count()).where(SessionRow.site == name, col(SessionRow.is_open))
                .group_by(col(SessionRow.charger_id))).all())
            return [ChargerView(r.id, r.connected, r.ocpp_version, r.vendor, r.model, r.firmware, r.last_seen_at,
                                int(open_by_charger.get(r.id, 0)), tuple(connectors.get(r.id, ())))
                    for r in session.exec(select(ChargerRow).where(ChargerRow.site == name)
                                          .order_by(col(ChargerRow.id)))]

        return summary, self._read("read site chargers", work)
