"""How much of a plan's later energy the site can count on: vehicles may still plug in, and others leave together.

A plan that leaves first-step capacity unused and delivers the energy later (at a cheaper hour, or simply later)
bets that the site will still have that room later. Capacity now is certain; capacity later is not while
chargers have free connectors: a vehicle that plugs in there claims part of it, and on a congested day the
deferred energy is then never delivered (docs/benchmarks-robust.md, section 5, "The mechanism"). So the
command layer's spare-capacity fill counts later planned energy as already provided only where the site keeps
room for every free connector at its plug-in power besides it; the rest may be pulled into the first step.

The vehicles already plugged in are the second risk: where many leave at about the same time, a plan that defers
them all to the cheapest last hours bets that every kWh of the capacity before their departure will be usable.
``reserve_shortfall`` says how much first-step power keeps a share of it in reserve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from optimizer.horizon import FloatArray
from optimizer.strategies.base import EPS, Tick


def certain_share(tick: Tick, power_kw: FloatArray) -> FloatArray:
    """Per step, the share of the planned EV load (``power_kw``: sessions × steps) that stays deliverable even if
    every free connector (``Snapshot.plug_in``) draws its plug-in power from then on: 1 where the site's room
    besides the plan covers them all, less where arrivals could take part of the plan's capacity. Step 0 is
    commanded now, so it is always 1."""
    steps = power_kw.shape[1] if power_kw.ndim == 2 else 0
    share = np.ones(steps)
    arrivals_kw = sum(slot.wanted_kw for slot in tick.snapshot.plug_in)
    if steps < 2 or arrivals_kw <= EPS:
        return share
    planned_kw = np.maximum(power_kw, 0.0).sum(axis=0)
    spare_kw = np.maximum(tick.ev_capacity_kw - planned_kw, 0.0)
    claimed_kw = np.maximum(arrivals_kw - spare_kw, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        at_risk = np.where(planned_kw > EPS, np.minimum(claimed_kw / planned_kw, 1.0), 0.0)
    share[1:] = 1.0 - at_risk[1:]
    return share


def certain_power_kw(tick: Tick, power_kw: FloatArray) -> FloatArray:
    """``power_kw`` with each later step scaled to the share the site can count on (``certain_share``). Vehicles
    whose battery temperature is modelled keep their plan: the LP may hold them back to let them cool, and
    pulling their energy forward would undo that."""
    if power_kw.size == 0:
        return power_kw
    scaled = power_kw * certain_share(tick, power_kw).reshape(1, -1)
    thermal = np.array([s.thermal.is_modelled for s in tick.sessions], dtype=np.bool_)
    scaled[thermal] = power_kw[thermal]
    return np.asarray(scaled, dtype=np.float64)


def pull_forward_cap_kw(tick: Tick, power_kw: FloatArray) -> float | None:
    """The most EV power the first step may reach by pulling energy forward: where the objective prices the site's
    peak, no more than the peak the plan already pays for (its highest planned step, or the peak reached so far);
    None where the peak costs nothing."""
    objective = tick.site.control.objective
    if objective.peak + objective.price * tick.site.tariff.demand_charge_per_kw <= 0:
        return None
    fixed_kw = tick.series.base_load_kw + tick.uncontrolled_kw
    planned_kw = np.maximum(power_kw, 0.0).sum(axis=0) + fixed_kw if power_kw.size else fixed_kw
    peak_kw = max(float(np.max(planned_kw, initial=0.0)), tick.snapshot.peak_so_far_kw or 0.0)
    return max(0.0, peak_kw - float(fixed_kw[0]))


# The share of the site's capacity before a departure that a plan may not count on (docs/benchmarks-robust.md,
# section 5, "Crowded departures"): what the vehicles leaving by then still need must fit in the rest. A plan that
# uses every kWh of it bets that every tapering vehicle takes what the model says, to the minute, and a reading a
# fraction of a per cent off then costs a departure.
DEPARTURE_RESERVE_SHARE = 0.1


@dataclass(frozen=True, slots=True)
class ReserveShortfall:
    """First-step power the plan must add so every departure keeps its reserve, and who may be given it."""

    power_kw: float  # grid side; 0 when every departure has its reserve
    leaving: NDArray[np.bool_]  # the sessions that leave by the latest departure short of its reserve


def reserve_shortfall(tick: Tick, limits_kw: FloatArray, energy_h: FloatArray, rate_kw: FloatArray) -> ReserveShortfall:
    """For each departure d within the horizon, the sessions leaving by d must still need, after this step's
    ``limits_kw``, no more than ``1 − DEPARTURE_RESERVE_SHARE`` of the capacity they can use in the later steps
    before they leave: per step, the site's room for EVs or what they can draw together (``rate_kw`` each, at
    most their present acceptance, which only falls as they fill), whichever is less. Need means central need
    plus margin, grid side, but never more than the vehicle could draw by its departure at its rate (a vehicle
    that cannot take its need is short whatever the site does). The largest excess over every d, as first-step
    power, is the shortfall; given to the sessions leaving by the latest short departure, earliest first, it
    clears every departure's (they nest). Circuits are not counted: they only lower the capacity, so the
    shortfall is the least the plan is short. ``energy_h``: hours each session is plugged in per step
    (``base.plugged_hours``)."""
    n, steps = len(tick.sessions), tick.horizon.steps
    none = ReserveShortfall(0.0, np.zeros(n, dtype=np.bool_))
    if n == 0 or steps == 0:
        return none
    departure_h = np.array([s.departure_h for s in tick.sessions], dtype=np.float64)
    order = np.argsort(departure_h, kind="stable")
    need_kwh = np.array([(s.need_kwh + s.margin_kwh) / s.efficiency for s in tick.sessions], dtype=np.float64)
    need_kwh = np.minimum(need_kwh, rate_kw * energy_h.sum(axis=1))
    now_kwh = limits_kw * energy_h[:, 0]
    draw_kwh = np.cumsum(rate_kw[order].reshape(n, 1) * energy_h[order, 1:], axis=0)
    room_kwh = (tick.ev_capacity_kw[1:] * tick.horizon.length_h[1:]).reshape(1, -1)
    later_kwh = np.minimum(draw_kwh, room_kwh).sum(axis=1)
    short_kwh = np.cumsum(need_kwh[order] - now_kwh[order]) - (1.0 - DEPARTURE_RESERVE_SHARE) * later_kwh
    sorted_h = departure_h[order]
    # A group ends where the next session leaves later; a departure beyond the horizon has no capacity to judge.
    judged = np.append(sorted_h[1:] > sorted_h[:-1] + EPS, True) & (sorted_h <= tick.horizon.end_h + EPS)
    short = judged & (short_kwh > EPS)
    if not short.any():
        return none
    latest_h = float(sorted_h[np.flatnonzero(short)[-1]])
    power_kw = float(short_kwh[short].max()) / float(tick.horizon.length_h[0])
    return ReserveShortfall(power_kw, departure_h <= latest_h + EPS)
