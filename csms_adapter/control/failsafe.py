"""Fail-safe profiles (docs/operations.md, "What a charger receives"): what every charger may draw when the controller is gone.

``compute_shares`` is pure: each charger gets a station-wide share such that the shares sum to no more than the
lowest (grid import limit − base load) of the day and every circuit's kW and per-phase current limits hold with
every charger at its share. ``apply_failsafe`` pushes the station-max and a conservative TxDefaultProfile to one
charger and reads them back with GetCompositeSchedule.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from csms_adapter.errors import ChargerError
from csms_adapter.protocol.link import Capabilities, ChargerLink
from optimizer import charger_commands as commands
from optimizer.charger_commands import to_unit
from optimizer.domain import ALL_PHASES, Charger, RateUnit, Site
from optimizer.horizon import import_limit_by_minute

log = logging.getLogger("depotctl.failsafe")

POWER_RESOLUTION_KW = 0.001
CURRENT_RESOLUTION_A = commands.CURRENT_RESOLUTION_A


@dataclass(frozen=True, slots=True)
class FailsafeShare:
    """One charger's fail-safe: ``station_kw`` for the whole charger, ``default_kw`` per connector."""

    charger_id: str
    station_kw: float
    default_kw: float


def _floor(value: float, resolution: float) -> float:
    return commands.floor_to(value, resolution)


def worst_case_ev_budget_kw(site: Site) -> float:
    """The lowest (import limit − base load) over every minute of the day: what EVs may always take."""
    limits = import_limit_by_minute(site)
    return max(0.0, min(float(limits[m]) - site.base_load.at_hour(m // 60) for m in range(1440)))


def _phase_current_a(site: Site, charger: Charger, power_kw: float) -> dict[str, float]:
    phases = charger.phase_rotation if charger.dc else charger.phase_rotation[: charger.phases]
    per_phase = power_kw * 1000.0 / (site.voltage_v * len(phases))
    return {p: per_phase for p in phases}


def _subtree(site: Site, circuit_id: str) -> set[str]:
    found: set[str] = set()
    for circuit in site.circuits:
        if circuit.id == circuit_id or circuit_id in _ancestors(site, circuit.id):
            found |= set(circuit.chargers)
    return found


def _ancestors(site: Site, circuit_id: str) -> list[str]:
    by_id = {c.id: c for c in site.circuits}
    out: list[str] = []
    parent = by_id[circuit_id].parent
    while parent is not None and parent in by_id and parent not in out:
        out.append(parent)
        parent = by_id[parent].parent
    return out


def compute_shares(site: Site) -> dict[str, FailsafeShare]:
    """Station shares proportional to each charger's maximum, scaled down to fit the site and every circuit.

    Scaling only ever lowers shares, so a constraint met stays met: one pass over the circuits, then the site,
    suffices. Shares are rounded down (kW to 1 W) so rounding never breaks a limit.
    """
    max_kw = {c.id: c.max_power_kw_for(c.phases) * c.connectors for c in site.chargers}
    budget = worst_case_ev_budget_kw(site)
    total_max = sum(max_kw.values())
    scale = min(1.0, budget / total_max) if total_max > 0 else 0.0
    share = {cid: kw * scale for cid, kw in max_kw.items()}
    chargers = {c.id: c for c in site.chargers}
    for circuit in site.circuits:
        below = [cid for cid in _subtree(site, circuit.id) if cid in share]
        if circuit.max_kw is not None:
            load = sum(share[cid] for cid in below)
            if load > circuit.max_kw:
                for cid in below:
                    share[cid] *= circuit.max_kw / load
        if circuit.max_current_a is not None:
            for phase in ALL_PHASES:
                load_a = sum(_phase_current_a(site, chargers[cid], share[cid]).get(phase, 0.0) for cid in below)
                if load_a > circuit.max_current_a:
                    factor = circuit.max_current_a / load_a
                    for cid in below:
                        if phase in _phase_current_a(site, chargers[cid], 1.0):
                            share[cid] *= factor
    out: dict[str, FailsafeShare] = {}
    for cid, kw in share.items():
        charger = chargers[cid]
        station_kw = _floor(kw, POWER_RESOLUTION_KW)
        # Conservative default per connector: an equal split of the share, but never below the minimum current an
        # AC vehicle needs to charge at all (the station max still caps the sum), and never above the share.
        split = station_kw / charger.connectors
        floor_kw = charger.min_power_kw_for(charger.phases)
        default_kw = min(station_kw, max(split, floor_kw))
        out[cid] = FailsafeShare(cid, station_kw, _floor(default_kw, POWER_RESOLUTION_KW))
    return out


def profile_unit(charger: Charger, caps: Capabilities) -> RateUnit:
    """The unit a charger gets its profiles in (``optimizer.charger_commands.profile_unit`` on what it said it supports)."""
    return commands.profile_unit(charger, caps.rate_units)


async def apply_failsafe(link: ChargerLink, charger: Charger, share: FailsafeShare, caps: Capabilities, *,
                         verify_s: int = 300) -> bool:
    """Push station max and TxDefaultProfile, then verify the station max with GetCompositeSchedule where the
    charger supports it: the limit left at the end of ``verify_s`` (longer than the live profiles' validity, so
    a live stack-1 station max still in force on a reconnect has lapsed by then) must be within the share. True
    when both profiles were accepted. Raises ChargerError only for transport failures; a refused profile is
    logged and reported as False."""
    unit = profile_unit(charger, caps)
    phases = charger.phases
    station = to_unit(charger, share.station_kw, unit, phases)
    default = to_unit(charger, share.default_kw, unit, phases)
    accepted = True
    for what, setter, limit in (("station max", link.set_station_max, station),
                                ("tx default", link.set_default_profile, default)):
        try:
            await setter(limit, unit, phases)
        except ChargerError as exc:
            accepted = False
            log.warning("charger=%s refused its %s fail-safe profile (%s): it is budgeted at its maximum while "
                        "offline; check its smart-charging settings", charger.id, what, exc.reason)
    if not accepted:
        return False
    try:
        composite = await link.composite_limit(0, verify_s, unit)
    except ChargerError as exc:
        log.info("charger=%s cannot report its composite schedule (%s); fail-safe not verified", charger.id,
                 exc.reason)
        return True
    if composite is not None and composite > station + 0.1:
        log.warning("charger=%s composite limit %.1f %s is above its fail-safe share %.1f %s", charger.id,
                    composite, unit.value, station, unit.value)
        return False
    return True
