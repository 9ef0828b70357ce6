"""The Monitor: condition monitoring wired to the controller and the store (interface first; see docs/monitoring.md).

The controller owns one (``controller.monitor``) and feeds it every event it publishes; the HTTP API, metrics and
webhooks read it and subscribe to ``listeners``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from csms_adapter.monitoring.model import AvailabilityRow, EventRecord, Incident, IncidentChange, IncidentKind, Severity
from csms_adapter.protocol import events as ev
from optimizer.domain import MonitoringSettings

log = logging.getLogger("depotctl.monitor")

Clock = Callable[[], datetime]
Listener = Callable[[IncidentChange], None]


class Monitor:
    def __init__(self, settings: MonitoringSettings, *, clock: Clock, chargers: Sequence[str] = ()) -> None:
        self.settings = settings
        self.clock = clock
        self.chargers = tuple(chargers)
        self.listeners: list[Listener] = []  # called on opened/resolved after debounce; must not block
        self._incidents: list[Incident] = []

    def observe(self, event: ev.Event) -> None:
        """Take one event from the protocol edge (cheap, on the event loop)."""

    def incidents(self, open: bool | None = None, charger: str | None = None,
                  since: datetime | None = None) -> list[Incident]:
        """Incidents newest first; ``open`` True/False filters open/resolved; ``since`` keeps those opened or
        resolved at or after it (an incident still open counts as current)."""
        rows = [i for i in self._incidents
                if (open is None or i.is_open == open) and (charger is None or i.charger == charger)
                and (since is None or i.opened_at >= since or i.resolved_at is None or i.resolved_at >= since)]
        return sorted(rows, key=lambda i: i.opened_at, reverse=True)

    async def events(self, charger: str, since: datetime | None = None, until: datetime | None = None,
                     limit: int = 500) -> list[EventRecord]:
        """The stored raw history of one charger, newest first, at most ``limit`` records."""
        return []

    def availability(self, since: datetime, until: datetime) -> list[AvailabilityRow]:
        """Per charger (``connector`` None) and per connector over [since, until)."""
        return []

    def counts_open(self) -> dict[tuple[IncidentKind, Severity], int]:
        counts: dict[tuple[IncidentKind, Severity], int] = {}
        for incident in self._incidents:
            if incident.is_open:
                key = (incident.kind, incident.severity)
                counts[key] = counts.get(key, 0) + 1
        return counts

    def totals(self) -> dict[IncidentKind, int]:
        """Incidents opened (and reported to listeners) per kind since the start: a counter."""
        counts: dict[IncidentKind, int] = {}
        for incident in self._incidents:
            counts[incident.kind] = counts.get(incident.kind, 0) + 1
        return counts

    def charger_up(self, charger: str) -> bool:
        """Connected and not faulted."""
        return False
