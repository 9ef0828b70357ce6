"""The values of condition monitoring: incident kinds and severities, incidents, their changes, stored events and
availability rows. Frozen values only; ``to_json`` gives the objects of the HTTP contract (docs/monitoring.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

JsonScalar = str | int | float | bool | None


class IncidentKind(StrEnum):
    OFFLINE = "offline"  # no connection, or no traffic past monitoring.offline_after_s
    FAULT = "fault"  # Faulted status, an errorCode other than NoError, or a NotifyEvent with a problem
    UNAVAILABLE = "unavailable"  # Unavailable/Inoperative the controller did not ask for
    IGNORES_LIMIT = "ignores_limit"  # draws more than its accepted limit past the grace period
    PROFILE_REJECTED = "profile_rejected"  # refused (or failed to answer) a charging profile
    METER_ANOMALY = "meter_anomaly"  # register backwards/reset, impossible jump, frozen/duplicated, out of range
    SECURITY_EVENT = "security_event"  # a SecurityEventNotification
    FIRMWARE = "firmware"  # a failed firmware download/installation
    DIAGNOSTICS = "diagnostics"  # a failed diagnostics or log upload


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


SEVERITY_RANK: Mapping[Severity, int] = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


@dataclass(frozen=True, slots=True)
class Incident:
    """One ongoing (``resolved_at`` None) or past problem of a charger or one of its connectors.

    A repeated report of the same open problem raises ``occurrences``; it never opens a second incident.
    ``code`` is the OCPP errorCode (1.6) or the event's component/variable (2.0.1) or the anomaly's name;
    ``vendor_code`` the vendorErrorCode / techCode. ``source`` says what raised it (e.g. ``StatusNotification``,
    ``NotifyEvent``, ``connection``, ``meter``, ``dispatch``)."""

    id: str
    charger: str
    connector: int | None
    kind: IncidentKind
    code: str | None
    vendor_code: str | None
    info: str | None
    severity: Severity
    opened_at: datetime
    resolved_at: datetime | None
    occurrences: int
    source: str

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    def to_json(self) -> dict[str, JsonScalar]:
        return {
            "id": self.id,
            "charger": self.charger,
            "connector": self.connector,
            "kind": str(self.kind),
            "code": self.code,
            "vendor_code": self.vendor_code,
            "info": self.info,
            "severity": str(self.severity),
            "opened_at": self.opened_at.isoformat(),
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at is not None else None,
            "occurrences": self.occurrences,
            "source": self.source,
        }


ChangeEvent = Literal["opened", "resolved", "repeated"]


@dataclass(frozen=True, slots=True)
class IncidentChange:
    """What happened to an incident. Listeners get ``opened`` only once the debounce has passed and
    ``resolved`` only for an incident they were told was opened."""

    event: ChangeEvent
    incident: Incident


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One stored raw event of a charger (the history behind ``GET /api/chargers/{id}/events``).

    ``type`` is one of: ``status`` (StatusNotification), ``device_event`` (2.0.1 NotifyEvent eventData),
    ``security_event``, ``firmware_status``, ``diagnostics_status``, ``log_status``, ``connected``,
    ``disconnected``, ``booted``, ``meter_anomaly`` (a flagged sample). ``status``/``code``/``vendor_code``/
    ``info`` are the common fields where the message has them; ``details`` the rest of its fields."""

    time: datetime
    charger: str
    connector: int | None
    type: str
    status: str | None = None
    code: str | None = None
    vendor_code: str | None = None
    info: str | None = None
    details: Mapping[str, JsonScalar] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "time": self.time.isoformat(),
            "charger": self.charger,
            "connector": self.connector,
            "type": self.type,
            "status": self.status,
            "code": self.code,
            "vendor_code": self.vendor_code,
            "info": self.info,
            "details": dict(self.details),
        }


@dataclass(frozen=True, slots=True)
class AvailabilityRow:
    """Availability of one connector (or of the charger as a whole, ``connector`` None) over a window.

    ``availability_ratio`` = (window − faulted − offline − unavailable) ÷ window; ``mtbf_s``/``mttr_s`` are None
    when undefined (no outage in the window)."""

    charger: str
    connector: int | None
    window_s: float
    available_s: float
    faulted_s: float
    offline_s: float
    unavailable_s: float
    availability_ratio: float | None
    incidents: int
    mtbf_s: float | None
    mttr_s: float | None
    unavailable_operator_s: float = 0.0  # out of service at the operator's request: excluded, not an outage

    def to_json(self) -> dict[str, JsonScalar]:
        return {
            "charger": self.charger,
            "connector": self.connector,
            "window_s": self.window_s,
            "available_s": self.available_s,
            "faulted_s": self.faulted_s,
            "offline_s": self.offline_s,
            "unavailable_s": self.unavailable_s,
            "availability_ratio": self.availability_ratio,
            "incidents": self.incidents,
            "mtbf_s": self.mtbf_s,
            "mttr_s": self.mttr_s,
            "unavailable_operator_s": self.unavailable_operator_s,
        }
