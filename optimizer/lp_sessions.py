"""The per-session, per-step arrays one plan's LP is built from (sessions × steps): how long each vehicle is
plugged in per step, its power bound, need, margin, efficiency and priority, what it takes in the first step,
and its battery's temperature ceiling. The columns (``lp_columns``), the rows (``lp_rows``), the command layer and
the hindsight bound all read them; ``lp_model.build_lp`` puts them together."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from optimizer.horizon import FloatArray, Horizon, SiteSeries
from optimizer.needs import ResolvedSession
from optimizer.site_model import ThermalModel
from optimizer.thermal import free_trajectory, trajectories

# Plan this far below a battery's ceiling: measured temperatures are noisy and the vehicle's own power
# varies inside a step (the benchmark's bus depot overshot by 0.1-0.3 °C without it).
THERMAL_MARGIN_C = 0.5
INF = math.inf


@dataclass(frozen=True, slots=True)
class SessionArrays:
    """Per-session, per-step data of one plan (sessions × steps)."""

    energy_h: FloatArray  # hours of step t the vehicle is still plugged in (Δ·fraction)
    pmax_kw: FloatArray
    need_kwh: FloatArray
    efficiency: FloatArray
    priority: FloatArray
    temp_ceiling_c: FloatArray  # per session × step: max(θmax, free-cooling trajectory)
    extra_kwh: FloatArray | None = None  # None: zeros
    first_step_max_kw: FloatArray | None = None  # None: pmax_kw[:, 0]
    # Vehicles that take less than their charger's minimum current in step 0 (the tail of a taper): the LP
    # gives them nothing then; they get the minimum only from capacity nobody else was planned
    # (strategies.base.give_minimum_from_spare). None: no such vehicle.
    below_minimum: NDArray[np.bool_] | None = None
    margin_kwh: FloatArray | None = None  # None: zeros
    # Sessions whose margin is the noise of a single SoC reading or of the vehicle's own figure (needs.py): not an
    # assumed need, nor a SoC fitted to many readings (its central need covers the noise). None: all.
    need_read: NDArray[np.bool_] | None = None


def session_arrays(sessions: list[ResolvedSession], horizon: Horizon, series: SiteSeries,
                   caps_kw: FloatArray | None = None) -> SessionArrays:
    """``caps_kw`` (sessions × steps, ``inf`` = none): limits set outside depotctl (``optimizer.external_limits``)."""
    n, steps = len(sessions), horizon.steps
    departure = np.array([s.departure_h for s in sessions], dtype=np.float64).reshape(n, 1)
    arrival = np.array([s.arrival_h for s in sessions], dtype=np.float64).reshape(n, 1)
    start, length = horizon.start_h.reshape(1, steps), horizon.length_h.reshape(1, steps)
    energy_h = np.maximum(np.clip(departure - start, 0.0, length) - np.clip(arrival - start, 0.0, length), 0.0)
    frac = energy_h / length
    pmax = np.array([s.max_kw for s in sessions], dtype=np.float64).reshape(n, 1) * (frac > 0)
    if caps_kw is not None:
        pmax = np.minimum(pmax, caps_kw)
    need = np.array([s.need_kwh for s in sessions], dtype=np.float64)
    extra = np.array([s.extra_kwh for s in sessions], dtype=np.float64)
    # Step 0: what the vehicle will really take (taper, what it still needs). When that is below the
    # charger's minimum current, the charger must be commanded its minimum and the vehicle draws only what
    # it takes: the site would budget the minimum for less. On a congested site that capacity delivers more
    # to any other vehicle (the congested benchmark day lost 32 kWh this way), so such a vehicle is left
    # out of step 0 and offered its minimum only from capacity the plan leaves unused.
    below_minimum = np.zeros(n, dtype=np.bool_)
    first_max = pmax[:, 0].copy()
    for i, s in enumerate(sessions):
        if first_max[i] <= 0:
            continue
        if caps_kw is not None and caps_kw[i, 0] < s.min_kw - 1e-9:
            first_max[i] = 0.0  # an external limit below the minimum current: the charger cannot hold it, it stops
            continue
        accept = first_max[i]
        plugged_h = energy_h[i, 0] * s.efficiency
        if s.knee_soc < 1.0:
            accept = min(accept, taper_bound_kw(s, s.soc0, plugged_h))
        if plugged_h > 0:
            accept = min(accept, (need[i] + extra[i]) / plugged_h)
        charger_max = s.charger.max_power_kw_for(s.phases) if s.max_kw > 0 else 0.0
        if 0.0 < accept < s.min_kw <= charger_max:
            below_minimum[i] = True
            first_max[i] = 0.0
        else:
            first_max[i] = min(first_max[i], max(accept, 0.0))
    ceiling = np.full((n, steps), INF)
    present: list[int] = []  # modelled and plugged in now: their free cooling in one pass
    for i, s in enumerate(sessions):
        th = s.thermal
        if not th.is_modelled:
            continue
        a0 = arrival_step(s, horizon)
        if a0 == 0:
            present.append(i)
            continue
        free = free_trajectory(s.temp0_c, th.cooling_per_h, horizon.length_h[a0:], series.ambient_c[a0:])
        ceiling[i, a0:] = np.maximum(th.max_temp_c - THERMAL_MARGIN_C, free)
    if present:
        models = [ThermalModel(math.inf, 0.0, sessions[i].thermal.cooling_per_h) for i in present]
        free_all = trajectories(models, np.array([sessions[i].temp0_c for i in present], dtype=np.float64),
                                np.zeros((len(present), steps)), horizon.length_h, series.ambient_c,
                                np.ones((len(present), steps)))
        top_c = np.array([sessions[i].thermal.max_temp_c for i in present], dtype=np.float64).reshape(-1, 1)
        ceiling[present] = np.maximum(top_c - THERMAL_MARGIN_C, free_all)
    return SessionArrays(
        energy_h=energy_h,
        pmax_kw=pmax,
        need_kwh=need,
        extra_kwh=extra,
        first_step_max_kw=first_max,
        below_minimum=below_minimum,
        margin_kwh=np.array([s.margin_kwh for s in sessions], dtype=np.float64),
        efficiency=np.array([s.efficiency for s in sessions], dtype=np.float64),
        priority=np.array([s.priority for s in sessions], dtype=np.float64),
        temp_ceiling_c=ceiling,
        need_read=np.array([s.uncertainty is None or not (s.uncertainty.estimated or s.uncertainty.fitted)
                            for s in sessions], dtype=np.bool_),
    )


def taper_bound_kw(s: ResolvedSession, soc_start: float, battery_h: float) -> float:
    """Most power over a step of ``battery_h`` (hours × efficiency) starting at ``soc_start`` with the
    taper judged at the step's *end*: p ≤ pmax(1 − soc_end)/(1 − knee). Judging it at the start would
    let long steps overfill the battery, and make the LP prefer to charge late."""
    if s.knee_soc >= 1.0:
        return s.max_kw
    denom = (1.0 - s.knee_soc) + s.max_kw * battery_h / s.battery_kwh
    return min(s.max_kw, max(0.0, s.max_kw * (1.0 - soc_start) / denom))


def arrival_step(s: ResolvedSession, horizon: Horizon) -> int:
    """The step in which the vehicle arrives (0 when it is plugged in now)."""
    if s.arrival_h <= 0:
        return 0
    index = int(np.searchsorted(horizon.start_h, s.arrival_h, side="right")) - 1
    return min(max(index, 0), horizon.steps - 1)
