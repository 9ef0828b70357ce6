"""The operator's availability requests: ChangeAvailability sent to a charger at an operator's request (HTTP
``PUT /api/chargers/{id}/availability``), the answer recorded in ``Monitor.operator`` and the store.

Inoperative, answered Accepted: the connector (0: every connector of the charger) leaves the plan from the next
tick, which is brought forward, and its Unavailable status opens no incident. Answered Scheduled (a transaction
is running): it stays planned until that transaction ends, then leaves the plan (checked after every tick).
Rejected: nothing changes. Operative, Accepted or Scheduled: the connector is back in the plan. The time out of
service counts as "unavailable (operator)" in availability (docs/monitoring.md).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from csms_adapter.control.live_state import LiveState
from csms_adapter.errors import ChargerError
from csms_adapter.monitoring.monitor import Monitor
from csms_adapter.monitoring.operator_unavailability import OperatorSpan
from csms_adapter.protocol.link import ChargerLink

log = logging.getLogger("depotctl.availability")

SpanSink = Callable[[list[OperatorSpan]], None]


class ChargerNotConnected(ChargerError):
    """The charger is not connected (or not set up yet): nothing can be sent to it now."""


@dataclass(frozen=True, slots=True)
class AvailabilityResult:
    status: str  # the charger's answer: Accepted | Scheduled | Rejected
    span: OperatorSpan | None  # the operator's request now covering the connector (None: in service)


class AvailabilityRequests:
    def __init__(self, live: LiveState, monitor: Monitor, links: Mapping[str, ChargerLink],
                 clock: Callable[[], datetime], request_tick: Callable[[str], None],
                 new_id: Callable[[], str] | None = None) -> None:
        self.live = live
        self.monitor = monitor
        self.links = links
        self.clock = clock
        self.request_tick = request_tick
        self.new_id = new_id or (lambda: uuid.uuid4().hex[:16])
        self.save: SpanSink = lambda spans: None  # the store's journal, once restored

    def restore(self, spans: list[OperatorSpan], save: SpanSink) -> None:
        self.monitor.operator.spans = list(spans)
        self.save = save

    async def request(self, charger_id: str, connector_id: int, operative: bool, reason: str = ""
                      ) -> AvailabilityResult:
        """Send ChangeAvailability and record the answer. Raises ``ChargerNotConnected`` or the link's
        ``ChargerError`` (timeout, CallError, a malformed answer); then nothing changes."""
        link = self.links.get(charger_id)
        if link is None or not link.connected or not self.live.charger(charger_id).set_up:
            raise ChargerNotConnected(charger_id, "ChangeAvailability", "not connected")
        operator = self.monitor.operator
        key = (charger_id, connector_id)
        if not operative:
            operator.pending.add(key)
        try:
            status = await link.change_availability(connector_id, operative)
        finally:
            operator.pending.discard(key)
        now = self.clock()
        log.info("availability charger=%s connector=%d asked=%s answer=%s reason=%r", charger_id, connector_id,
                 "Operative" if operative else "Inoperative", status, reason)
        if status == "Rejected":
            return AvailabilityResult(status, operator.open_for(charger_id, connector_id or None))
        if operative:
            changed = operator.operative_accepted(charger_id, connector_id, now)
        else:
            changed = operator.inoperative_requested(charger_id, connector_id, status, now, reason, self.new_id)
        self.save(changed)
        self.monitor.service_changes += 1
        self.request_tick("availability changed")
        return AvailabilityResult(status, operator.open_for(charger_id, connector_id or None))

    def after_tick(self, now: datetime) -> None:
        """Start the Scheduled requests whose transactions have ended."""
        started = self.monitor.operator.transactions_over(self._busy, self._connectors, now)
        if started:
            for span in started:
                log.info("availability charger=%s connector=%d Inoperative now in effect (its transaction ended)",
                         span.charger, span.connector)
            self.save(started)
            self.request_tick("scheduled unavailability in effect")

    def _busy(self, charger_id: str, connector_id: int) -> bool:
        state = self.live.chargers.get(charger_id)
        connector = state.connectors.get(connector_id) if state is not None else None
        return connector is not None and connector.session is not None

    def _connectors(self, charger_id: str) -> int:
        return self.live.site.charger(charger_id).connectors if self.live.site.has_charger(charger_id) else 1
