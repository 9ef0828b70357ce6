"""Thermal caps on the first-step command: for a command that stands longer than the plan's first step, and for a
battery that heats faster than its model says.

The plan keeps every battery under its ceiling at the end of each step, assuming the first step's command is
replaced after one step. A live controller sends that command as a single limit which stands until the next tick
has solved and dispatched; on a busy host (or when a tick fails) that is longer than one step, and a battery
charging at the plan's first-step power keeps heating. ``Snapshot.command_hold_s`` says how long the command may
stand; each session's first-step power is then capped so that, held that long at the first step's ambient, the
battery stays under the same ceiling the LP uses (``max_temp_c − THERMAL_MARGIN_C``).

At constant power the model's temperature moves monotonically towards its equilibrium, so the end of the hold is
the warmest point of it: one bound per session suffices. With the hold at most one step the cap changes nothing.

The cautious first step (``cautious_first_step``, lp only) caps the same command once more, as if the battery
heated ``FIRST_STEP_HEATING_FACTOR`` times as fast as the model in use, against a ceiling only
``FIRST_STEP_MARGIN_C`` under the real one: a bad model or a low reading costs at most the LP's margin, not the
ceiling. It binds only while a battery climbs towards its ceiling from well below it; at the ceiling the power
that holds it there is far under the cap.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import numpy as np

from optimizer.horizon import FloatArray, Horizon, SiteSeries
from optimizer.lp_sessions import THERMAL_MARGIN_C
from optimizer.needs import ResolvedSession
from optimizer.site_model import ThermalModel

if TYPE_CHECKING:
    from optimizer.strategies.base import Tick

# The plan commits to its first step before it can see what that step does to a battery; every later step is
# planned again from what the first one showed. So the first step alone must keep the ceiling if the battery heats
# up to this many times as fast as the model in use says (the model error depotctl absorbs, docs/battery.md) and
# its temperature reads up to FIRST_STEP_MARGIN_C low. The LP's margin alone cannot: near the ceiling one 5-minute
# step of a 150 kW charger is planned to heat a bus 0.75 °C, and twice that breaks through 0.5 °C.
FIRST_STEP_HEATING_FACTOR = 2.0
FIRST_STEP_MARGIN_C = THERMAL_MARGIN_C / 2


def hold_cap_kw(model: ThermalModel, temp_c: float, ambient_c: float, hold_h: float,
                margin_c: float = THERMAL_MARGIN_C) -> float:
    """The highest power that, held for ``hold_h`` hours, keeps the battery at or under ``max_temp_c − margin_c``
    (``inf`` without a thermal model; 0 when even no power leaves it over)."""
    if not model.is_modelled or model.heating_c_per_kwh <= 0 or hold_h <= 0:
        return math.inf
    b = model.cooling_per_h
    alpha = math.exp(-b * hold_h) if b > 0 else 1.0
    gain = (1.0 - alpha) / b if b > 0 else hold_h
    room_c = model.max_temp_c - margin_c - ambient_c - alpha * (temp_c - ambient_c)
    return max(0.0, room_c / (model.heating_c_per_kwh * gain))


def cautious_cap_kw(model: ThermalModel, temp_c: float, ambient_c: float, hold_h: float) -> float:
    """The highest first-step power that keeps the battery at or under ``max_temp_c − FIRST_STEP_MARGIN_C`` for
    ``hold_h`` hours even if it heats ``FIRST_STEP_HEATING_FACTOR`` times and cools 1/that as fast as ``model``
    says (``inf`` without a thermal model)."""
    if not model.is_modelled:
        return math.inf
    pessimistic = dataclasses.replace(model, heating_c_per_kwh=model.heating_c_per_kwh * FIRST_STEP_HEATING_FACTOR,
                                      cooling_per_h=model.cooling_per_h / FIRST_STEP_HEATING_FACTOR)
    return hold_cap_kw(pessimistic, temp_c, ambient_c, hold_h, FIRST_STEP_MARGIN_C)


def cautious_first_step(tick: Tick) -> Tick:
    """``tick`` with each modelled battery's first-step power capped by ``cautious_cap_kw`` over the longer of the
    first step and the command hold. Unchanged when no session has a thermal model."""
    horizon = tick.horizon
    if horizon.steps == 0 or not any(s.thermal.is_modelled for s in tick.sessions):
        return tick
    hold_h = max(float(horizon.length_h[0]), (tick.snapshot.command_hold_s or 0.0) / 3600.0)
    ambient_c = float(tick.series.ambient_c[0])
    caps = np.full((len(tick.sessions), horizon.steps), math.inf)
    for i, s in enumerate(tick.sessions):
        caps[i, 0] = cautious_cap_kw(s.thermal, s.temp0_c, ambient_c, hold_h)
    merged = caps if tick.caps_kw is None else np.minimum(tick.caps_kw, caps)
    return dataclasses.replace(tick, caps_kw=merged)


def hold_caps_kw(sessions: list[ResolvedSession], horizon: Horizon, series: SiteSeries,
                 hold_s: float | None) -> FloatArray | None:
    """Sessions × steps caps (``inf`` = none) on the first step for a command held ``hold_s`` seconds; None when
    the hold is no longer than the first step or no session has a thermal model."""
    if hold_s is None or horizon.steps == 0 or hold_s <= horizon.length_h[0] * 3600.0 + 1e-6:
        return None
    hold_h = hold_s / 3600.0
    caps = np.full((len(sessions), horizon.steps), math.inf)
    any_cap = False
    for i, s in enumerate(sessions):
        cap = hold_cap_kw(s.thermal, s.temp0_c, float(series.ambient_c[0]), hold_h)
        if math.isfinite(cap):
            caps[i, 0] = cap
            any_cap = True
    return caps if any_cap else None
