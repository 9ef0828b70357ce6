"""A vehicle that stops drawing between two ticks: how the controller tells, from what reaches the live state.

At a congested depot a vehicle that reaches its target in the middle of a control interval leaves the power it was
allowed unused until the next tick. The controller brings that tick forward (``csms_adapter.control.stop_ticks``)
when one of these functions says a vehicle stopped; at that tick the vehicle-limit memory
(``live_judgements.observe_vehicle_limit``) sees the stop and the plan gives its share to the others.

A stop is judged only on a connector worth re-planning: an open session under a command accepted for that session
of at least ``MIN_JUDGED_KW`` (below that the draw says nothing, as in ``optimizer.vehicle_limit``). Evidence is
either a meter sample that takes the connector's fresh draw from at least ``MIN_JUDGED_KW`` to below it, a 1.6
StatusNotification from Charging to SuspendedEV (the charger offers power, the vehicle takes none), or the first
settled reading after a new command that reads clearly less than it (``offer_refused``: the vehicle takes none, or
under 90 %, of what it was just offered). OCPP 2.0.1
reports the vehicle's stop through its meter: its StatusNotification carries only the plug (Occupied).

The judgements are pure functions of the connector's state and the numbers given (``stopped_drawing``,
``suspended_by_ev``); ``meter_stop`` and ``status_stop`` read them off the live state for the controller, which
reads the draw before a sample reaches the live state and after.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from csms_adapter.control.connector_state import ConnectorState
from csms_adapter.protocol import events as ev
from optimizer.vehicle_limit import MIN_JUDGED_KW, takes_clearly_less

if TYPE_CHECKING:
    from csms_adapter.control.live_state import LiveState

# 1.6 statuses (§7.7 ChargePointStatus): the vehicle charged, then stopped taking the energy offered.
CHARGING = "Charging"
SUSPENDED_EV = "SuspendedEV"


@dataclass(frozen=True, slots=True)
class VehicleStop:
    """A vehicle seen to stop drawing. ``at``: the charger's time of the evidence (the sample or the status)."""

    charger_id: str
    connector_id: int
    at: datetime
    evidence: str  # "meter", "SuspendedEV" or "refused"

    @property
    def where(self) -> str:
        return f"{self.charger_id}/{self.connector_id}"


def watched(connector: ConnectorState) -> bool:
    """True when a stop on this connector frees capacity worth re-planning: an open session whose accepted command
    (for this session) allows at least ``MIN_JUDGED_KW``."""
    session, command = connector.session, connector.command
    return (session is not None and command is not None and command.transaction_id == session.transaction_id
            and command.limit_kw >= MIN_JUDGED_KW)


def stopped_drawing(connector: ConnectorState, before_kw: float | None, after_kw: float | None) -> bool:
    """A meter sample took the connector's fresh draw (``live_readings.measured_power_kw``, kW; None: stale or not
    read) from at least ``MIN_JUDGED_KW`` to below it, on a watched connector."""
    return (watched(connector) and before_kw is not None and after_kw is not None
            and before_kw >= MIN_JUDGED_KW > after_kw)


def suspended_by_ev(connector: ConnectorState, before_status: str | None, status: str) -> bool:
    """A 1.6 StatusNotification took a watched connector from Charging to SuspendedEV."""
    return watched(connector) and before_status == CHARGING and status == SUSPENDED_EV


def _connector(live: LiveState, charger_id: str, connector_id: int) -> ConnectorState | None:
    state = live.chargers.get(charger_id)
    if state is None or connector_id < 1 or not live.site.has_charger(charger_id):
        return None
    return state.connectors.get(connector_id)


def draw_kw(live: LiveState, sample: ev.MeterSample) -> float | None:
    """The fresh draw (kW) of the connector a draw reading is for, at the sample's time; None for other samples,
    a connector that is not ``watched``, or no fresh reading."""
    if sample.quantity not in (ev.Quantity.POWER_KW, ev.Quantity.CURRENT_A) or sample.location == "Inlet":
        return None
    connector = _connector(live, sample.charger_id, sample.connector_id)
    if connector is None or not watched(connector):
        return None
    return live.measured_power_kw(live.site.charger(sample.charger_id), connector, sample.time)


def meter_stop(live: LiveState, sample: ev.MeterSample, before_kw: float | None) -> VehicleStop | None:
    """The stop ``sample`` shows, once applied to the live state (``before_kw``: ``draw_kw`` before it was)."""
    if before_kw is None or not before_kw >= MIN_JUDGED_KW:  # not drawing before: no need to read the draw after
        return None
    connector = _connector(live, sample.charger_id, sample.connector_id)
    if connector is None or not stopped_drawing(connector, before_kw, draw_kw(live, sample)):
        return None
    return VehicleStop(sample.charger_id, sample.connector_id, sample.time, "meter")


def offer_refused(live: LiveState, sample: ev.MeterSample, settle: timedelta) -> VehicleStop | None:
    """The first draw reading taken ``settle`` after a command of at least ``MIN_JUDGED_KW`` was sent (the time the
    vehicle-limit memory gives a vehicle to follow), once applied to the live state: a vehicle that takes clearly less
    of what it is offered (``vehicle_limit.takes_clearly_less``: nothing, as a full vehicle given a re-probe or plugged
    in full, or under 90 %, as a tapering one offered more than it takes) leaves the rest as idle as a stopped
    vehicle's. Judged once per command; a vehicle that takes (nearly) all of it is not a stop."""
    connector = _connector(live, sample.charger_id, sample.connector_id)
    session = connector.session if connector is not None else None
    if (connector is None or session is None or session.offer_watch_from is None
            or sample.time < session.offer_watch_from + settle):
        return None
    after_kw = draw_kw(live, sample)
    if after_kw is None:
        return None  # not a draw reading, or not fresh: the next one judges
    session.offer_watch_from = None
    command = connector.command
    if command is None or not takes_clearly_less(command.limit_kw, after_kw):
        return None  # it takes (nearly) all of it, or a reading that is no number: no evidence either way
    return VehicleStop(sample.charger_id, sample.connector_id, sample.time, "refused")


def status_stop(live: LiveState, event: ev.StatusChanged, before_status: str | None) -> VehicleStop | None:
    """The stop a status notification reports, read before it is applied to the live state."""
    connector = _connector(live, event.charger_id, event.connector_id)
    if (connector is None or connector.session is None or event.time < connector.session.started_at
            or not suspended_by_ev(connector, before_status, event.raw_status)):
        return None
    return VehicleStop(event.charger_id, event.connector_id, event.time, SUSPENDED_EV)
