"""What a connector's latest readings say (``csms_adapter.control.live_state``): whether a reading is fresh, the
measured draw and current, the phases its vehicle draws on. Pure functions of a connector's state and the time;
``stale_after`` is the live state's (three meter intervals)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from csms_adapter.control.connector_state import ConnectorState, Reading
from csms_adapter.protocol.telemetry import MAX_FUTURE
from optimizer.circuits import PHASE_LEARN_MIN_A, wired_phases
from optimizer.domain import Charger


def is_fresh(reading: Reading | None, now: datetime, stale_after: timedelta) -> bool:
    # A reading from further ahead than the normaliser tolerates means our clock jumped back: not fresh.
    return reading is not None and -MAX_FUTURE <= now - reading.at <= stale_after


def measured_power_kw(charger: Charger, connector: ConnectorState, now: datetime, stale_after: timedelta
                      ) -> float | None:
    """Fresh measured draw of a connector, from power or else from per-phase current; None when stale.

    A reading taken before the charger accepted a lower limit for this session describes the old limit: the
    draw is then at most the new one (a charger that does not follow is caught by the compliance check and
    leaves control, and then its readings count as they are)."""
    power = connector.readings.power_kw
    if is_fresh(power, now, stale_after):
        assert power is not None
        return not_above_accepted(connector, power.value, power.at)
    fresh = [r for r in connector.readings.phase_current_a.values() if is_fresh(r, now, stale_after)]
    currents = [r.value for r in fresh]
    total = connector.readings.current_a
    if not currents and is_fresh(total, now, stale_after):
        assert total is not None
        fresh = [total]
        currents = [total.value] * charger.phases
    if currents:
        taken_at = min(r.at for r in fresh)
        return not_above_accepted(connector, sum(currents) * charger.voltage_v / 1000.0, taken_at)
    return None


def latest_draw_at(connector: ConnectorState) -> datetime | None:
    """When the newest reading of the connector's draw (power, current, per-phase current) was taken."""
    readings = connector.readings
    times = [r.at for r in (readings.power_kw, readings.current_a, *readings.phase_current_a.values()) if r is not None]
    return max(times, default=None)


def not_above_accepted(connector: ConnectorState, measured_kw: float, taken_at: datetime) -> float:
    session, command = connector.session, connector.command
    if (session is None or command is None or command.accepted_at is None or session.ignoring_limit
            or command.transaction_id != session.transaction_id or taken_at >= command.accepted_at):
        return measured_kw
    return min(measured_kw, command.limit_kw)


def learn_phases(charger: Charger, connector: ConnectorState, now: datetime, stale_after: timedelta) -> None:
    """Add to the session the site phases its vehicle draws on: from a fresh per-phase current reading of every
    charger phase, taken during the session, while it clearly charges. A phase counts as drawn above 1 A and
    a fifth of the strongest phase (a 3-phase vehicle draws on all three at once, so one full reading
    suffices; a phase once seen stays for the session)."""
    session = connector.session
    if session is None or charger.dc:
        return
    wired = wired_phases(charger)
    readings = [connector.readings.phase_current_a.get(f"L{k + 1}") for k in range(len(wired))]
    if any(r is None or not is_fresh(r, now, stale_after) or r.at < session.started_at for r in readings):
        return
    values = [r.value for r in readings if r is not None]
    if not all(math.isfinite(v) for v in values):
        return
    strongest = max(values)
    if strongest < PHASE_LEARN_MIN_A:
        return
    drawn = {wired[k] for k, value in enumerate(values) if value > max(1.0, 0.2 * strongest)}
    session.drawn_phases = session.drawn_phases | frozenset(drawn)


def phases_in_use(charger: Charger, connector: ConnectorState) -> int | None:
    """The phase count of the vehicle where known: ISO 15118 needs, else the phases it was measured on."""
    if connector.needs is not None and connector.needs.phases is not None:
        return connector.needs.phases
    if connector.session is not None and not charger.dc and connector.session.drawn_phases:
        return len(connector.session.drawn_phases)
    return None
