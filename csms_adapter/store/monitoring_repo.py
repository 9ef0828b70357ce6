"""Monitoring tables: the charger event history, incidents and the 2.0.1 device model. Short synchronous
transactions over a ``Store`` (call them through ``store.run`` or the recorder's write queue, never on the loop).

    repo = MonitoringRepository(store)
    repo.add_events([EventRecord, ...]) -> int              # one transaction
    repo.events("cp-01", since, until, limit=500) -> list[EventRecord]   # newest first, [since, until)
    repo.save_incidents([Incident, ...])                     # insert or rewrite by id
    repo.incidents(since) -> list[Incident]                  # open, or resolved at/after ``since``
    repo.save_device_variables("cp-01", [DeviceVariable, ...], reported_at)   # upsert per attribute
    repo.device_variables("cp-01") -> list[DeviceVariableRow]
    repo.prune(before) -> int                                # events before, incidents resolved before
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, insert
from sqlmodel import Session, col, select

from csms_adapter.monitoring.model import EventRecord, Incident, IncidentKind, Severity
from csms_adapter.protocol.events import DeviceVariable
from csms_adapter.store.models import ChargerEventRow, DeviceVariableRow, IncidentRow
from csms_adapter.store.repository import Store


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
        def work(session: Session) -> int:
            existing = {(r.component, r.component_instance, r.evse_id, r.connector_id, r.variable,
                         r.variable_instance, r.attribute_type): r
                        for r in session.exec(select(DeviceVariableRow).where(
                            DeviceVariableRow.site == self.store.site, DeviceVariableRow.charger_id == charger_id))}
            for v in variables:
                key = (v.component, v.component_instance or "", v.evse_id if v.evse_id is not None else -1,
                       v.connector_id if v.connector_id is not None else -1, v.variable, v.variable_instance or "",
                       v.attribute_type)
                row = existing.get(key)
                if row is None:
                    row = existing[key] = DeviceVariableRow(
                        site=self.store.site, charger_id=charger_id, component=key[0], component_instance=key[1],
                        evse_id=key[2], connector_id=key[3], variable=key[4], variable_instance=key[5],
                        attribute_type=key[6], reported_at=reported_at)
                row.value, row.mutability, row.reported_at = v.value, v.mutability, reported_at
                session.add(row)
            return len(variables)

        return self.store.write("save device model", work) if variables else 0

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
