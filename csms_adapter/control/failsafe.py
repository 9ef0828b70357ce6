"""Fail-safe profiles (docs/operations.md, "What a charger receives"): what every charger may draw when the controller is gone.

``compute_shares`` is pure: each charger gets a station-wide share such that the shares sum to no more than the
lowest (grid import limit − base load) of the day (and any external cap in force) and every circuit's kW and
per-phase current limits hold with every charger at its share, each share counted at the worst it can put on one
phase (docs/safety-phases.md). ``apply_failsafe`` pushes the station-max and a conservative TxDefaultProfile to one
charger and reads them back with GetCompositeSchedule.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from csms_adapter.errors import ChargerError
from csms_adapter.protocol.link import Capabilities, ChargerLink
from optimizer import charger_commands as commands
from optimizer.charger_commands import to_unit
from optimizer.circuits import PhaseLoad, compile_circuits, limit_matrix, phase_load
from optimizer.domain import Charger, RateUnit, Site
from optimizer.horizon import import_limit_by_minute

log = logging.getLogger("depotctl.failsafe")

POWER_RESOLUTION_KW = 0.001
CURRENT_RESOLUTION_A = commands.CURRENT_RESOLUTION_A


@dataclass(frozen=True, slots=True)
class HeldShare:
    """The fail-safe share a charger accepted: ``station_kw`` landing on at least ``spread`` site phases. Kept in
    the store, so that after a restart a charger that has not reconnected is budgeted at what it holds."""

    station_kw: float
    spread: int
    accepted_at: datetime


@dataclass(frozen=True, slots=True)
class FailsafeShare:
    """One charger's fail-safe: ``station_kw`` for the whole charger, ``default_kw`` per connector. ``spread`` is
    the fewest site phases the share was budgeted to land on (1: a W limit a 1-phase vehicle may take on one phase;
    the charger's phase count when the share goes out in A, a current per phase)."""

    charger_id: str
    station_kw: float
    default_kw: float
    spread: int = 1


def _floor(value: float, resolution: float) -> float:
    return commands.floor_to(value, resolution)


def worst_case_ev_budget_kw(site: Site, cap_kw: float | None = None) -> float:
    """The lowest (import limit − base load) over every minute of the day, with an external import cap ``cap_kw``
    (kW, EVs and base load) applied to every minute: what EVs may always take."""
    limits = import_limit_by_minute(site)
    if cap_kw is not None:
        limits = np.minimum(limits, cap_kw)
    return max(0.0, min(float(limits[m]) - site.base_load.at_hour(m // 60) for m in range(1440)))


def share_load(charger: Charger, unit: RateUnit | None) -> PhaseLoad:
    """Where a fail-safe share may land (``optimizer.circuits.phase_load``, nothing known of the vehicles): sent in
    A it is a current per phase; sent in W (or when the unit is not known yet) a 1-phase vehicle may take it all
    on any one phase."""
    return phase_load(charger, unit=unit if unit is RateUnit.AMPS else RateUnit.WATTS)


def compute_shares(site: Site, *, cap_kw: float | None = None,
                   units: Mapping[str, RateUnit] | None = None) -> dict[str, FailsafeShare]:
    """Station shares proportional to each charger's maximum, scaled down so that, with every charger at its share
    at once and each share where it can do the most harm on one phase (``share_load``), the site stays under its
    lowest limit of the day (and ``cap_kw``) and every circuit under its kW and per-phase current limits.

    ``units``: the unit each charger's fail-safe goes out in where known (default: the site file's ``rate_unit``;
    unknown counts as W). Scaling only ever lowers shares, so a row met stays met: one pass over the rows
    suffices. Shares are rounded down (kW to 1 W) so rounding never breaks a limit.
    """
    chargers = {c.id: c for c in site.chargers}
    known = dict(units or {})
    loads = {cid: share_load(c, known.get(cid, c.rate_unit)) for cid, c in chargers.items()}
    ids = list(chargers)
    max_kw = np.array([chargers[cid].max_power_kw_for(chargers[cid].phases) * chargers[cid].connectors
                       for cid in ids], dtype=np.float64)
    budget = worst_case_ev_budget_kw(site, cap_kw)
    total_max = float(max_kw.sum())
    share = max_kw * (min(1.0, budget / total_max) if total_max > 0 else 0.0)
    matrix = limit_matrix(compile_circuits(site), [(cid, loads[cid]) for cid in ids])
    coef = matrix.coef.tocsr()
    for r in range(len(matrix.rows)):
        members = coef.indices[coef.indptr[r]:coef.indptr[r + 1]]
        load = float(coef.data[coef.indptr[r]:coef.indptr[r + 1]] @ share[members])
        if load > matrix.limit[r]:
            share[members] *= matrix.limit[r] / load
    out: dict[str, FailsafeShare] = {}
    for cid, kw in zip(ids, share, strict=True):
        charger = chargers[cid]
        station_kw = _floor(float(kw), POWER_RESOLUTION_KW)
        # Conservative default per connector: an equal split of the share, but never below the minimum current an
        # AC vehicle needs to charge at all (the station max still caps the sum), and never above the share.
        split = station_kw / charger.connectors
        floor_kw = charger.min_power_kw_for(charger.phases)
        default_kw = min(station_kw, max(split, floor_kw))
        out[cid] = FailsafeShare(cid, station_kw, _floor(default_kw, POWER_RESOLUTION_KW), loads[cid].spread)
    return out


def raises_that_fit(site: Site, held: Mapping[str, tuple[float, PhaseLoad]],
                    wanted: Mapping[str, tuple[float, PhaseLoad]], *, cap_kw: float | None = None) -> list[str]:
    """The chargers of ``wanted`` (in its order) that may move from what they ``held`` to their wanted share now:
    each raise is taken only if the site and every circuit row still fit with it, every raise taken before it and
    every other charger as it holds now."""
    ids = [cid for cid in held if site.has_charger(cid)]
    model = compile_circuits(site)
    now = limit_matrix(model, [(cid, held[cid][1]) for cid in ids]).coef.tocsc()
    after = limit_matrix(model, [(cid, wanted[cid][1] if cid in wanted else held[cid][1]) for cid in ids])
    power = np.array([held[cid][0] for cid in ids], dtype=np.float64)
    rows = now @ power
    total = float(power.sum())
    budget = worst_case_ev_budget_kw(site, cap_kw)
    column = {cid: j for j, cid in enumerate(ids)}
    after_csc = after.coef.tocsc()
    taken: list[str] = []
    for cid, (kw, _) in wanted.items():
        j = column.get(cid)
        if j is None:
            continue
        trial = rows - now[:, j].toarray().ravel() * power[j] + after_csc[:, j].toarray().ravel() * kw
        if total - power[j] + kw <= budget + 1e-9 and bool((trial <= after.limit + 1e-9).all()):
            rows, total = trial, total - power[j] + kw
            power[j] = kw
            taken.append(cid)
    return taken


def held_fit(site: Site, held: Mapping[str, tuple[float, PhaseLoad]], *, cap_kw: float | None = None) -> bool:
    """Whether shares as the chargers hold them (kW, and where each may land) fit the site's lowest limit (and
    ``cap_kw``) and every circuit row: the test a raise must pass while other chargers still hold older shares."""
    ids = [cid for cid in held if site.has_charger(cid)]
    power = np.array([held[cid][0] for cid in ids], dtype=np.float64)
    if power.sum() > worst_case_ev_budget_kw(site, cap_kw) + 1e-9:
        return False
    matrix = limit_matrix(compile_circuits(site), [(cid, held[cid][1]) for cid in ids])
    return bool((matrix.coef @ power <= matrix.limit + 1e-9).all())


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
