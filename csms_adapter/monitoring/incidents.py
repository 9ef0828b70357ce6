"""The incident tracker: conditions in, incidents out. Pure: no I/O, no clock (every call takes ``now``).

A *condition* is a problem of one charger or connector, named by a ``ConditionKey`` (charger, connector, kind and,
for kinds where two problems can run side by side, a discriminator such as a security event type). Callers say
when a condition is reported (``report``) and when it clears (``clear``); ``advance`` lets time pass. The tracker
decides what an operator hears:

- debounce: a condition must last ``debounce_s(kind)`` before its incident opens (an offline blip shorter than
  that leaves no incident and tells nobody); ``opened_at`` is still when the condition began;
- one incident per ongoing problem: a repeated report of an open (or pending) condition raises ``occurrences``;
- hysteresis: a cleared condition resolves only after it stayed clear ``clear_after_s``; a relapse within that
  time is the same incident (one more occurrence), so a flapping connector is one incident, not twenty;
- point events (a security event, a failed upload) have no clearing message: ``quiet_resolve_s`` after their last
  report they resolve by themselves;
- resolved incidents are kept (``incidents()``), newest last; ``prune`` forgets the ones resolved before a time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from csms_adapter.monitoring.model import Incident, IncidentChange, IncidentKind, Severity


@dataclass(frozen=True, slots=True)
class ConditionKey:
    charger: str
    connector: int | None
    kind: IncidentKind
    discriminator: str = ""  # tells side-by-side problems of one kind apart (e.g. the security event type)


@dataclass(frozen=True, slots=True)
class Report:
    """What one report of a condition says; the newest report's code and info are what the incident shows."""

    severity: Severity
    source: str
    code: str | None = None
    vendor_code: str | None = None
    info: str | None = None
    point: bool = False  # no clearing message will come: resolve after quiet_resolve_s without a repeat


@dataclass(slots=True)
class _Tracked:
    incident: Incident
    announced: bool  # listeners were told it opened (debounce passed)
    last_report_at: datetime
    point: bool
    cleared_at: datetime | None = None  # clear seen, waiting out the hysteresis


@dataclass(frozen=True, slots=True)
class TrackerSettings:
    debounce_s: Callable[[str], float]
    clear_after_s: float = 0.0
    quiet_resolve_s: float = 3600.0


