"""Connectors the operator took out of service on purpose (ChangeAvailability Inoperative sent by depotctl at an
operator's request): pure bookkeeping, no I/O.

A *span* opens when the charger accepts the request, or — answered ``Scheduled`` because a transaction was running
— once that transaction has ended, and closes when the operator makes the connector operative again. While a span
is open the connector is out of the plan, its Unavailable status opens no ``unavailable`` incident, and its time
counts as "unavailable (operator)": not an outage, and neither available time for MTBF nor repair time for MTTR
(docs/monitoring.md, "Availability"). Connector 0 is the whole charger.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

ACCEPTED = "Accepted"
SCHEDULED = "Scheduled"


@dataclass(frozen=True, slots=True)
class OperatorSpan:
    id: str
    charger: str
    connector: int  # 0: the whole charger
    requested_at: datetime
    status: str  # ACCEPTED or SCHEDULED: what the charger answered
    started_at: datetime | None  # None: Scheduled, its transaction has not ended yet
    ended_at: datetime | None = None
    reason: str = ""

    def covers(self, charger: str, connector: int | None) -> bool:
        return self.charger == charger and (self.connector == 0 or connector in (None, 0, self.connector))

    @property
    def is_open(self) -> bool:
        return self.ended_at is None


class OperatorAvailability:
    """The operator's availability requests of one site; every change returns the spans to persist."""

    def __init__(self, spans: Iterable[OperatorSpan] = ()) -> None:
        self.spans: list[OperatorSpan] = list(spans)
        # Inoperative requests sent and not answered yet: the charger may report Unavailable before its answer
        # reaches us (it answers, then notifies; we may read the notification first).
        self.pending: set[tuple[str, int]] = set()

    def open_for(self, charger: str, connector: int | None) -> OperatorSpan | None:
        """The open request covering this connector (its own or its whole charger's), started or scheduled."""
        return next((s for s in self.spans if s.is_open and s.covers(charger, connector)), None)

    def inoperative(self, charger: str, connector: int | None) -> bool:
        """Taken out of service by the operator now (a Scheduled request counts once it started)."""
        return any(s.is_open and s.started_at is not None and s.covers(charger, connector) for s in self.spans)

    def asked_unavailable(self, charger: str, connector: int | None) -> bool:
        """An Unavailable status of this connector was asked for (started, scheduled or awaiting the charger's
        answer): not a charger problem."""
        if any(c == charger and (k == 0 or connector in (None, 0, k)) for c, k in self.pending):
            return True
        return self.open_for(charger, connector) is not None

    def inoperative_requested(self, charger: str, connector: int, status: str, at: datetime, reason: str,
                              new_id: Callable[[], str]) -> list[OperatorSpan]:
        """The charger answered ``status`` (Accepted/Scheduled) to Inoperative; a repeated request for a
        connector already out of service changes nothing."""
        current = next((s for s in self.spans if s.is_open and s.charger == charger and s.connector == connector),
                       None)
        if current is not None:
            if current.started_at is None and status == ACCEPTED:
                return [self._replace(current, status=ACCEPTED, started_at=at)]
            return []
        span = OperatorSpan(new_id(), charger, connector, at, status, at if status == ACCEPTED else None,
                            reason=reason)
        self.spans.append(span)
        return [span]

    def operative_accepted(self, charger: str, connector: int, at: datetime) -> list[OperatorSpan]:
        """The charger took Operative: the spans of that connector (all of the charger's, for connector 0) end."""
        ended = [s for s in self.spans if s.is_open and s.charger == charger and connector in (0, s.connector)]
        return [self._replace(s, ended_at=at, started_at=s.started_at or at) for s in ended]

    def transactions_over(self, busy: Callable[[str, int], bool], charger_connectors: Callable[[str], int],
                          at: datetime) -> list[OperatorSpan]:
        """Start the Scheduled spans whose connectors no longer run a transaction (``busy``)."""
        started = []
        for span in [s for s in self.spans if s.is_open and s.started_at is None]:
            targets = range(1, charger_connectors(span.charger) + 1) if span.connector == 0 else (span.connector,)
            if not any(busy(span.charger, k) for k in targets):
                started.append(self._replace(span, started_at=at))
        return started

    def in_window(self, since: datetime, until: datetime) -> list[OperatorSpan]:
        return [s for s in self.spans if s.started_at is not None and s.started_at < until
                and (s.ended_at is None or s.ended_at > since)]

    def forget_ended_before(self, before: datetime) -> None:
        self.spans = [s for s in self.spans if s.ended_at is None or s.ended_at >= before]

    def _replace(self, span: OperatorSpan, **changes: object) -> OperatorSpan:
        new = dataclasses.replace(span, **changes)  # type: ignore[arg-type]
        self.spans[self.spans.index(span)] = new
        return new
