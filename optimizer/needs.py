"""Resolve each plugged-in session into the numbers a strategy needs.

Values come, in falling order of trust, from the snapshot (ISO 15118 needs, measured SoC, vehicle data),
the fleet roster (vehicle found by id or id tag) and the site's fleet defaults. The result is one
``ResolvedSession`` per session, with every field known.
"""

from __future__ import annotations

import math
import zoneinfo
from dataclasses import dataclass
from datetime import datetime, timedelta

from optimizer.circuits import PhaseLoad, phase_load, wired_phases
from optimizer.domain import (
    Charger,
    Phase,
    SessionState,
    Site,
    Snapshot,
    ThermalModel,
    ValueSource,
    VehicleProfile,
)
from optimizer.errors import SnapshotError

# When nothing at all is known of a vehicle's SoC, plan as if it arrived fairly empty.
DEFAULT_ARRIVAL_SOC = 0.2
# A vehicle past its departure still charges; plan it as due at the end of the next few minutes.
OVERSTAY_GRACE_H = 0.25


@dataclass(frozen=True, slots=True)
class ResolvedSession:
    charger: Charger
    connector_id: int
    soc0: float
    soc_source: ValueSource
    battery_kwh: float
    target_soc: float
    need_kwh: float
    departure: datetime
    departure_h: float  # hours from the snapshot time (> 0)
    max_kw: float
    min_kw: float
    phases: int
    site_phases: tuple[Phase, ...]
    knee_soc: float
    thermal: ThermalModel
    temp0_c: float
    priority: float
    efficiency: float
    extra_kwh: float = 0.0  # more the vehicle may take when its SoC is only estimated (weighted lower)
    arrival_h: float = 0.0  # hours from the snapshot until the vehicle arrives (> 0 only for offline planning)
    # Where its current may land, worst case (optimizer.circuits.phase_load); None: as ``site_phases`` spread evenly.
    load: PhaseLoad | None = None

    @property
    def phase_load(self) -> PhaseLoad:
        return self.load if self.load is not None else PhaseLoad(self.site_phases, max(1, len(self.site_phases)))

    @property
    def key(self) -> tuple[str, int]:
        return (self.charger.id, self.connector_id)

    def current_a(self, power_kw: float) -> float | None:
        if self.charger.dc:
            return None
        return self.charger.current_a_at(power_kw, self.phases)


def next_local_time(after: datetime, site_tz: str, hour: int, minute: int) -> datetime:
    tz = zoneinfo.ZoneInfo(site_tz)
    local = after.astimezone(tz)
    candidate = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if candidate <= local:
        candidate = (local + timedelta(days=1)).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return candidate.astimezone(after.tzinfo)


def vehicle_of(site: Site, session: SessionState) -> tuple[VehicleProfile, ValueSource]:
    if session.vehicle_id is not None:
        found = site.vehicle_by_id(session.vehicle_id)
        if found is not None:
            return found, ValueSource.ROSTER
    if session.id_tag is not None:
        found = site.vehicle_for_tag(session.id_tag)
        if found is not None:
            return found, ValueSource.ROSTER
    return site.fleet_defaults, ValueSource.DEFAULT


def _finite(value: float | None, name: str, session: SessionState, low: float, high: float) -> float | None:
    if value is None:
        return None
    if not math.isfinite(value) or value < low or value > high:
        raise SnapshotError(
            "snapshot", f"sessions[{session.charger_id}/{session.connector_id}].{name}",
            f"{value!r} is outside {low:g}..{high:g}",
        )
    return value