class IncidentTracker:
    """Not thread-safe; one per Monitor. Every method returns the changes it caused, in order."""

    def __init__(self, settings: TrackerSettings, new_id: Callable[[], str]) -> None:
        self.settings = settings
        self._new_id = new_id
        self._active: dict[ConditionKey, _Tracked] = {}
        self._closed: list[Incident] = []
        self.opened_total: dict[IncidentKind, int] = {}

    # ------------------------------------------------------------------------------ inputs

    def report(self, key: ConditionKey, report: Report, now: datetime) -> list[IncidentChange]:
        """The condition holds (again) at ``now``."""
        tracked = self._active.get(key)
        if tracked is None:
            incident = Incident(
                id=self._new_id(), charger=key.charger, connector=key.connector, kind=key.kind, code=report.code,
                vendor_code=report.vendor_code, info=report.info, severity=report.severity, opened_at=now,
                resolved_at=None, occurrences=1, source=report.source)
            tracked = _Tracked(incident, announced=False, last_report_at=now, point=report.point)
            self._active[key] = tracked
            return self._announce_if_due(tracked, now)
        tracked.incident = dataclasses.replace(
            tracked.incident, occurrences=tracked.incident.occurrences + 1,
            code=report.code if report.code is not None else tracked.incident.code,
            vendor_code=report.vendor_code if report.vendor_code is not None else tracked.incident.vendor_code,
            info=report.info if report.info is not None else tracked.incident.info,
            severity=max(tracked.incident.severity, report.severity, key=_RANK.__getitem__))
        tracked.last_report_at = now
        tracked.cleared_at = None
        changes = self._announce_if_due(tracked, now)
        if tracked.announced and not changes:
            changes.append(IncidentChange("repeated", tracked.incident))
        return changes

    def clear(self, key: ConditionKey, now: datetime) -> list[IncidentChange]:
        """The condition no longer holds at ``now`` (a no-op when it is not tracked)."""
        tracked = self._active.get(key)
        if tracked is None:
            return []
        if not tracked.announced:
            del self._active[key]  # a blip shorter than the debounce: nobody hears of it
            return []
        if tracked.cleared_at is None:
            tracked.cleared_at = now
        return self._resolve_if_due(key, tracked, now)

    def clear_all(self, charger: str, kinds: Iterable[IncidentKind], now: datetime,
                  connector: int | None = None, every_connector: bool = False) -> list[IncidentChange]:
        """Clear every tracked condition of ``charger`` of these kinds (on ``connector``, or on any connector
        when ``every_connector``)."""
        wanted = set(kinds)
        keys = [k for k in self._active
                if k.charger == charger and k.kind in wanted and (every_connector or k.connector == connector)]
        changes: list[IncidentChange] = []
        for key in keys:
            changes += self.clear(key, now)
        return changes

    def advance(self, now: datetime) -> list[IncidentChange]:
        """Let time pass: debounces that ran out open, hysteresis and quiet periods that ran out resolve."""
        changes: list[IncidentChange] = []
        for key, tracked in list(self._active.items()):
            if not tracked.announced:
                changes += self._announce_if_due(tracked, now)
            if tracked.point and tracked.cleared_at is None and tracked.announced:
                quiet_until = tracked.last_report_at + timedelta(seconds=self.settings.quiet_resolve_s)
                if now >= quiet_until:
                    tracked.cleared_at = quiet_until
            if tracked.cleared_at is not None:
                changes += self._resolve_if_due(key, tracked, now)
        return changes

    # ------------------------------------------------------------------------------ state

    def is_active(self, key: ConditionKey) -> bool:
        """Reported and not (yet) resolved, announced or still in its debounce."""
        return key in self._active

    def is_clearing(self, key: ConditionKey) -> bool:
        """Cleared and waiting out the hysteresis."""
        tracked = self._active.get(key)
        return tracked is not None and tracked.cleared_at is not None

    def current(self, key: ConditionKey) -> Incident | None:
        """The condition's incident while it holds (announced or still in its debounce; not while clearing)."""
        tracked = self._active.get(key)
        return tracked.incident if tracked is not None and tracked.cleared_at is None else None

    def active_keys(self) -> list[ConditionKey]:
        return list(self._active)

    def open_incidents(self) -> list[Incident]:
        """Incidents announced and not resolved (pending ones in their debounce are not incidents yet)."""
        return [t.incident for t in self._active.values() if t.announced]

    def incidents(self) -> list[Incident]:
        """Every announced incident, resolved ones first (oldest first), then the open ones."""
        return [*self._closed, *self.open_incidents()]

    def restore(self, incidents: Iterable[Incident], now: datetime) -> None:
        """Take back incidents kept from an earlier run: resolved ones as history, open ones as announced (their
        condition is re-evaluated by what arrives next)."""
        for incident in incidents:
            if incident.resolved_at is not None:
                self._closed.append(incident)
                continue
            key = ConditionKey(incident.charger, incident.connector, incident.kind, incident.code or "")
            self._active[_restored_key(key)] = _Tracked(incident, announced=True, last_report_at=now,
                                                        point=incident.kind in POINT_KINDS)

    def prune(self, before: datetime) -> int:
        """Forget resolved incidents that ended before ``before``; returns how many."""
        kept = [i for i in self._closed if i.resolved_at is not None and i.resolved_at >= before]
        dropped = len(self._closed) - len(kept)
        self._closed = kept
        return dropped

    # ------------------------------------------------------------------------------ internals

    def _announce_if_due(self, tracked: _Tracked, now: datetime) -> list[IncidentChange]:
        if tracked.announced:
            return []
        debounce = timedelta(seconds=self.settings.debounce_s(tracked.incident.kind.value))
        if now - tracked.incident.opened_at < debounce:
            return []
        tracked.announced = True
        kind = tracked.incident.kind
        self.opened_total[kind] = self.opened_total.get(kind, 0) + 1
        return [IncidentChange("opened", tracked.incident)]

    def _resolve_if_due(self, key: ConditionKey, tracked: _Tracked, now: datetime) -> list[IncidentChange]:
        assert tracked.cleared_at is not None
        if now - tracked.cleared_at < timedelta(seconds=self.settings.clear_after_s):
            return []
        del self._active[key]
        resolved = dataclasses.replace(tracked.incident, resolved_at=max(tracked.cleared_at,
                                                                         tracked.incident.opened_at))
        self._closed.append(resolved)
        return [IncidentChange("resolved", resolved)]


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}

# Kinds whose reports are point events with no clearing message.
POINT_KINDS = frozenset({IncidentKind.SECURITY_EVENT})


RESTORED = "restored"  # the discriminator of kept incidents whose own one is not stored (meter anomalies)


def _restored_key(key: ConditionKey) -> ConditionKey:
    # A point kind's discriminator is its code (the security event type); a meter anomaly's (register or quantity)
    # is not kept, so a restored one waits under RESTORED for its connector's next believable sample; the other
    # kinds are keyed by charger, connector and kind alone.
    if key.kind in POINT_KINDS:
        return key
    if key.kind is IncidentKind.METER_ANOMALY:
        return dataclasses.replace(key, discriminator=RESTORED)
    return dataclasses.replace(key, discriminator="")
