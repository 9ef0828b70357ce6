"""Events worth keeping in the charger history, as ``EventRecord`` values (pure). Meter samples are not history
(they have their own table); a flagged one is, as a ``meter_anomaly`` record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields

from csms_adapter.monitoring.model import EventRecord, JsonScalar
from csms_adapter.protocol import events as ev

# Long free text from a charger is cut, so a hostile or chatty charger cannot grow the store without bound.
MAX_TEXT = 500


def _text(raw: str | None) -> str | None:
    if raw is None:
        return None
    return raw if len(raw) <= MAX_TEXT else raw[: MAX_TEXT - 1] + "…"


def _details(event: object, skip: tuple[str, ...]) -> Mapping[str, JsonScalar]:
    out: dict[str, JsonScalar] = {}
    for f in fields(event):  # type: ignore[arg-type]
        if f.name in skip or f.name in ("charger_id", "time"):
            continue
        value = getattr(event, f.name)
        if value is None:
            continue
        out[f.name] = _text(value) if isinstance(value, str) else value
    return out


def event_record(event: ev.Event) -> EventRecord | None:
    """The history record of ``event``, or None when it is not history (samples, authorisations, needs)."""
    match event:
        case ev.StatusChanged():
            return EventRecord(event.time, event.charger_id, event.connector_id, "status", event.raw_status,
                               _text(event.error_code), _text(event.vendor_error_code), _text(event.info),
                               {"vendor_id": _text(event.vendor_id)} if event.vendor_id else {})
        case ev.DeviceEvent():
            return EventRecord(event.time, event.charger_id, event.evse_id, "device_event", _text(event.actual_value),
                               _text(f"{event.component}/{event.variable}"), _text(event.tech_code),
                               _text(event.tech_info),
                               _details(event, ("actual_value", "tech_code", "tech_info", "evse_id")))
        case ev.SecurityEventReported():
            return EventRecord(event.time, event.charger_id, None, "security_event", None, _text(event.type), None,
                               _text(event.tech_info))
        case ev.FirmwareStatusReported():
            return EventRecord(event.time, event.charger_id, None, "firmware_status", _text(event.status),
                               details={"request_id": event.request_id} if event.request_id is not None else {})
        case ev.DiagnosticsStatusReported():
            kind = "log_status" if event.kind == "log" else "diagnostics_status"
            return EventRecord(event.time, event.charger_id, None, kind, _text(event.status),
                               details={"request_id": event.request_id} if event.request_id is not None else {})
        case ev.ChargerConnected():
            return EventRecord(event.time, event.charger_id, None, "connected", None,
                               details={"ocpp_version": event.ocpp_version, "monitor_only": event.monitor_only})
        case ev.ChargerDisconnected():
            return EventRecord(event.time, event.charger_id, None, "disconnected", None,
                               str(event.close_code) if event.close_code is not None else None, None,
                               _text(event.reason))
        case ev.ChargerBooted():
            return EventRecord(event.time, event.charger_id, None, "booted", None,
                               details={"ocpp_version": event.ocpp_version, "vendor": _text(event.vendor),
                                        "model": _text(event.model), "firmware": _text(event.firmware)})
        case _:
            return None


def anomaly_record(sample: ev.MeterSample, code: str, detail: str) -> EventRecord:
    return EventRecord(sample.time, sample.charger_id, sample.connector_id, "meter_anomaly", None, code, None,
                       _text(detail), {"measurand": sample.measurand, "value": sample.value, "phase": sample.phase,
                                       "transaction_id": sample.transaction_id})
