"""What a charger is told for a plan, as pure functions shared by the live dispatcher and the simulated depot.

A connector's command is its plan limit in the charger's unit — A per phase on AC (rounded down to 0.1 A, the
OCPP 1.6 ``multipleOf``), W in total otherwise (rounded down to 0.1 W) — never above what the plan allowed. A
raise smaller than the deadband (``ocpp.deadband_a``, judged per phase) is not sent, so the charger keeps the
slightly lower limit it holds; a lower limit is always sent, since the plan's limits fit the site only if no
charger keeps a higher one. A charger's live station maximum is the sum of its connectors' commands plus what is
budgeted beside them (uncontrolled draw, plug-in allowance). See docs/architecture.md, "Dispatch".
"""

from __future__ import annotations

import math
from collections.abc import Collection

from optimizer.domain import Charger, ConnectorPlan, PlugInSlot, RateUnit

CURRENT_RESOLUTION_A = 0.1
POWER_RESOLUTION_W = 0.1
LOWER_TOLERANCE_KW = 1e-6  # float noise, not a lowering

Limit = tuple[float, RateUnit, int]  # (limit, unit, phases) as the charger is told


def floor_to(value: float, resolution: float) -> float:
    """``value`` rounded down to a multiple of ``resolution``, never below 0."""
    return max(0.0, math.floor(value / resolution + 1e-9) * resolution)


def ceil_to(value: float, resolution: float) -> float:
    """``value`` rounded up to a multiple of ``resolution`` (float noise below a millionth of it is not rounded up)."""
    return max(0.0, math.ceil(value / resolution - 1e-6) * resolution)


def current_kw(charger: Charger, current_a: float, phases: int, resolution_kw: float) -> float:
    """What a current limit lets through, in kW rounded UP to ``resolution_kw``: a budget that counts a current at
    its floored kW understates it (15.9 A on three 230 V phases is 10.971 kW, not 10.970), and a thousand such
    connectors add up to a kW over the site limit."""
    return round(ceil_to(charger.power_kw_at(current_a, phases), resolution_kw), 6)


def profile_unit(charger: Charger, supported: Collection[RateUnit] = ()) -> RateUnit:
    """The unit a charger gets its profiles in: W for DC (a per-phase current means nothing there), else the site
    file's choice, else A when supported (or nothing is known), else whatever it supports."""
    if charger.dc:
        return RateUnit.WATTS
    if charger.rate_unit is not None:
        return charger.rate_unit
    if RateUnit.AMPS in supported or not supported:
        return RateUnit.AMPS
    return next(iter(supported))


def to_unit(charger: Charger, power_kw: float, unit: RateUnit, phases: int) -> float:
    """A grid-side power as a profile limit: A per phase (rounded down to 0.1 A) or W total (to 0.1 W)."""
    if unit is RateUnit.AMPS and not charger.dc:
        return floor_to(charger.current_a_at(power_kw, phases), CURRENT_RESOLUTION_A)
    return floor_to(power_kw * 1000.0, POWER_RESOLUTION_W)


def limit_kw_of(charger: Charger, limit: float, unit: RateUnit, phases: int) -> float:
    """The grid-side power (kW) a profile limit lets through."""
    if unit is RateUnit.AMPS and not charger.dc:
        return charger.power_kw_at(limit, phases)
    return limit / 1000.0


def connector_command(charger: Charger, cp: ConnectorPlan, unit: RateUnit) -> Limit:
    """(limit, unit, phases) the charger is told for ``cp``."""
    phases = cp.phases if not charger.dc else charger.phases
    if unit is RateUnit.AMPS and cp.limit_a is not None:
        limit = to_unit(charger, charger.power_kw_at(cp.limit_a, phases), unit, phases)
        limit = min(limit, int(cp.limit_a * 10 + 1e-6) / 10)  # never above what the plan allowed
    else:
        limit = to_unit(charger, cp.limit_kw, unit, phases)
    return limit, unit, phases


def within_deadband_kw(charger: Charger, new_kw: float, old_kw: float, phases: int, deadband_a: float,
                       old_a: float | None = None) -> bool:
    """True when a connector's new limit need not be sent: it is not lower than the one the charger holds, and
    higher by less than ``deadband_a`` per phase (``old_a``: the current it was told, when it was told one).
    A lower limit is always sent: the plan's limits fit the site only if no charger keeps a higher one."""
    if new_kw < old_kw - LOWER_TOLERANCE_KW:
        return False
    if charger.dc:
        return abs(new_kw - old_kw) * 1000.0 / (charger.voltage_v * 3) < deadband_a
    new_a = charger.current_a_at(new_kw, phases)
    held_a = old_a if old_a is not None else charger.current_a_at(old_kw, phases)
    return abs(new_a - held_a) < deadband_a


def station_limits_within_deadband(charger: Charger, new: float, old: float, unit: RateUnit, phases: int,
                                   deadband_a: float) -> bool:
    """The deadband for a live station max given in the charger's unit; a lower one is always sent."""
    if new < old - 1e-9:
        return False
    if unit is RateUnit.AMPS and not charger.dc:
        return abs(new - old) < deadband_a
    per_phase_a = abs(new - old) / (charger.voltage_v * (3 if charger.dc else phases))
    return per_phase_a < deadband_a


def station_limit(charger: Charger, unit: RateUnit, connector_limits: Collection[float], extra_kw: float) -> Limit:
    """(limit, unit, phases) of the live station max: the sum of the connectors' commands in the charger's unit
    (A per phase: an upper bound on any one phase) plus the uncontrolled budget and plug-in allowance."""
    phases = charger.phases
    total = sum(connector_limits)
    if extra_kw > 0:
        total += to_unit(charger, extra_kw, unit, phases)
    return round(total, 1), unit, phases


def worst_phases(charger: Charger, unit: RateUnit) -> int:
    """The fewest phases a plug-in's power may land on: a per-phase current limit spreads it over the charger's
    phases, a W limit on an AC charger may all go to a 1-phase vehicle."""
    if charger.dc:
        return 3
    return charger.phases if unit is RateUnit.AMPS else 1


def plug_in_slot(charger: Charger, free_connectors: int, per_connector_kw: float, unit: RateUnit) -> PlugInSlot:
    """What the plan must leave room for on a charger with ``free_connectors`` empty connectors, each of which a
    vehicle may plug into and draw ``per_connector_kw`` (its default profile) before the next tick."""
    return PlugInSlot(charger.id, free_connectors * per_connector_kw, worst_phases(charger, unit))