def resolve_session(site: Site, snapshot: Snapshot, session: SessionState) -> ResolvedSession:
    """Fill every unknown of ``session``. Raises SnapshotError for an unknown charger/connector."""
    if not site.has_charger(session.charger_id):
        raise SnapshotError("snapshot", f"sessions[{session.charger_id}]", f"charger '{session.charger_id}' is not in the site")
    charger = site.charger(session.charger_id)
    if not 1 <= session.connector_id <= charger.connectors:
        raise SnapshotError(
            "snapshot", f"sessions[{session.charger_id}/{session.connector_id}].connector",
            f"charger '{charger.id}' has connectors 1..{charger.connectors}",
        )
    vehicle, vehicle_source = vehicle_of(site, session)
    now = snapshot.time

    soc = _finite(session.soc, "soc", session, 0.0, 1.0)
    battery_kwh = _finite(session.battery_kwh, "battery_kwh", session, 1e-3, 1e5) or vehicle.battery_kwh
    target_soc = _finite(session.target_soc, "target_soc", session, 0.0, 1.0)
    target = target_soc if target_soc is not None else vehicle.target_soc
    energy_needed = _finite(session.energy_needed_kwh, "energy_needed_kwh", session, 0.0, 1e5)

    if energy_needed is not None:
        need = energy_needed
        soc0 = soc if soc is not None else max(0.0, min(1.0, target - need / battery_kwh))
        soc_source = session.soc_source if soc is not None else ValueSource.ESTIMATED
    elif soc is not None:
        soc0 = soc
        need = max(0.0, (target - soc) * battery_kwh)
        soc_source = session.soc_source
    else:
        soc0 = min(1.0, DEFAULT_ARRIVAL_SOC + session.energy_delivered_kwh / battery_kwh)
        need = max(0.0, (target - soc0) * battery_kwh)
        soc_source = ValueSource.ESTIMATED
    # With no SoC at all the vehicle may have arrived emptier than assumed: offer it, at a lower weight,
    # what it would need had it arrived empty. Its own BMS stops it when it is really full.
    extra = 0.0
    if soc is None and energy_needed is None:
        extra = max(0.0, (target - session.energy_delivered_kwh / battery_kwh) * battery_kwh - need)
        extra = min(extra, max(0.0, (1.0 - soc0) * battery_kwh - need))  # never more than fits

    if session.departure is not None:
        departure = session.departure
    elif vehicle.departure_local is not None:
        departure = next_local_time(now, site.timezone, vehicle.departure_local.hour, vehicle.departure_local.minute)
    else:
        departure = (session.plugged_in_at or now) + timedelta(hours=vehicle.dwell_h)
    departure_h = (departure - now).total_seconds() / 3600.0
    if departure_h <= 0:
        departure_h = OVERSTAY_GRACE_H
        departure = now + timedelta(hours=departure_h)

    load = phase_load(charger, unit=session.rate_unit or charger.rate_unit, vehicle_phases=session.phases,
                      known_phases=session.site_phases)
    known = tuple(p for p in wired_phases(charger) if p in (session.site_phases or ()))
    phases = charger.phases if charger.dc else min(len(known) or session.phases or charger.phases, charger.phases)
    site_phases = load.site_phases
    vehicle_max = _finite(session.max_power_kw, "max_power_kw", session, 0.0, 1e4)
    max_kw = min(charger.max_power_kw_for(phases), vehicle_max if vehicle_max is not None else vehicle.max_power_kw)
    # A vehicle that takes less than the charger's minimum current still charges: the charger is commanded
    # its minimum and the vehicle draws what it takes (the LP budgets the minimum, counts what is drawn).
    min_kw = charger.min_power_kw_for(phases)
    if min_kw > charger.max_power_kw_for(phases) + 1e-9:
        max_kw = 0.0  # the charger itself cannot hold its minimum: misconfigured, never command it
    temp0 = _finite(session.battery_temp_c, "battery_temp_c", session, -60.0, 150.0)
    priority = _finite(session.priority, "priority", session, 1e-6, 1e6)
    knee = _finite(session.knee_soc, "knee_soc", session, 0.0, 1.0)
    del vehicle_source
    return ResolvedSession(
        charger=charger,
        connector_id=session.connector_id,
        soc0=soc0,
        soc_source=soc_source,
        battery_kwh=battery_kwh,
        target_soc=target,
        need_kwh=need,
        extra_kwh=extra,
        departure=departure,
        departure_h=departure_h,
        max_kw=max_kw,
        min_kw=min_kw,
        phases=phases,
        site_phases=tuple(site_phases),
        knee_soc=knee if knee is not None else vehicle.knee_soc,
        thermal=session.thermal if session.thermal is not None else vehicle.thermal,
        temp0_c=temp0 if temp0 is not None else snapshot.ambient_c,
        priority=priority if priority is not None else vehicle.priority,
        efficiency=charger.efficiency,
        load=load,
    )


def resolve_sessions(site: Site, snapshot: Snapshot) -> list[ResolvedSession]:
    seen: set[tuple[str, int]] = set()
    out = []
    for session in snapshot.sessions:
        key = (session.charger_id, session.connector_id)
        if key in seen:
            raise SnapshotError("snapshot", f"sessions[{key[0]}/{key[1]}]", "two sessions on one connector")
        seen.add(key)
        out.append(resolve_session(site, snapshot, session))
    return out
