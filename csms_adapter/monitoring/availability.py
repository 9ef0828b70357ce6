"""Availability over a window, from incidents. Pure: incidents and a window in, rows out.

Definition (docs/monitoring.md, "Availability"), after the uptime rule of public charging-reliability programmes
(US NEVI, 23 CFR 680.116(b): a port is up when it can deliver energy; the operator's planned maintenance and
causes outside the operator's control are excluded):

- a connector is *unavailable (operator)* while the operator has it out of service (an ``OperatorSpan``: depotctl
  sent ChangeAvailability Inoperative at the operator's request and the charger took it); that time is excluded,
  like the programmes' planned maintenance: not an outage, not counted against the ratio, and neither available
  time (MTBF) nor repair time (MTTR);
- otherwise a connector is *offline* while its charger has an ``offline`` incident, else *faulted* while it (or
  its whole charger, connector 0/None) has a critical ``fault`` incident (a fault that stayed a warning came with a
  working connector, e.g. a 1.6 errorCode while Charging: the port could deliver energy, so it is up), else *unavailable* while it has an
  ``unavailable`` incident (the charger said Unavailable without being asked), else *available*;
- ``availability_ratio`` = (window − faulted − offline − unavailable) ÷ window;
- the charger's own row counts a second as down only when every connector is down then (the charger can still
  serve a vehicle while one connector works); its state is then the worst outage of its connectors, or
  *unavailable (operator)* when the operator has every connector out of service;
- an *outage* is an ``offline``, ``fault`` or ``unavailable`` incident; ``incidents`` counts the outages that
  overlap the window; MTBF = available seconds ÷ outages starting in the window, MTTR = mean length (within the
  window) of those outages; both None when no outage starts in the window.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from csms_adapter.monitoring.model import AvailabilityRow, Incident, IncidentKind, Severity
from csms_adapter.monitoring.operator_unavailability import OperatorSpan

OUTAGE_KINDS = (IncidentKind.OFFLINE, IncidentKind.FAULT, IncidentKind.UNAVAILABLE)
# Lower is worse: the state shown when several hold at once.
_PRIORITY = {IncidentKind.OFFLINE: 0, IncidentKind.FAULT: 1, IncidentKind.UNAVAILABLE: 2}
_OPERATOR = 3
_AVAILABLE = 4


@dataclass(frozen=True, slots=True)
class _Span:
    start: datetime
    end: datetime
    kind: IncidentKind
    incident: Incident


def availability(incidents: Iterable[Incident], connectors: Mapping[str, int], since: datetime, until: datetime,
                 operator: Iterable[OperatorSpan] = ()) -> list[AvailabilityRow]:
    """Rows for every charger in ``connectors`` (charger id → number of connectors): the charger's row
    (``connector`` None) then one per connector. ``until`` must be after ``since``; open incidents and operator
    spans run to ``until``."""
    if until <= since:
        raise ValueError(f"empty window: until {until.isoformat()} is not after since {since.isoformat()}")
    spans: dict[str, list[_Span]] = {charger: [] for charger in connectors}
    excluded: dict[str, list[tuple[datetime, datetime, int]]] = {charger: [] for charger in connectors}
    for op in operator:
        if op.started_at is None or op.charger not in excluded:
            continue
        start, end = max(op.started_at, since), min(op.ended_at or until, until)
        if end > start:
            excluded[op.charger].append((start, end, op.connector))
    for incident in incidents:
        if incident.charger not in spans or not is_outage(incident):
            continue
        start = max(incident.opened_at, since)
        end = min(incident.resolved_at or until, until)
        if end > start:
            spans[incident.charger].append(_Span(start, end, incident.kind, incident))
    rows: list[AvailabilityRow] = []
    for charger, count in connectors.items():
        rows += _charger_rows(charger, max(1, count), spans[charger], excluded[charger], since, until)
    return rows


def is_outage(incident: Incident) -> bool:
    """An offline, unavailable or critical fault incident (the port could not deliver energy)."""
    if incident.kind not in OUTAGE_KINDS:
        return False
    # A warning fault raised to critical later counts from its opening: the history keeps one severity per incident,
    # and counting too much downtime is the honest side.
    return incident.kind is not IncidentKind.FAULT or incident.severity is not Severity.WARNING


def _applies(span: _Span, connector: int) -> bool:
    if span.kind is IncidentKind.OFFLINE:
        return True
    return span.incident.connector in (None, 0, connector)


def _charger_rows(charger: str, count: int, spans: Sequence[_Span],
                  excluded: Sequence[tuple[datetime, datetime, int]], since: datetime, until: datetime,
                  ) -> list[AvailabilityRow]:
    if not spans and not excluded:  # the usual case, kept cheap: a depot of a thousand chargers is scraped often
        window_s = (until - since).total_seconds()
        return [AvailabilityRow(charger, connector, window_s, window_s, 0.0, 0.0, 0.0, 1.0, 0, None, None)
                for connector in (None, *range(1, count + 1))]
    bounds = sorted({since, until, *(s.start for s in spans), *(s.end for s in spans),
                     *(e[0] for e in excluded), *(e[1] for e in excluded)})
    window_s = (until - since).total_seconds()
    per_connector = [[0.0] * (_AVAILABLE + 1) for _ in range(count)]  # seconds by priority index
    whole = [0.0] * (_AVAILABLE + 1)
    for left, right in itertools.pairwise(bounds):
        length = (right - left).total_seconds()
        live = [s for s in spans if s.start <= left and s.end >= right]
        held = {k for start, end, k in excluded if start <= left and end >= right}
        states = []
        for connector in range(1, count + 1):
            if 0 in held or connector in held:
                state = _OPERATOR
            else:
                state = min((_PRIORITY[s.kind] for s in live if _applies(s, connector)), default=_AVAILABLE)
            per_connector[connector - 1][state] += length
            states.append(state)
        if _AVAILABLE in states:
            whole[_AVAILABLE] += length
        else:
            whole[min(states)] += length  # an outage of one connector shows over the operator's on another
    rows = [_row(charger, None, window_s, whole, spans, since)]
    for connector in range(1, count + 1):
        mine = [s for s in spans if _applies(s, connector)]
        rows.append(_row(charger, connector, window_s, per_connector[connector - 1], mine, since))
    return rows


def _row(charger: str, connector: int | None, window_s: float, seconds: list[float], spans: Sequence[_Span],
         since: datetime) -> AvailabilityRow:
    offline_s, faulted_s, unavailable_s, operator_s, available_s = seconds
    starting = [s for s in spans if s.incident.opened_at >= since]
    mtbf = available_s / len(starting) if starting else None
    mttr = sum((s.end - s.start).total_seconds() for s in starting) / len(starting) if starting else None
    return AvailabilityRow(
        charger=charger, connector=connector, window_s=window_s, available_s=available_s, faulted_s=faulted_s,
        offline_s=offline_s, unavailable_s=unavailable_s, unavailable_operator_s=operator_s,
        availability_ratio=(window_s - faulted_s - offline_s - unavailable_s) / window_s,
        incidents=len({s.incident.id for s in spans}), mtbf_s=mtbf, mttr_s=mttr)
