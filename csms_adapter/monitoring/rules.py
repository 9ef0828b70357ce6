"""Which OCPP reports are problems: the rules that turn events into condition reports. Pure functions.

Kept apart from the tracker so the mapping (which status is a fault, which security event is critical, which
firmware status is a failure) reads as one table an operator can check against the specifications.
"""

from __future__ import annotations

from dataclasses import dataclass

from csms_adapter.monitoring.model import IncidentKind, Severity
from csms_adapter.protocol import events as ev

NO_ERROR = ("", "NoError")

# OCPP 1.6 (section 4.9, StatusNotification): a charger reports an error that stops energy delivery with status
# Faulted, and one that does not with its current status (a flaky vehicle link, EVCommunicationError while
# Charging, is common). So an errorCode is critical, and takes the connector out of the plan, only with Faulted;
# with any other status it is a warning on a working connector. The electrical-safety codes are the exception:
# a ground fault, an overcurrent or a welded contactor is critical whatever status comes with it.
SAFETY_ERROR_CODES = frozenset({"GroundFailure", "OverCurrentFailure", "PowerSwitchFailure"})

# Security event types (OCPP 2.0.1 Part 2 Appendix 1, also used by the 1.6 security whitepaper). Routine ones are
# recorded as info; tampering and attacks are critical; the rest are warnings.
ROUTINE_SECURITY_EVENTS = frozenset({"StartupOfTheDevice", "ResetOrReboot", "FirmwareUpdated", "SettingSystemTime"})
CRITICAL_SECURITY_EVENTS = frozenset({"TamperDetectionActivated", "AttemptedReplayAttacks", "MemoryExhaustion",
                                      "SecurityLogWasCleared", "InvalidFirmwareSignature",
                                      "InvalidFirmwareSigningCertificate"})

# 1.6 FirmwareStatus, 1.6 security SignedFirmwareStatus and 2.0.1 FirmwareStatusEnumType failures; Installed ends one.
FIRMWARE_FAILURES = frozenset({"DownloadFailed", "InstallationFailed", "InstallVerificationFailed",
                               "InvalidSignature"})
FIRMWARE_SUCCESS = frozenset({"Installed"})
# 1.6 DiagnosticsStatus and 2.0.1 / 1.6-security UploadLogStatusEnumType.
UPLOAD_FAILURES = frozenset({"UploadFailed", "UploadFailure", "BadMessage", "NotSupportedOperation",
                             "PermissionDenied"})
UPLOAD_SUCCESS = frozenset({"Uploaded"})

PROBLEM_VARIABLES = frozenset({"Problem", "Tripped", "Overload", "Fallback"})
TRUE_WORDS = frozenset({"true", "1", "yes"})


@dataclass(frozen=True, slots=True)
class Finding:
    """One conclusion from an event: ``kind`` holds (``active``) or clears on ``connector``."""

    kind: IncidentKind
    connector: int | None
    active: bool
    severity: Severity = Severity.WARNING
    code: str | None = None
    vendor_code: str | None = None
    info: str | None = None
    source: str = ""


def _connector(connector_id: int | None) -> int | None:
    return connector_id if connector_id else None  # 0 and None both mean the whole charger


def status_findings(event: ev.StatusChanged) -> list[Finding]:
    connector = _connector(event.connector_id)
    code = event.error_code if event.error_code not in NO_ERROR else None
    source = "StatusNotification"
    findings: list[Finding] = []
    if event.plug is ev.PlugState.FAULTED or code is not None:
        warning_only = event.plug is not ev.PlugState.FAULTED and code not in SAFETY_ERROR_CODES
        findings.append(Finding(IncidentKind.FAULT, connector, True,
                                Severity.WARNING if warning_only else Severity.CRITICAL,
                                code or event.raw_status, event.vendor_error_code, event.info, source))
    else:
        findings.append(Finding(IncidentKind.FAULT, connector, False, source=source))
    if event.plug is ev.PlugState.UNAVAILABLE:
        findings.append(Finding(IncidentKind.UNAVAILABLE, connector, True, Severity.WARNING, event.raw_status,
                                event.vendor_error_code, event.info, source))
    else:
        findings.append(Finding(IncidentKind.UNAVAILABLE, connector, False, source=source))
    return findings


def device_event_findings(event: ev.DeviceEvent) -> list[Finding]:
    """A 2.0.1 NotifyEvent item: a problem flag, an availability state, or an alert of a monitor."""
    connector = _connector(event.evse_id)
    code = f"{event.component}/{event.variable}"
    source = "NotifyEvent"
    value = event.actual_value.strip()
    if event.variable == "AvailabilityState":
        if value == "Faulted":
            return [Finding(IncidentKind.FAULT, connector, True, Severity.CRITICAL, code, event.tech_code,
                            event.tech_info or value, source)]
        if value == "Unavailable":
            return [Finding(IncidentKind.UNAVAILABLE, connector, True, Severity.WARNING, code, event.tech_code,
                            event.tech_info or value, source)]
        if value in ("Available", "Occupied", "Reserved"):
            return [Finding(IncidentKind.FAULT, connector, False, source=source),
                    Finding(IncidentKind.UNAVAILABLE, connector, False, source=source)]
        return []
    if event.variable in PROBLEM_VARIABLES:
        active = value.lower() in TRUE_WORDS and event.cleared is not True
        return [Finding(IncidentKind.FAULT, connector, active, Severity.CRITICAL, code, event.tech_code,
                        event.tech_info or f"{event.variable}={value}", source)]
    if event.trigger == "Alerting":
        # A threshold monitor (ours: over-temperature) tripped, or its cleared report came.
        active = event.cleared is not True
        return [Finding(IncidentKind.FAULT, connector, active, Severity.WARNING, code, event.tech_code,
                        event.tech_info or f"{event.variable}={value}", source)]
    return []


def security_severity(event_type: str) -> Severity:
    if event_type in CRITICAL_SECURITY_EVENTS:
        return Severity.CRITICAL
    if event_type in ROUTINE_SECURITY_EVENTS:
        return Severity.INFO
    return Severity.WARNING


def firmware_findings(event: ev.FirmwareStatusReported) -> list[Finding]:
    if event.status in FIRMWARE_FAILURES:
        return [Finding(IncidentKind.FIRMWARE, None, True, Severity.WARNING, event.status, None,
                        f"request {event.request_id}" if event.request_id is not None else None,
                        "FirmwareStatusNotification")]
    if event.status in FIRMWARE_SUCCESS:
        return [Finding(IncidentKind.FIRMWARE, None, False, source="FirmwareStatusNotification")]
    return []


def upload_findings(event: ev.DiagnosticsStatusReported) -> list[Finding]:
    source = "LogStatusNotification" if event.kind == "log" else "DiagnosticsStatusNotification"
    if event.status in UPLOAD_FAILURES:
        return [Finding(IncidentKind.DIAGNOSTICS, None, True, Severity.WARNING, event.status, None,
                        f"{event.kind} upload failed", source)]
    if event.status in UPLOAD_SUCCESS:
        return [Finding(IncidentKind.DIAGNOSTICS, None, False, source=source)]
    return []
