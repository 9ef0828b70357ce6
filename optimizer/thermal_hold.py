"""The thermal cap on a first-step command that stands longer than the plan's first step. (The cap for a battery
that heats faster than its model says is the same one, applied by ``optimizer.strategies.thermal_first_step``.)

The plan keeps every battery under its ceiling at the end of each step, assuming the first step's command is
replaced after one step. A live controller sends that command as a single limit which stands until the next tick
has solved and dispatched; on a busy host (or when a tick fails) that is longer than one step, and a battery
charging at the plan's first-step power keeps heating. ``Snapshot.command_hold_s`` says how long the command may
stand; each session's first-step power is then capped so that, held that long at the first step's ambient, the
battery stays under the same ceiling the LP uses (``max_temp_c − THERMAL_MARGIN_C``).

At constant power the model's temperature moves monotonically towards its equilibrium, so the end of the hold is
the warmest point of it: one bound per session suffices. With the hold at most one step the cap changes nothing.
"""

from __future__ import annotations

import math

import numpy as np

from optimizer.horizon import FloatArray, Horizon, SiteSeries
from optimizer.lp_sessions import THERMAL_MARGIN_C
from optimizer.needs import ResolvedSession
from optimizer.site_model import ThermalModel


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
