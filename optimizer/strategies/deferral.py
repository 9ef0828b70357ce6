"""How much of a plan's later energy the site can count on when vehicles may still plug in.

A plan that leaves first-step capacity unused and delivers the energy later (at a cheaper hour, or simply later)
bets that the site will still have that room later. Capacity now is certain; capacity later is not while
chargers have free connectors: a vehicle that plugs in there claims part of it, and on a congested day the
deferred energy is then never delivered (docs/benchmarks-robust.md, section 5, "The mechanism"). So the
command layer's spare-capacity fill counts later planned energy as already provided only where the site keeps
room for every free connector at its plug-in power besides it; the rest may be pulled into the first step.
"""

from __future__ import annotations

import numpy as np

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
    """``power_kw`` with each later step scaled to the share the site can count on (``certain_share``)."""
    if power_kw.size == 0:
        return power_kw
    return np.asarray(power_kw * certain_share(tick, power_kw).reshape(1, -1), dtype=np.float64)
