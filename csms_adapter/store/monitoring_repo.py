"""Monitoring tables: the charger event history, incidents and the 2.0.1 device model. Short synchronous
transactions over a ``Store`` (call them through ``store.run`` or the recorder's write queue, never on the loop).

    repo = MonitoringRepository(store)
    repo.add_events([EventRecord, ...]) -> int              # one transaction
    repo.events("cp-01", since, until, limit=500) -> list[EventRecord]   # newest first, [since, until)
    repo.save_incidents([Incident, ...])                     # insert or rewrite by id
    repo.incidents(since) -> list[Incident]                  # open, or resolved at/after ``since``
    repo.save_device_variables("cp-01", [DeviceVariable, ...], reported_at)   # upsert per attribute
    repo.save_device_reports([DeviceReport("cp-01", (DeviceVariable, ...), reported_at), ...])  # many, one transaction
    repo.device_variables("cp-01") -> list[DeviceVariableRow]
    repo.prune(before) -> int                                # events before, incidents resolved before
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, insert, update
from sqlmodel import Session, col, select

from csms_adapter.monitoring.model import EventRecord, Incident, IncidentKind, Severity
from csms_adapter.protocol.events import DeviceVariable
from csms_adapter.store.models import ChargerEventRow, DeviceVariableRow, IncidentRow
from csms_adapter.store.repository import Store

# The unique key of a device-model row below its site and charger (``uq_device_variable``).
DEVICE_KEY_COLUMNS = ("component", "component_instance", "evse_id", "connector_id", "variable", "variable_instance",
                      "attribute_type")
DeviceKey = tuple[str, str, int, int, str, str, str]


@dataclass(frozen=True, slots=True)
class DeviceReport:
    """One NotifyReport's variables of one charger (or all parts of one), as reported at ``reported_at``."""

    charger_id: str
    variables: tuple[DeviceVariable, ...]
    reported_at: datetime


def device_key(v: DeviceVariable) -> DeviceKey:
    """A variable attribute's key as stored: "" and -1 stand for none (a unique key ignores NULLs)."""
    return (v.component, v.component_instance or "", v.evse_id if v.evse_id is not None else -1,
            v.connector_id if v.connector_id is not None else -1, v.variable, v.variable_instance or "",
            v.attribute_type)


def _event_values(site: str, record: EventRecord) -> dict[str, object]:
    return {"site": site, "charger_id": record.charger, "connector_id": record.connector, "time": record.time, "type": record.type,
            "status": record.status, "code": record.code, "vendor_code": record.vendor_code, "info": record.info,
            "details": dict(record.details)}


def _record(row: ChargerEventRow) -> EventRecord:
    return EventRecord(row.time, row.charger_id, row.connector_id, row.type, row.status, row.code, row.vendor_code,
                       row.info, dict(row.details or {}))


def incident_of_row(row: IncidentRow) -> Incident | None:
    """The incident a row holds; None for a kind or severity this version does not know."""
    try:
        kind, severity = IncidentKind(row.kind), Severity(row.severity)
    except ValueError:
        return None  # written by a newer version: not ours to interpret
    return Incident(row.id, row.charger_id, row.connector_id, kind, row.code, row.vendor_code, row.info, severity,
                    row.opened_at, row.resolved_at, row.occurrences, row.source)


