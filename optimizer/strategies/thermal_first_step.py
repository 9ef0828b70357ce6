"""The cautious first step (lp only): a first-step command that keeps the battery ceiling when the model is wrong.

The LP keeps every battery ``THERMAL_MARGIN_C`` under its ceiling with the thermal model in use; the cautious first
step caps the command it sends now once more, as if the battery heated ``FIRST_STEP_HEATING_FACTOR`` times as fast
as that model, against a ceiling only ``FIRST_STEP_MARGIN_C`` under the real one: a bad model or a low reading
costs at most the LP's margin, not the ceiling. It binds only while a battery climbs towards its ceiling from well
below it; at the ceiling the power that holds it there is far under the cap. The cap is the command hold's
(``optimizer.thermal_hold``), over the longer of the first step and that hold.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from optimizer.lp_sessions import THERMAL_MARGIN_C
from optimizer.site_model import ThermalModel
from optimizer.strategies.base import Tick
from optimizer.thermal_hold import hold_cap_kw

# The plan commits to its first step before it can see what that step does to a battery; every later step is
# planned again from what the first one showed. So the first step alone must keep the ceiling if the battery heats
# up to this many times as fast as the model in use says (the model error depotctl absorbs, docs/battery.md) and
# its temperature reads up to FIRST_STEP_MARGIN_C low. The LP's margin alone cannot: near the ceiling one 5-minute
# step of a 150 kW charger is planned to heat a bus 0.75 °C, and twice that breaks through 0.5 °C.
FIRST_STEP_HEATING_FACTOR = 2.0
FIRST_STEP_MARGIN_C = THERMAL_MARGIN_C / 2


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
