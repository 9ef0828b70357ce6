"""Availability from incidents over a window: seconds per state, ratio, MTBF and MTTR."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from csms_adapter.monitoring import Incident, IncidentKind, Severity
from csms_adapter.monitoring.availability import availability

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def incident(n: int, kind: IncidentKind, start_h: float, end_h: float | None, connector: int | None = 1,
             charger: str = "cp-1", severity: Severity = Severity.CRITICAL) -> Incident:
    return Incident(f"i{n}", charger, connector, kind, None, None, None, severity, at(start_h),
                    at(end_h) if end_h is not None else None, 1, "test")


def rows_by_connector(incidents: list[Incident], connectors: int = 2) -> dict[int | None, dict[str, object]]:
    return {r.connector: r.to_json() for r in availability(incidents, {"cp-1": connectors}, T0, T0 + DAY)}


def test_no_incident_is_fully_available_and_mtbf_undefined() -> None:
    row = rows_by_connector([])[1]
    assert row["availability_ratio"] == 1.0
    assert row["available_s"] == 86_400
    assert row["mtbf_s"] is None and row["mttr_s"] is None


def test_connector_fault_counts_on_that_connector_only() -> None:
    rows = rows_by_connector([incident(1, IncidentKind.FAULT, 6, 12)])
    assert rows[1]["faulted_s"] == 6 * 3600
    assert rows[1]["availability_ratio"] == pytest.approx(0.75)
    assert rows[1]["mttr_s"] == 6 * 3600 and rows[1]["mtbf_s"] == 18 * 3600
    assert rows[2]["faulted_s"] == 0
    assert rows[None]["availability_ratio"] == 1.0  # the other connector still served vehicles


def test_offline_outranks_fault_and_covers_every_connector() -> None:
    rows = rows_by_connector([incident(1, IncidentKind.FAULT, 0, 4), incident(2, IncidentKind.OFFLINE, 2, 6, None)])
    assert (rows[1]["offline_s"], rows[1]["faulted_s"]) == (4 * 3600, 2 * 3600)
    assert rows[2]["offline_s"] == 4 * 3600
    assert rows[None]["offline_s"] == 4 * 3600
    assert rows[1]["incidents"] == 2


def test_open_incident_runs_to_the_end_and_clips_to_the_window() -> None:
    rows = rows_by_connector([incident(1, IncidentKind.UNAVAILABLE, -5, 2), incident(2, IncidentKind.FAULT, 20, None)])
    assert rows[1]["unavailable_s"] == 2 * 3600
    assert rows[1]["faulted_s"] == 4 * 3600
    assert rows[1]["mttr_s"] == 4 * 3600  # only the outage that started in the window


def test_charger_wide_fault_takes_every_connector_down() -> None:
    rows = rows_by_connector([incident(1, IncidentKind.FAULT, 0, 12, connector=None)])
    assert rows[None]["faulted_s"] == rows[1]["faulted_s"] == rows[2]["faulted_s"] == 12 * 3600


def test_other_kinds_are_not_outages() -> None:
    rows = rows_by_connector([incident(1, IncidentKind.METER_ANOMALY, 0, 12),
                              incident(2, IncidentKind.SECURITY_EVENT, 0, 12, None)])
    assert rows[1]["availability_ratio"] == 1.0 and rows[1]["incidents"] == 0


def test_a_warning_fault_on_a_working_connector_is_not_an_outage() -> None:
    # e.g. a 1.6 EVCommunicationError while Charging: the port still delivered energy (the uptime rule)
    rows = rows_by_connector([incident(1, IncidentKind.FAULT, 0, 12, severity=Severity.WARNING),
                              incident(2, IncidentKind.FAULT, 12, 18, connector=2)])
    assert rows[1]["availability_ratio"] == 1.0 and rows[1]["faulted_s"] == 0 and rows[1]["incidents"] == 0
    assert rows[2]["faulted_s"] == 6 * 3600 and rows[2]["incidents"] == 1


def test_empty_window_is_refused() -> None:
    with pytest.raises(ValueError, match="empty window"):
        availability([], {"cp-1": 1}, T0, T0)
