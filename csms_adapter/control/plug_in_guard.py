"""What a vehicle plugging in before the next tick may draw, put into the snapshot so the plan leaves room for it.

Between ticks a charger's free connector runs on its fail-safe TxDefaultProfile, capped by the charger's station
max. For a charger that takes live station-max profiles, the plan hands out a plug-in allowance from capacity no
session was planned (``PlugInSlot`` → ``Plan.plug_in``), and dispatch makes that allowance part of the cap. For
any other connected charger the draw is reserved outright as uncontrolled load, as is any cap a charger may
still hold that the plan does not know: a live station max not confirmed lowered, or one a disconnected charger
holds until it lapses (it is budgeted at its fail-safe share otherwise).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from csms_adapter.control.dispatch import Dispatcher
from csms_adapter.control.failsafe import profile_unit
from csms_adapter.control.live_state import LiveState
from csms_adapter.protocol.link import Capabilities
from optimizer.domain import Charger, PlugInSlot, RateUnit, Snapshot, UncontrolledLoad

RESERVE_REASON = "free connector: a vehicle plugging in draws its default profile before the next tick"


def worst_phases(charger: Charger, dispatcher: Dispatcher) -> int:
    """The fewest phases a plug-in's power may land on: a per-phase current limit spreads it over the charger's
    phases, a W limit on an AC charger may all go to a 1-phase vehicle."""
    if charger.dc:
        return 3
    unit = profile_unit(charger, dispatcher.capabilities.get(charger.id, Capabilities()))
    return charger.phases if unit is RateUnit.AMPS else 1


def with_plug_in_budget(snapshot: Snapshot, live: LiveState, dispatcher: Dispatcher, now: datetime) -> Snapshot:
    site = live.site
    slots: list[PlugInSlot] = []
    reserves: list[UncontrolledLoad] = []
    for charger in site.chargers:
        state = live.chargers.get(charger.id)
        if state is None or state.monitor_only:
            continue
        phases = worst_phases(charger, dispatcher)
        if not state.connected or not state.set_up:
            held_kw = dispatcher.live_station_kw(charger.id, now)
            share_kw = live.fallback_kw(charger.id)
            if held_kw is not None and held_kw > share_kw:
                reserves.append(UncontrolledLoad(charger.id, 0, held_kw - share_kw, phases,
                                                 "disconnected: its live station max holds until it lapses"))
            continue
        free = [c for c in range(1, charger.connectors + 1)
                if (conn := state.connectors.get(c)) is None or conn.session is None]
        if not free:
            continue
        per_connector_kw = (dispatcher.default_kw.get(charger.id, charger.max_power_kw_for(charger.phases))
                            if state.failsafe_accepted else charger.max_power_kw_for(charger.phases))
        wanted_kw = len(free) * per_connector_kw
        if dispatcher.station_controlled(charger.id) and dispatcher.station_confirmed(charger.id):
            slots.append(PlugInSlot(charger.id, wanted_kw, phases))
        else:
            reserve_kw = min(wanted_kw, dispatcher.cap_in_force_kw(charger.id, now))
            if reserve_kw > 0:
                reserves.append(UncontrolledLoad(charger.id, free[0], reserve_kw, phases, RESERVE_REASON))
    if not slots and not reserves:
        return snapshot
    return dataclasses.replace(snapshot, plug_in=tuple(slots), uncontrolled=snapshot.uncontrolled + tuple(reserves))
