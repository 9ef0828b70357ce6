"""The per-charger status timeline of the health panel, from incidents and the operator's availability requests.
Pure: incidents, requests and a window in, segments out (the same outage kinds and precedence as availability,
docs/monitoring.md). Time out of service at the operator's request has its own state, ``unavailable_operator``:
it is not an outage, and an operator must tell it from one at a glance."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from datetime import datetime

from csms_adapter.http_api.schemas_monitoring import ChargerTimeline, TimelineSegment, TimelineState
from csms_adapter.monitoring import Incident, IncidentKind
from csms_adapter.monitoring.availability import is_outage
from csms_adapter.monitoring.operator_unavailability import OperatorSpan

# Worst first: the state shown when several outages overlap.
_STATE: dict[IncidentKind, TimelineState] = {
    IncidentKind.OFFLINE: "offline",
    IncidentKind.FAULT: "faulted",
    IncidentKind.UNAVAILABLE: "unavailable",
}
_RANK: dict[TimelineState, int] = {"offline": 0, "faulted": 1, "unavailable": 2, "unavailable_operator": 3,
                                   "available": 4}


def timelines(incidents: Iterable[Incident], chargers: Sequence[str], since: datetime, until: datetime,
              operator_spans: Iterable[OperatorSpan] = ()) -> list[ChargerTimeline]:
    """One timeline per charger of ``chargers`` (in that order) covering [since, until) without gaps; an open
    incident or operator request runs to ``until``. A problem during an operator request shows as the problem.
    Raises ValueError when ``until`` is not after ``since``."""
    if until <= since:
        raise ValueError("until must be after since")
    spans: dict[str, list[tuple[datetime, datetime, TimelineState]]] = {c: [] for c in chargers}
    for incident in incidents:
        state = _STATE.get(incident.kind)
        if state is None or incident.charger not in spans or not is_outage(incident):
            continue
        start = max(incident.opened_at, since)
        end = min(incident.resolved_at or until, until)
        if end > start:
            spans[incident.charger].append((start, end, state))
    for span in operator_spans:
        if span.started_at is None or span.charger not in spans:
            continue  # a Scheduled request whose transaction still runs: the connector still serves
        start = max(span.started_at, since)
        end = min(span.ended_at or until, until)
        if end > start:
            spans[span.charger].append((start, end, "unavailable_operator"))
    return [ChargerTimeline(charger=c, segments=_segments(spans[c], since, until)) for c in chargers]


def _segments(spans: list[tuple[datetime, datetime, TimelineState]], since: datetime, until: datetime,
              ) -> list[TimelineSegment]:
    bounds = sorted({since, until, *(s for s, _, _ in spans), *(e for _, e, _ in spans)})
    out: list[TimelineSegment] = []
    for left, right in itertools.pairwise(bounds):
        state = min((st for s, e, st in spans if s <= left and e >= right), key=_RANK.__getitem__,
                    default="available")
        if out and out[-1].state == state:
            out[-1] = TimelineSegment(start=out[-1].start, end=right, state=state)
        else:
            out.append(TimelineSegment(start=left, end=right, state=state))
    return out
