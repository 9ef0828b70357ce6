"""Response bodies of condition monitoring: incidents, a charger's raw events, availability (the contract's
objects, field for field) and the dashboard's health panel."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from csms_adapter.monitoring import AvailabilityRow, EventRecord, Incident

SeverityName = Literal["info", "warning", "critical"]
TimelineState = Literal["available", "faulted", "offline", "unavailable", "unavailable_operator"]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class IncidentOut(_Out):
    id: str
    charger: str
    connector: int | None
    kind: str = Field(description="offline | fault | unavailable | ignores_limit | profile_rejected | meter_anomaly | "
                                  "security_event | firmware | diagnostics")
    code: str | None = Field(description="OCPP errorCode (1.6) or component/variable/trigger (2.0.1)")
    vendor_code: str | None = Field(description="vendorErrorCode (1.6) or techCode (2.0.1)")
    info: str | None
    severity: SeverityName
    opened_at: datetime
    resolved_at: datetime | None
    occurrences: int = Field(description="reports of this problem while it was open, the first included")
    source: str

    @classmethod
    def of(cls, incident: Incident) -> IncidentOut:
        return cls.model_validate(incident.to_json())


class EventOut(_Out):
    time: datetime
    charger: str
    connector: int | None
    type: str = Field(description="status | device_event | security_event | firmware_status | diagnostics_status | "
                                  "log_status | connected | disconnected | booted | meter_anomaly")
    status: str | None
    code: str | None
    vendor_code: str | None
    info: str | None
    details: dict[str, str | int | float | bool | None] = Field(description="the message's other fields")

    @classmethod
    def of(cls, record: EventRecord) -> EventOut:
        return cls.model_validate(record.to_json())


class AvailabilityOut(_Out):
    charger: str
    connector: int | None = Field(description="null: the charger as a whole (down only while every connector is)")
    window_s: float
    available_s: float
    faulted_s: float
    offline_s: float
    unavailable_s: float
    availability_ratio: float | None = Field(description="(window − faulted − offline − unavailable) ÷ window")
    incidents: int = Field(description="outages (offline, fault, unavailable) overlapping the window")
    mtbf_s: float | None
    mttr_s: float | None
    unavailable_operator_s: float = Field(0.0, description="out of service at the operator's request "
                                          "(ChangeAvailability Inoperative): excluded, not an outage")

    @classmethod
    def of(cls, row: AvailabilityRow) -> AvailabilityOut:
        return cls.model_validate(row.to_json())


class TimelineSegment(_Out):
    start: datetime
    end: datetime
    state: TimelineState


class ChargerTimeline(_Out):
    """A charger's state over the window: the worst state of any of its connectors (offline, then faulted, then
    unavailable, then out of service at the operator's request: ``unavailable_operator``, not an outage), so a
    charger with one faulted connector shows faulted."""

    charger: str
    segments: list[TimelineSegment]


class HealthOut(_Out):
    """The dashboard's health panel: open incidents, a status timeline per charger, availability per charger."""

    time: datetime
    since: datetime
    open_incidents: list[IncidentOut]
    timeline: list[ChargerTimeline]
    availability: list[AvailabilityOut]
