"""The live state's judgements that advance with time, once per tick before the snapshot
(``LiveState.update``): whether a charger has ignored its limit for longer than the grace period, when a
failing connector is retried, what each vehicle is seen to take, and which operator inputs belong to sessions
that ended."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from csms_adapter.control.compliance import exceeds, latest_draw, settled_at
from csms_adapter.control.connector_state import ConnectorState
from csms_adapter.control.live_readings import latest_draw_at, measured_power_kw
from optimizer.domain import Charger
from optimizer.vehicle_limit import MIN_JUDGED_KW, Observation, infer_vehicle_limit

if TYPE_CHECKING:
    from csms_adapter.control.live_state import LiveState

log = logging.getLogger("depotctl.live_state")



def advance(live: LiveState, now: datetime) -> None:
    """``LiveState.update``: see the module's docstring."""
    for charger in live.site.chargers:
        state = live.chargers.get(charger.id)
        if state is None or not state.connected:
            continue
        for connector_id, connector in sorted(state.connectors.items()):
            if connector.session is None or not 1 <= connector_id <= charger.connectors:
                continue
            if live.out_of_service(charger.id, connector_id) is not None:
                # Out of the plan: budgeted at what it draws (snapshot), not judged against a limit, and a run of
                # readings over the limit from before does not carry over to when it is back.
                connector.session.over_since = None
                continue
            update_compliance(live, charger, connector_id, connector)
            if connector.failing_since is not None and now - connector.failing_since >= live.retry_failing_after:
                connector.failing_since = None
            if live.planned(connector, now):
                observe_vehicle_limit(live, charger, connector, now)
    live.inputs.forget_ended({(cid, conn_id): s.transaction_id for cid, conn_id, s in live.open_sessions()})
    live.inputs.expire(now)


def follow_time(meter_interval_s: float) -> timedelta:
    """How long a vehicle has to follow a command before its draw is judged against it: two meter intervals."""
    return timedelta(seconds=2 * meter_interval_s)


def observe_vehicle_limit(live: LiveState, charger: Charger, connector: ConnectorState, now: datetime) -> None:
    """Update what the session's vehicle is seen to take (``optimizer.vehicle_limit``): judged against the
    last accepted command once the vehicle has had two meter intervals to follow it."""
    session = connector.session
    assert session is not None
    command = connector.command
    allowed_kw: float | None = None
    if (command is not None and command.transaction_id == session.transaction_id
            and now - command.sent_at >= follow_time(live.site.ocpp.meter_interval_s)):
        allowed_kw = command.limit_kw
    drawn_kw = measured_power_kw(charger, connector, now, live.stale_after) if allowed_kw is not None else None
    if allowed_kw is not None and suspended_since_last_draw(connector):
        # The charger says the vehicle takes nothing, after the meter last spoke: a tick before the next reading
        # judges the stop now, not an interval later (docs/operations.md, "Ticks brought forward").
        drawn_kw = 0.0
    session.vehicle_limit = infer_vehicle_limit(session.vehicle_limit, allowed_kw, drawn_kw, now, session.seen)
    if allowed_kw is not None and drawn_kw is not None and allowed_kw >= MIN_JUDGED_KW:
        # The next judgement sees whether the draw fell since (a taper): the same rule as the benchmark plant's.
        session.seen = Observation(allowed_kw, drawn_kw)


def suspended_since_last_draw(connector: ConnectorState) -> bool:
    """True when the charger reported SuspendedEV for the session and no draw reading was taken since."""
    session = connector.session
    if session is None or session.ev_suspended_at is None:
        return False
    last_draw = latest_draw_at(connector)
    return last_draw is None or last_draw < session.ev_suspended_at


def update_compliance(live: LiveState, charger: Charger, connector_id: int, connector: ConnectorState) -> None:
    """Advance the verdict on whether the connector follows its accepted limit (``compliance``): on the meter's
    time, so that readings queued behind a backlog still count. A connector drawing above its command (with
    tolerance) for longer than the grace period ignores it."""
    session, command = connector.session, connector.command
    if (session is None or command is None or session.ignoring_limit
            or command.transaction_id != session.transaction_id):
        return
    together = timedelta(seconds=max(1, live.site.ocpp.meter_interval_s))
    draw = latest_draw(connector.readings, charger.voltage_v, charger.phases, together)
    if draw is None or draw.taken_at < settled_at(command, live.ignore_grace):
        return  # nothing read since the charger had time to follow: no verdict either way
    connected_at = live.charger(charger.id).connected_at
    if connected_at is not None and draw.taken_at < connected_at:
        # Queued while the charger was offline: it may rightly have run on its fail-safe profiles then.
        return
    if draw.taken_at >= command.sent_at + live.command_valid:
        # The TxProfile had lapsed (nothing is sent to a connector out of the plan, e.g. while it was faulted):
        # the charger rightly runs on its default or fail-safe profile until the next command reaches it.
        session.over_since = None
        return
    if not exceeds(draw, command, live.site.ocpp.deadband_a):
        session.over_since = None
        return
    if session.over_since is None:
        session.over_since = draw.taken_at
    elif draw.taken_at - session.over_since >= live.ignore_grace:
        session.ignoring_limit = True
        log.warning("charger=%s connector=%d ignores its limit (%.1f A / %.1f kW accepted, %s drawn); "
                    "budgeting what it draws", charger.id, connector_id, command.limit_a or 0.0,
                    command.limit_kw, f"{draw.power_kw:.1f} kW" if draw.power_kw is not None else "?")
