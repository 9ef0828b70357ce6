"""Resolve each plugged-in session into the numbers a strategy needs.

Values come, in falling order of trust, from the snapshot (ISO 15118 needs, measured SoC, vehicle data),
the fleet roster (vehicle found by id or id tag) and the site's fleet defaults. The result is one
``ResolvedSession`` per session, with every field known.

A need is a range, not a number (docs/benchmarks-robust.md): ``need_kwh`` is the central value,
``need_kwh + extra_kwh`` the upper end (what the vehicle may still take given how its SoC is known), and
``margin_kwh`` (≤ ``extra_kwh``) the part of that range every strategy plans while capacity allows and gives up
first when it does not. A SoC read to a whole percent can be half a percent low; planned exactly, the
vehicle stops a fraction of a kWh short of its target.
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

# When nothing at all is known of a vehicle's SoC it is planned as arrived at the site's
# fleet.defaults.arrival_soc (VehicleProfile.arrival_soc, default 0.2: fairly empty).
# The quantum of a reported SoC when the snapshot does not say: ISO 15118 and the OCPP SoC measurand report
# whole percent.
DEFAULT_SOC_RESOLUTION = 0.01
# The central need of a SoC fitted to several readings (optimizer.soc_fusion) reaches this many of its standard
# deviations above the fitted value.
FUSED_CENTRAL_SIGMAS = 1.5
# How fast a reading's error grows with its age (it is advanced by the meter and an estimated capacity).
SOC_DRIFT_PER_H = 0.02
# Planned above the central need of a vehicle with no SoC at all, at the margin's lower weight; the rest of
# its range (down to empty) only gets capacity nobody else was planned.
ESTIMATED_MARGIN_SOC = 0.05
# A vehicle drawing at least this much is not full, whatever its SoC says.
DRAWING_KW = 0.5
# ... so when believed done its central need is what it would draw in this time (the next tick sees whether it
# still draws). Only then: raising the need of every drawing vehicle made the LP plan energy nobody would take.
DRAWING_FLOOR_H = 1.0 / 12.0
# A vehicle past its departure still charges; plan it as due at the end of the next few minutes.
OVERSTAY_GRACE_H = 0.25


@dataclass(frozen=True, slots=True)
class NeedUncertainty:
    """How well a session's need is known."""

    source: ValueSource  # of the SoC (ESTIMATED when there is no reading at all)
    estimated: bool  # no SoC reading: the need comes from the assumed arrival SoC and the meter
    resolution: float  # quantum of the SoC reading (fraction)
    age_s: float  # age of the SoC reading
    drawing: bool  # the vehicle draws now: it is not full, whatever its SoC says
    fitted: bool = False  # the SoC was fitted to several readings: the central need already covers its noise


@dataclass(frozen=True, slots=True)
class NeedRange:
    need_kwh: float
    extra_kwh: float
    margin_kwh: float


