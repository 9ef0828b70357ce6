"""The ``Snapshot`` the optimizer plans on, read from the live state without changing it
(``LiveState.snapshot``): each planned session with its needs in trust order, everything else as uncontrolled
load budgeted conservatively (docs/architecture.md, "The live state"), and the base load with what monitor-only
chargers draw."""

from __future__ import annotations

import math
import zoneinfo
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from csms_adapter.control.connector_state import ConnectorState
from csms_adapter.control.live_readings import is_fresh, measured_power_kw, phases_in_use
from csms_adapter.protocol import authorization
from optimizer.circuits import wired_phases
from optimizer.domain import Charger, SessionState, Site, Snapshot, UncontrolledLoad, ValueSource
from optimizer.horizon import FINE_H
from optimizer.needs import DEFAULT_SOC_RESOLUTION
from optimizer.soc_fusion import SocLine

if TYPE_CHECKING:
    from csms_adapter.control.live_state import LiveState


def session_state_of(live: LiveState, charger: Charger, connector_id: int, connector: ConnectorState, now: datetime
                     ) -> SessionState:
    """A connector's open session as the optimizer sees it; trust order in ``csms_adapter.control.live_state``."""
    session = connector.session
    assert session is not None
    delivered = session.delivered_kwh
    needs = connector.needs
    phases = phases_in_use(charger, connector)
    soc: float | None = None
    soc_source = ValueSource.ESTIMATED
    soc_at: datetime | None = None  # when the SoC used was read (its age widens the need's margin)
    soc_error: float | None = None  # of a SoC fitted to several readings
    energy_needed: float | None = None
    capacity = needs.capacity_kwh if needs is not None else None
    if needs is not None and needs.energy_kwh is not None:
        energy_needed = max(0.0, needs.energy_kwh - (delivered - connector.needs_delivered_kwh))
    soc_reading = connector.readings.soc
    if needs is not None and needs.soc is not None and (soc_reading is None or soc_reading.at <= needs.time):
        soc, soc_source = needs.soc, ValueSource.ISO15118  # advanced by the meter: its age adds nothing
        if capacity:
            soc = min(1.0, soc + (delivered - connector.needs_delivered_kwh) / capacity)
    elif soc_reading is not None:
        soc, soc_source, soc_at = soc_reading.value, ValueSource.MEASURED, soc_reading.at
        fresh = is_fresh(soc_reading, now, live.stale_after)
        line = soc_line(live.site, charger.id, connector)
        fitted = session.soc_track.fitted(delivered, line) if line is not None else None
        if fitted is not None:
            # The readings so far fitted against the register (optimizer.soc_fusion), advanced to its latest figure.
            soc, soc_error = fitted.soc, fitted.error
        elif not fresh:
            # Advance a stale SoC by what was delivered since, using the best-known capacity.
            battery = capacity or roster_capacity(live.site, session.id_tag)
            soc = min(1.0, soc + (delivered - connector.soc_delivered_kwh) / battery)
        if not fresh:
            soc_source = ValueSource.ESTIMATED
    max_power: float | None = None
    if needs is not None:
        if needs.max_power_kw is not None:
            max_power = needs.max_power_kw
        elif needs.max_current_a is not None and not charger.dc:
            max_power = charger.power_kw_at(needs.max_current_a, needs.phases or phases or charger.phases)
    if session.vehicle_limit is not None:
        drawn_limit = session.vehicle_limit.limit_kw
        max_power = drawn_limit if max_power is None else min(max_power, drawn_limit)
    if session.id_tag is not None and not authorization.decide(live.site, session.id_tag, now).accepted:
        # A refused token (ocpp.authorize: roster) that charges anyway is planned nothing: its TxProfile is 0.
        max_power = 0.0
    temp = connector.readings.battery_temp_c
    state = SessionState(
        charger_id=charger.id,
        connector_id=connector_id,
        soc=soc,
        soc_source=soc_source,
        energy_needed_kwh=energy_needed,
        battery_kwh=capacity,
        departure=needs.departure if needs is not None else None,
        max_power_kw=max_power,
        battery_temp_c=temp.value if temp is not None else None,
        temp_source=ValueSource.MEASURED if is_fresh(temp, now, live.stale_after) else ValueSource.ESTIMATED,
        id_tag=session.id_tag,
        phases=phases,
        site_phases=tuple(p for p in wired_phases(charger) if p in session.drawn_phases) or None,
        plugged_in_at=session.started_at,
        energy_delivered_kwh=delivered,
        energy_at=session.energy_at,
        temp_at=temp.at if temp is not None else None,
        soc_age_s=max(0.0, (now - soc_at).total_seconds()) if soc_at is not None else None,
        power_kw=measured_power_kw(charger, connector, now, live.stale_after),
        soc_error=soc_error,
    )
    return live.inputs.apply_session(state, session.transaction_id, now)


def session_state(live: LiveState, charger_id: str, connector_id: int, now: datetime) -> SessionState | None:
    """The open session on a connector as the next snapshot will show it (no side effects), or None."""
    state = live.chargers.get(charger_id)
    connector = state.connectors.get(connector_id) if state is not None else None
    if connector is None or connector.session is None or not live.site.has_charger(charger_id):
        return None
    return session_state_of(live, live.site.charger(charger_id), connector_id, connector, now)


