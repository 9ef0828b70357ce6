"""Reads every site's line, chargers, sessions, open incidents and availability from a shared database (no site
scope: all depots).

Availability is the site dashboard's (``csms_adapter.monitoring.availability``, docs/monitoring.md) over the last
``AVAILABILITY_WINDOW``, from the incidents each controller stored: per charger its own ratio, per site the mean of
its chargers' ratios (time before a charger was first seen counts as available, as on the site dashboard; a charger
that never connected is not counted). ``None`` where the database has no monitoring tables or the site no charger."""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy import Engine, func, inspect, text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from csms_adapter.monitoring.availability import availability
from csms_adapter.monitoring.model import Incident
from csms_adapter.store.engine import StoreError, make_engine, safe_url
from csms_adapter.store.models import ChargerRow, ConnectorRow, IncidentRow, SessionRow, SiteRow
from csms_adapter.store.monitoring_repo import incident_of_row

T = TypeVar("T")
AVAILABILITY_WINDOW = timedelta(hours=24)


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
    availability_ratio: float | None = None  # over the last AVAILABILITY_WINDOW


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
    availability_ratio: float | None = None  # mean of its chargers' ratios over the last AVAILABILITY_WINDOW


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _aware(at: datetime) -> datetime:
    # SQLite hands back naive UTC.
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


class FleetReader:
    """Read-only queries over all sites. Raises ``StoreError`` for database failures."""

    def __init__(self, engine: Engine, url: str, clock: Callable[[], datetime] = _utc_now) -> None:
        self.engine = engine
        self.url = safe_url(url)
        self.clock = clock

    @classmethod
    def open(cls, url: str, clock: Callable[[], datetime] = _utc_now) -> FleetReader:
        # Never migrates: the fleet view only reads what the controllers wrote (and may run with fewer rights).
        return cls(make_engine(url, create_tables=False), url, clock)

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

    def _availability(self, session: Session, site: str | None) -> dict[str, dict[str, float]] | None:
        """Per site (all, or ``site``) each known charger's availability ratio over the last window; None where
        the database has no incidents table."""
        if "incidents" not in inspect(session.connection()).get_table_names():
            return None
        until = self.clock()
        since = until - AVAILABILITY_WINDOW
        connectors: dict[tuple[str, str], int] = {}
        chargers = select(ChargerRow)
        for charger in session.exec(chargers if site is None else chargers.where(ChargerRow.site == site)):
            connectors[(charger.site, charger.id)] = 1
        query = select(ConnectorRow.site, ConnectorRow.charger_id, func.count()).group_by(
            col(ConnectorRow.site), col(ConnectorRow.charger_id))
        for site_name, charger_id, count in session.exec(
                query if site is None else query.where(ConnectorRow.site == site)):
            if (site_name, charger_id) in connectors:
                connectors[(site_name, charger_id)] = max(1, int(count))
        incidents: dict[str, list[Incident]] = {}
        query_i = select(IncidentRow).where((col(IncidentRow.resolved_at).is_(None))
                                            | (col(IncidentRow.resolved_at) >= since))
        for stored in session.exec(query_i if site is None else query_i.where(IncidentRow.site == site)):
            incident = incident_of_row(stored)
            if incident is not None:
                incidents.setdefault(stored.site, []).append(_aware_incident(incident))
        out: dict[str, dict[str, float]] = {}
        for site_name in {s for s, _ in connectors}:
            counts = {charger: n for (s, charger), n in connectors.items() if s == site_name}
            rows = availability(incidents.get(site_name, []), counts, since, until)
            out[site_name] = {r.charger: r.availability_ratio for r in rows
                              if r.connector is None and r.availability_ratio is not None}
        return out

    def sites(self) -> list[SiteSummary]:
        def work(session: Session) -> list[SiteSummary]:
            online = dict(session.exec(select(ChargerRow.site, func.count()).where(col(ChargerRow.connected))
                                       .group_by(col(ChargerRow.site))).all())
            sessions = dict(session.exec(select(SessionRow.site, func.count()).where(col(SessionRow.is_open))
                                         .group_by(col(SessionRow.site))).all())
            incidents = self._open_incidents(session)
            ratios = self._availability(session, None) or {}
            out = []
            for row in session.exec(select(SiteRow).order_by(col(SiteRow.site))):
                per_charger = ratios.get(row.site)
                ratio = statistics.fmean(per_charger.values()) if per_charger else None
                out.append(SiteSummary(row.site, row.chargers_configured, int(online.get(row.site, 0)),
                                       int(sessions.get(row.site, 0)), row.power_kw, row.limit_kw,
                                       incidents.get(row.site, 0), row.last_seen_at, ratio))
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
            ratios = (self._availability(session, name) or {}).get(name, {})
            open_by_charger = dict(session.exec(
                select(SessionRow.charger_id, func.count()).where(SessionRow.site == name, col(SessionRow.is_open))
                .group_by(col(SessionRow.charger_id))).all())
            return [ChargerView(r.id, r.connected, r.ocpp_version, r.vendor, r.model, r.firmware, r.last_seen_at,
                                int(open_by_charger.get(r.id, 0)), tuple(connectors.get(r.id, ())),
                                ratios.get(r.id))
                    for r in session.exec(select(ChargerRow).where(ChargerRow.site == name)
                                          .order_by(col(ChargerRow.id)))]

        return summary, self._read("read site chargers", work)


def _aware_incident(incident: Incident) -> Incident:
    resolved = _aware(incident.resolved_at) if incident.resolved_at is not None else None
    return dataclasses.replace(incident, opened_at=_aware(incident.opened_at), resolved_at=resolved)
