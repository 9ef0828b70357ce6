"""The 2.0.1 monitoring parsers and the rules never raise on garbage, and map reports to the right findings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csms_adapter.monitoring import IncidentKind, Severity, rules
from csms_adapter.protocol import events as ev
from csms_adapter.protocol.monitoring201 import device_events, monitoring_supported, report_variables, wanted_monitors

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                       max_size=5), max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_parsers_never_raise(raw: object) -> None:
    for event in device_events("cp-1", raw, NOW):
        rules.device_event_findings(event)
    variables = report_variables(raw)
    monitoring_supported(variables)
    wanted_monitors(variables)


@pytest.mark.parametrize(("status", "error", "expected"), [
    ("Faulted", "GroundFailure", [(IncidentKind.FAULT, True, Severity.CRITICAL), (IncidentKind.UNAVAILABLE, False, None)]),
    ("Charging", "HighTemperature", [(IncidentKind.FAULT, True, Severity.WARNING), (IncidentKind.UNAVAILABLE, False, None)]),
    ("Charging", "OverCurrentFailure", [(IncidentKind.FAULT, True, Severity.CRITICAL),
                                        (IncidentKind.UNAVAILABLE, False, None)]),
    # A flaky vehicle link while charging (OCPP 1.6 4.9: an error that does not stop delivery keeps its status).
    ("Charging", "EVCommunicationError", [(IncidentKind.FAULT, True, Severity.WARNING),
                                          (IncidentKind.UNAVAILABLE, False, None)]),
    ("Available", "ConnectorLockFailure", [(IncidentKind.FAULT, True, Severity.WARNING),
                                           (IncidentKind.UNAVAILABLE, False, None)]),
    ("Faulted", "EVCommunicationError", [(IncidentKind.FAULT, True, Severity.CRITICAL),
                                         (IncidentKind.UNAVAILABLE, False, None)]),
    ("Available", "GroundFailure", [(IncidentKind.FAULT, True, Severity.CRITICAL),
                                    (IncidentKind.UNAVAILABLE, False, None)]),
    ("Unavailable", "NoError", [(IncidentKind.FAULT, False, None), (IncidentKind.UNAVAILABLE, True, Severity.WARNING)]),
    ("Available", "NoError", [(IncidentKind.FAULT, False, None), (IncidentKind.UNAVAILABLE, False, None)]),
])
def test_status_rules(status: str, error: str, expected: list[tuple[IncidentKind, bool, Severity | None]]) -> None:
    plug = {"Faulted": ev.PlugState.FAULTED, "Unavailable": ev.PlugState.UNAVAILABLE,
            "Available": ev.PlugState.AVAILABLE}.get(status, ev.PlugState.OCCUPIED)
    findings = rules.status_findings(ev.StatusChanged("cp-1", 1, plug, status, NOW, error))
    assert [(f.kind, f.active, f.severity if f.active else None) for f in findings] == expected


def test_security_severities() -> None:
    assert rules.security_severity("TamperDetectionActivated") is Severity.CRITICAL
    assert rules.security_severity("StartupOfTheDevice") is Severity.INFO
    assert rules.security_severity("InvalidCsmsCertificate") is Severity.WARNING


def test_monitors_only_where_supported_and_for_problems_and_temperatures() -> None:
    variables = (
        ev.DeviceVariable("MonitoringCtrlr", "Enabled", "true"),
        ev.DeviceVariable("Connector", "Problem", "false", evse_id=2, connector_id=1),
        ev.DeviceVariable("EVSE", "Power", "0", evse_id=2),
        ev.DeviceVariable("TemperatureSensor", "Temperature", "40", component_instance="cabinet"),
    )
    assert monitoring_supported(variables)
    assert not monitoring_supported(variables[1:])
    monitors = wanted_monitors(variables)
    assert [(m["component"], m["type"]) for m in monitors] == [
        ({"name": "Connector", "evse": {"id": 2, "connector_id": 1}}, "Delta"),
        ({"name": "TemperatureSensor", "instance": "cabinet"}, "UpperThreshold")]