class MonitoringRepository:
    def __init__(self, store: Store) -> None:
        self.store = store

    def add_events(self, records: Sequence[EventRecord]) -> int:
        def work(session: Session) -> int:
            # One executemany, not an ORM object per row: a burst of a thousand events is one cheap statement.
            session.execute(insert(ChargerEventRow), [_event_values(self.store.site, r) for r in records])
            return len(records)

        return self.store.write("add charger events", work) if records else 0

    def events(self, charger_id: str, since: datetime | None = None, until: datetime | None = None,
               limit: int = 500) -> list[EventRecord]:
        def work(session: Session) -> list[EventRecord]:
            query = select(ChargerEventRow).where(ChargerEventRow.site == self.store.site,
                                                 ChargerEventRow.charger_id == charger_id)
            if since is not None:
                query = query.where(col(ChargerEventRow.time) >= since)
            if until is not None:
                query = query.where(col(ChargerEventRow.time) < until)
            query = query.order_by(col(ChargerEventRow.time).desc(), col(ChargerEventRow.id).desc()).limit(limit)
            return [_record(row) for row in session.exec(query)]

        return self.store.read("read charger events", work)

    def save_incidents(self, incidents: Iterable[Incident]) -> None:
        def work(session: Session) -> None:
            for incident in incidents:
                row = session.get(IncidentRow, (self.store.site, incident.id)) or IncidentRow(
                    site=self.store.site, id=incident.id, charger_id=incident.charger, kind=incident.kind.value,
                    severity=incident.severity.value, opened_at=incident.opened_at)
                row.connector_id = incident.connector
                row.code, row.vendor_code, row.info = incident.code, incident.vendor_code, incident.info
                row.severity = incident.severity.value
                row.opened_at, row.resolved_at = incident.opened_at, incident.resolved_at
                row.occurrences, row.source = incident.occurrences, incident.source
                session.add(row)

        self.store.write("save incidents", work)

    def incidents(self, since: datetime) -> list[Incident]:
        def work(session: Session) -> list[Incident]:
            query = select(IncidentRow).where(IncidentRow.site == self.store.site,
                                              (col(IncidentRow.resolved_at).is_(None))
                                              | (col(IncidentRow.resolved_at) >= since))
            found = (incident_of_row(row) for row in session.exec(query.order_by(col(IncidentRow.opened_at))))
            return [i for i in found if i is not None]

        return self.store.read("read incidents", work)

    def save_device_variables(self, charger_id: str, variables: Sequence[DeviceVariable], reported_at: datetime) -> int:
        return self.save_device_reports([DeviceReport(charger_id, tuple(variables), reported_at)])

    def save_device_reports(self, reports: Sequence[DeviceReport]) -> int:
        """Upsert every variable attribute of ``reports`` (in order: a later report of an attribute wins) in one
        transaction: one SELECT of the attributes stored for these chargers, one INSERT of the new ones and one
        UPDATE of the known ones, each for many rows at once (a 2.0.1 full inventory is hundreds of attributes
        per charger, and a boot storm brings one per charger). Returns how many attributes were written."""
        latest: dict[tuple[str, DeviceKey], tuple[DeviceVariable, datetime]] = {}
        for report in reports:
            for v in report.variables:
                latest[(report.charger_id, device_key(v))] = (v, report.reported_at)
        if not latest:
            return 0
        site = self.store.site
        table = DeviceVariableRow.__table__  # type: ignore[attr-defined]
        chargers = sorted({cid for cid, _ in latest})

        def work(session: Session) -> int:
            conn = session.connection()  # Core statements, the site in every condition
            key_columns = [table.c[name] for name in DEVICE_KEY_COLUMNS]
            stored: dict[tuple[str, DeviceKey], int] = {}
            for start in range(0, len(chargers), 500):
                query = select(table.c.id, table.c.charger_id, *key_columns).where(
                    table.c.site == site, table.c.charger_id.in_(chargers[start:start + 500]))
                for row in conn.execute(query):
                    stored[(str(row[1]), tuple(row[2:]))] = int(row[0])
            new, known = [], []
            for (cid, key), (v, at) in latest.items():
                if (cid, key) in stored:
                    known.append({"b_id": stored[(cid, key)], "v_value": v.value, "v_mutability": v.mutability,
                                  "v_at": at})
                else:
                    new.append({"site": site, "charger_id": cid, **dict(zip(DEVICE_KEY_COLUMNS, key, strict=True)),
                                "value": v.value, "mutability": v.mutability, "reported_at": at})
            if new:
                conn.execute(insert(table), new)
            if known:
                conn.execute(update(table).where(table.c.site == site, table.c.id == bindparam("b_id")).values(
                    value=bindparam("v_value"), mutability=bindparam("v_mutability"),
                    reported_at=bindparam("v_at")), known)
            return len(latest)

        return self.store.write("save device model", work)

    def device_variables(self, charger_id: str) -> list[DeviceVariableRow]:
        def work(session: Session) -> list[DeviceVariableRow]:
            query = select(DeviceVariableRow).where(DeviceVariableRow.site == self.store.site,
                                                    DeviceVariableRow.charger_id == charger_id)
            return list(session.exec(query.order_by(col(DeviceVariableRow.component), col(DeviceVariableRow.variable))))

        return self.store.read("read device model", work)

    def prune(self, before: datetime) -> int:
        """Forget events older than ``before`` and incidents resolved before it (the retention)."""

        def work(session: Session) -> int:
            events = session.execute(delete(ChargerEventRow).where(col(ChargerEventRow.site) == self.store.site,
                                                                   col(ChargerEventRow.time) < before))
            incidents = session.execute(delete(IncidentRow).where(col(IncidentRow.site) == self.store.site,
                                                                  col(IncidentRow.resolved_at) < before))
            return int(getattr(events, "rowcount", 0) or 0) + int(getattr(incidents, "rowcount", 0) or 0)

        return self.store.write("prune monitoring history", work)
