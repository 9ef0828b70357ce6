"""The health panel's per-charger timeline (pure): outages by precedence, and time out of service at the operator's
request as its own state that any problem overrides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from csms_adapter.http_api.health import timelines
from csms_adapter.monitoring import Incident, IncidentKind, Severity
from csms_adapter.monitoring.operator_unavailability import OperatorSpan

T0 = datetime(2026, 3, 2, tzinfo=UTC)
H = timedelta(hours=1)


def fault(start: datetime, end: datetime | None) -> Incident:
    return Incident("f1", "cp-a", 1, IncidentKind.FAULT, "GroundFailure", None, None, Severity.CRITICAL, start, end,
                    1, "StatusNotification")


def request(start: datetime | None, end: datetime | None, connector: int = 2) -> OperatorSpan:
    return OperatorSpan("r1", "cp-a", connector, T0, "Accepted" if start else "Scheduled", start, end)


def states(spans: list[OperatorSpan], incidents: tuple[Incident, ...] = ()) -> list[tuple[float, float, str]]:
    [line] = timelines(incidents, ["cp-a"], T0, T0 + 10 * H, spans)
    return [((s.start - T0) / H, (s.end - T0) / H, s.state) for s in line.segments]


def test_operator_request_is_its_own_state() -> None:
    assert states([request(T0 + 2 * H, T0 + 4 * H)]) == [
        (0, 2, "available"), (2, 4, "unavailable_operator"), (4, 10, "available")]


def test_an_open_request_runs_to_the_end_and_a_scheduled_one_shows_nothing() -> None:
    assert states([request(T0 + 8 * H, None)]) == [(0, 8, "available"), (8, 10, "unavailable_operator")]
    assert states([request(None, None)]) == [(0, 10, "available")]


def test_a_fault_during_a_request_shows_as_the_fault() -> None:
    assert states([request(T0 + 2 * H, T0 + 6 * H)], (fault(T0 + 3 * H, T0 + 4 * H),)) == [
        (0, 2, "available"), (2, 3, "unavailable_operator"), (3, 4, "faulted"), (4, 6, "unavailable_operator"),
        (6, 10, "available")]


def test_another_chargers_request_and_an_empty_window() -> None:
    other = OperatorSpan("r2", "cp-b", 0, T0, "Accepted", T0, None)
    assert states([other]) == [(0, 10, "available")]
    with pytest.raises(ValueError, match="until"):
        timelines([], ["cp-a"], T0, T0, [other])


def test_a_warning_fault_on_a_working_connector_stays_available() -> None:
    warning = Incident("w1", "cp-a", 1, IncidentKind.FAULT, "EVCommunicationError", None, None, Severity.WARNING,
                       T0 + 1 * H, T0 + 5 * H, 1, "StatusNotification")
    assert states([], (warning, fault(T0 + 3 * H, T0 + 4 * H))) == [
        (0, 3, "available"), (3, 4, "faulted"), (4, 10, "available")]