def need_range(central_kwh: float, upper_kwh: float, margin_kwh: float, power_kw: float | None,
               room_kwh: float) -> NeedRange:
    """Central need, upper end and margin, with the rule for a vehicle believed done that still draws: it is not
    full, whatever its SoC says, so its central need is what it would draw in ``DRAWING_FLOOR_H`` (within
    ``room_kwh``, what fits in its battery): it is never planned at zero."""
    central = max(0.0, central_kwh)
    upper = max(central, upper_kwh)
    if central <= 0 and power_kw is not None and math.isfinite(power_kw) and power_kw >= DRAWING_KW:
        central = min(max(room_kwh, 0.0), power_kw * DRAWING_FLOOR_H)
        upper = max(upper, central)
    extra = upper - central
    return NeedRange(central, extra, min(max(margin_kwh, 0.0), extra))


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
    extra_kwh: float = 0.0  # upper end of the need minus the central need (how the SoC is known allows this much more)
    arrival_h: float = 0.0  # hours from the snapshot until the vehicle arrives (> 0 only for offline planning)
    margin_kwh: float = 0.0  # part of extra_kwh planned while capacity allows, given up first when it does not
    uncertainty: NeedUncertainty | None = None  # how the need was found (None: known exactly)
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

    resolution = _finite(session.soc_resolution, "soc_resolution", session, 0.0, 0.2)
    resolution = DEFAULT_SOC_RESOLUTION if resolution is None else resolution
    age_s = _finite(session.soc_age_s, "soc_age_s", session, 0.0, 1e7) or 0.0
    power_kw = _finite(session.power_kw, "power_kw", session, -1e4, 1e4)
    soc_error = _finite(session.soc_error, "soc_error", session, 0.0, 0.2)
    # A reading is off by up to its quantum, plus what its age adds; the vehicle's BMS stops it when it is really
    # full, so planning the upper end costs nothing but capacity another vehicle might have used. A fitted SoC keeps
    # that margin, at the margin's lower weight (lp_sessions.need_read): more energy planned early hedges what the
    # plan cannot know (a battery heating faster than its model); its own noise is in the central need.
    reading_margin_kwh = (resolution + SOC_DRIFT_PER_H * age_s / 3600.0) * battery_kwh
    estimated = soc is None and energy_needed is None
    if energy_needed is not None:
        soc0 = soc if soc is not None else max(0.0, min(1.0, target - energy_needed / battery_kwh))
        soc_source = session.soc_source if soc is not None else ValueSource.ESTIMATED
        # The vehicle's own figure, in Wh: only its age makes it uncertain.
        age_margin_kwh = SOC_DRIFT_PER_H * age_s / 3600.0 * battery_kwh
        room = max(0.0, (1.0 - soc0) * battery_kwh)
        needs = need_range(energy_needed, min(room, energy_needed + age_margin_kwh), age_margin_kwh, power_kw, room)
    elif soc is not None:
        soc0 = soc
        soc_source = session.soc_source
        central = (target - soc) * battery_kwh
        upper = min((1.0 - soc) * battery_kwh, central + reading_margin_kwh)
        if soc_error is not None:
            # A fitted SoC is as likely high as low: planned to it exactly, a vehicle ends short by its error about
            # half the time. Its central need reaches a little above, so a vehicle the plan finishes is done.
            central = min(upper, central + FUSED_CENTRAL_SIGMAS * soc_error * battery_kwh)
        # Believed done by a reading yet drawing: it is within about a reading's error of its target, so its
        # central need is at most half the margin (a whole five minutes of a 50 kW draw took capacity it never used).
        needs = need_range(central, upper, reading_margin_kwh, power_kw,
                           min((1.0 - soc) * battery_kwh, reading_margin_kwh / 2.0))
    else:
        # A roster target below the assumed arrival SoC proves the assumption wrong for this vehicle: assume
        # half its target instead, so it is never planned at zero need on arrival.
        arrival_soc = site.fleet_defaults.arrival_soc
        if target <= arrival_soc:
            arrival_soc = target / 2.0
        delivered_soc = session.energy_delivered_kwh / battery_kwh
        soc0 = min(1.0, arrival_soc + delivered_soc)
        soc_source = ValueSource.ESTIMATED
        # It may have arrived emptier than assumed: the upper end is what it would need had it arrived empty.
        upper = (target - delivered_soc) * battery_kwh
        needs = need_range((target - soc0) * battery_kwh, upper, ESTIMATED_MARGIN_SOC * battery_kwh, power_kw,
                           (1.0 - delivered_soc) * battery_kwh)
    need, extra, margin = needs.need_kwh, needs.extra_kwh, needs.margin_kwh
    uncertainty = NeedUncertainty(
        source=soc_source, estimated=estimated, resolution=resolution, age_s=age_s,
        drawing=power_kw is not None and power_kw >= DRAWING_KW, fitted=soc_error is not None and soc is not None,
    )

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
        margin_kwh=margin,
        uncertainty=uncertainty,
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