def soc_line(site: Site, charger_id: str, connector: ConnectorState) -> SocLine | None:
    """What a session's SoC readings are fitted with: the best-known capacity and the charger's efficiency (None: the
    charger is not in the site, or no session is open)."""
    session = connector.session
    if session is None or not site.has_charger(charger_id):
        return None
    needs = connector.needs
    capacity = needs.capacity_kwh if needs is not None and needs.capacity_kwh else roster_capacity(site, session.id_tag)
    return SocLine(capacity, site.charger(charger_id).efficiency, DEFAULT_SOC_RESOLUTION)


def roster_capacity(site: Site, id_tag: str | None) -> float:
    vehicle = site.vehicle_for_tag(id_tag) if id_tag else None
    return (vehicle or site.fleet_defaults).battery_kwh


def build_snapshot(live: LiveState, now: datetime) -> Snapshot:
    """The depot at ``now`` for the optimizer, read without changing anything (call ``update`` first to let
    time-dependent judgements advance). Only site chargers appear; monitor-only ones cannot be placed in a
    circuit, so they are logged but not budgeted."""
    sessions: list[SessionState] = []
    uncontrolled: list[UncontrolledLoad] = []
    for charger in live.site.chargers:
        state = live.chargers.get(charger.id)
        if state is None or not state.connected or not state.set_up:
            # Not set up yet (just connected, its boot or resync still running) is treated like offline:
            # nothing can be sent to it, so it runs on the fail-safe profiles it holds, or, if it never took
            # ours, on its own defaults (its maximum). A charger being set up is at its share within seconds
            # (the set-up sends it first thing).
            why = "disconnected" if state is None or not state.connected else "connecting"
            at_share = (state is not None and (state.failsafe_accepted or state.connected)
                        and charger.id in live.failsafe_kw)
            uncontrolled.append(UncontrolledLoad(
                charger.id, 0, live.failsafe_kw[charger.id] if at_share else live.fallback_kw_for(charger, state),
                live.failsafe_spread.get(charger.id, 1) if at_share else live.fallback_spread(charger.id),
                f"{why}: budgeted at its fail-safe limit" if at_share
                else f"{why} and never took its fail-safe: budgeted at its maximum"))
            continue
        for connector_id, connector in sorted(state.connectors.items()):
            if connector.session is None or not 1 <= connector_id <= charger.connectors:
                continue
            out = live.out_of_service(charger.id, connector_id)
            if out is not None:
                # Faulted or unavailable (condition monitoring): out of the plan, budgeted at what it draws.
                measured = measured_power_kw(charger, connector, now, live.stale_after)
                uncontrolled.append(UncontrolledLoad(
                    charger.id, connector_id, max(0.0, measured or 0.0),
                    phases_in_use(charger, connector) or charger.phases, f"out of service: {out}"))
                continue
            if live.planned(connector, now):
                sessions.append(session_state_of(live, charger, connector_id, connector, now))
                continue
            measured = measured_power_kw(charger, connector, now, live.stale_after)
            fallback = live.fallback_kw_for(charger, state) / charger.connectors
            if connector.rejected is not None:
                reason = f"profile rejected: {connector.rejected}"
            elif connector.session.ignoring_limit:
                reason = "draws more than its limit"
            else:
                reason = "does not answer profile calls: budgeted at its fail-safe limit"
                # Its old TxProfile lapses to the fail-safe default, whatever it draws at this instant.
                measured = None if measured is None or measured <= fallback else measured
            # A measured draw on phases not known may all be on one phase; the fall-back lands as the fail-safe.
            draw, spread = (fallback, live.fallback_spread(charger.id)) if measured is None else (measured, 1)
            uncontrolled.append(UncontrolledLoad(
                charger.id, connector_id, max(0.0, draw),
                phases_in_use(charger, connector) or spread, reason))
    return Snapshot(time=now, sessions=tuple(sessions), uncontrolled=tuple(uncontrolled),
                    grid_cap_kw=live.inputs.grid_cap_kw(now), grid_cap_until=live.inputs.grid_cap_until(now),
                    base_load_kw=base_load_kw(live, now), external_limits=live.external.in_force(now))


def monitored_kw(live: LiveState) -> float:
    """What monitor-only chargers (``ocpp.accept_unknown``) draw: per connector in a session, its last power
    reading (or per-phase currents at the site voltage), however old — they are not in the site file, so
    there is no maximum to fall back to, and the last value is the best guess until their session ends."""
    total = 0.0
    for state in live.chargers.values():
        if not state.monitor_only:
            continue
        for connector_id, connector in state.connectors.items():
            if connector_id < 1 or connector.session is None:
                continue
            power = connector.readings.power_kw
            if power is not None:
                total += max(0.0, power.value)
            else:
                currents_a = sum(max(0.0, r.value) for r in connector.readings.phase_current_a.values())
                total += currents_a * live.site.voltage_v / 1000.0
    return total


def base_load_kw(live: LiveState, now: datetime) -> float | None:
    """The non-EV load to plan with, or None to let the optimizer use the site's profile: monitor-only
    chargers draw from the same connection, so their power is added to the highest profile value of the
    next hour (the optimizer takes a measured base load as valid for that long)."""
    monitored = monitored_kw(live)
    if monitored <= 0.0:
        return None
    tz = zoneinfo.ZoneInfo(live.site.timezone)
    hours = {(now + timedelta(hours=h)).astimezone(tz).hour for h in range(math.ceil(FINE_H) + 1)}
    return max(live.site.base_load.at_hour(h) for h in hours) + monitored
