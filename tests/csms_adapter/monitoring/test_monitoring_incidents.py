"""The pure incident tracker, driven by a fake clock."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from csms_adapter.monitoring import IncidentKind, Severity
from csms_adapter.monitoring.incidents import ConditionKey, IncidentTracker, Report, TrackerSettings

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
OFFLINE = ConditionKey("cp-1", None, IncidentKind.OFFLINE)
FAULT = ConditionKey("cp-1", 1, IncidentKind.FAULT)
BROKEN = Report(Severity.CRITICAL, "StatusNotification", "GroundFailure", "E42", "RCD tripped")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def tracker(debounce: dict[str, float] | None = None, clear_after_s: float = 0.0,
            quiet_resolve_s: float = 3600.0) -> IncidentTracker:
    ids = (f"inc-{n}" for n in itertools.count(1))
    table = debounce if debounce is not None else {"offline": 120.0}
    return IncidentTracker(TrackerSettings(lambda kind: table.get(kind, 0.0), clear_after_s, quiet_resolve_s),
                           lambda: next(ids))


def test_fault_opens_at_once_and_resolves_exactly_once() -> None:
    t = tracker()
    opened = t.report(FAULT, BROKEN, at(0))
    assert [c.event for c in opened] == ["opened"]
    incident = opened[0].incident
    assert (incident.code, incident.vendor_code, incident.info) == ("GroundFailure", "E42", "RCD tripped")
    assert incident.to_json()["resolved_at"] is None
    resolved = t.clear(FAULT, at(30))
    assert [c.event for c in resolved] == ["resolved"]
    assert resolved[0].incident.resolved_at == at(30)
    assert t.clear(FAULT, at(31)) == []
    assert t.advance(at(500)) == []
    assert [i.id for i in t.incidents()] == ["inc-1"]  # kept after it resolved


def test_offline_blip_shorter_than_debounce_leaves_nothing() -> None:
    t = tracker()
    assert t.report(OFFLINE, Report(Severity.CRITICAL, "connection", "disconnected"), at(0)) == []
    assert t.advance(at(119)) == []
    assert t.clear(OFFLINE, at(119)) == []
    assert t.advance(at(1000)) == []
    assert t.incidents() == []
    assert t.opened_total == {}


def test_offline_past_debounce_opens_with_the_start_time() -> None:
    t = tracker()
    t.report(OFFLINE, Report(Severity.CRITICAL, "connection", "disconnected"), at(0))
    changes = t.advance(at(121))
    assert [c.event for c in changes] == ["opened"]
    assert changes[0].incident.opened_at == at(0)
    assert t.opened_total == {IncidentKind.OFFLINE: 1}


def test_repeats_count_as_occurrences_of_one_incident() -> None:
    t = tracker()
    t.report(FAULT, BROKEN, at(0))
    for n in range(1, 5):
        changes = t.report(FAULT, BROKEN, at(n))
        assert [c.event for c in changes] == ["repeated"]
    [incident] = t.open_incidents()
    assert incident.occurrences == 5


def test_hysteresis_keeps_a_flapping_connector_one_incident() -> None:
    t = tracker(clear_after_s=60.0)
    t.report(FAULT, BROKEN, at(0))
    assert t.clear(FAULT, at(10)) == []  # still within the hysteresis
    assert [c.event for c in t.report(FAULT, BROKEN, at(20))] == ["repeated"]
    assert t.clear(FAULT, at(30)) == []
    assert t.advance(at(89)) == []
    [resolved] = t.advance(at(90))
    assert resolved.event == "resolved"
    assert resolved.incident.resolved_at == at(30)
    assert resolved.incident.occurrences == 2
    assert len(t.incidents()) == 1


def test_point_events_resolve_after_a_quiet_period() -> None:
    key = ConditionKey("cp-1", None, IncidentKind.SECURITY_EVENT, "TamperDetectionActivated")
    t = tracker(quiet_resolve_s=600.0)
    report = Report(Severity.CRITICAL, "SecurityEventNotification", "TamperDetectionActivated", point=True)
    assert [c.event for c in t.report(key, report, at(0))] == ["opened"]
    t.report(key, report, at(300))
    assert t.advance(at(899)) == []
    [resolved] = t.advance(at(900))
    assert resolved.incident.resolved_at == at(900)
    assert resolved.incident.occurrences == 2


def test_side_by_side_problems_are_separate_incidents() -> None:
    t = tracker()
    t.report(FAULT, BROKEN, at(0))
    t.report(ConditionKey("cp-1", 2, IncidentKind.FAULT), BROKEN, at(0))
    t.report(ConditionKey("cp-2", 1, IncidentKind.FAULT), BROKEN, at(0))
    assert len(t.open_incidents()) == 3


def test_severity_only_grows_while_open() -> None:
    t = tracker()
    t.report(FAULT, Report(Severity.WARNING, "StatusNotification", "HighTemperature"), at(0))
    t.report(FAULT, BROKEN, at(1))
    t.report(FAULT, Report(Severity.WARNING, "StatusNotification", "HighTemperature"), at(2))
    [incident] = t.open_incidents()
    assert incident.severity is Severity.CRITICAL
    assert incident.code == "HighTemperature"  # the newest report's code


def test_prune_forgets_only_old_resolved_incidents() -> None:
    t = tracker()
    t.report(FAULT, BROKEN, at(0))
    t.clear(FAULT, at(10))
    t.report(ConditionKey("cp-2", 1, IncidentKind.FAULT), BROKEN, at(0))
    assert t.prune(at(11)) == 1
    assert [i.charger for i in t.incidents()] == ["cp-2"]


@pytest.mark.parametrize("debounce_s", [0.0, 30.0])
def test_restored_open_incident_resolves_on_its_clear(debounce_s: float) -> None:
    first = tracker({"fault": debounce_s})
    first.report(FAULT, BROKEN, at(0))
    first.advance(at(debounce_s))
    kept = first.incidents()
    second = tracker()
    second.restore(kept, at(100))
    [resolved] = second.clear(FAULT, at(101))
    assert resolved.incident.id == kept[0].id
    assert resolved.incident.resolved_at == at(101)
