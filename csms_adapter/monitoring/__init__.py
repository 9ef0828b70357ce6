"""Condition monitoring (docs/monitoring.md): events in, incidents and availability out.

The pure parts (``incidents``, ``meter_integrity``, ``availability``) take events and a time and return state;
``Monitor`` wires them to the controller and the store. Webhooks, the HTTP API and metrics read the Monitor.
"""

from csms_adapter.monitoring.model import (
    SEVERITY_RANK,
    AvailabilityRow,
    ChangeEvent,
    EventRecord,
    Incident,
    IncidentChange,
    IncidentKind,
    Severity,
)
from csms_adapter.monitoring.monitor import Monitor

__all__ = [
    "SEVERITY_RANK",
    "AvailabilityRow",
    "ChangeEvent",
    "EventRecord",
    "Incident",
    "IncidentChange",
    "IncidentKind",
    "Monitor",
    "Severity",
]
