"""What every strategy shares before it plans: the interface and the preparation of one tick. What it shares
after it has planned (rounding, minimum current, spare capacity, the Plan) is ``strategies.commands``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from optimizer.domain import Plan, Site, Snapshot
from optimizer.external_limits import session_caps_kw
from optimizer.horizon import FloatArray, Horizon, SiteSeries, build_horizon, site_series
from optimizer.infrastructure import CircuitLimits, compile_limits
from optimizer.needs import ResolvedSession, resolve_sessions
from optimizer.thermal import trajectories, trajectory
from optimizer.thermal_hold import hold_caps_kw

CURRENT_RESOLUTION_A = 0.1  # OCPP 1.6 limit: multipleOf 0.1
POWER_RESOLUTION_KW = 0.001  # 1 W
EPS = 1e-6
MIN_PLUG_IN_KW = 1.0  # DC chargers have no minimum current, but a few watts of allowance start no vehicle


class Strategy(Protocol):
    """A charging strategy: a pure function of the site and one snapshot."""

    name: str

    def plan(self, site: Site, snapshot: Snapshot) -> Plan: ...


@dataclass(frozen=True, slots=True)
class Tick:
    """Everything a strategy needs for one snapshot, resolved and on the plan's time grid."""

    site: Site
    snapshot: Snapshot
    sessions: list[ResolvedSession]
    horizon: Horizon
    series: SiteSeries
    limits: CircuitLimits
    uncontrolled_kw: float
    dense_rows: FloatArray | None = None  # circuit rows + site row, dense; set by the rule strategies
    caps_kw: FloatArray | None = None  # sessions × steps: limits set outside depotctl (None: there are none)

    @property
    def ev_capacity_kw(self) -> FloatArray:
        """Site capacity left for the controlled EVs per step (≥ 0)."""
        return np.maximum(self.series.import_limit_kw - self.series.base_load_kw - self.uncontrolled_kw, 0.0)


def prepare_tick(site: Site, snapshot: Snapshot, *, horizon_h: float | None = None, step_min: float | None = None) -> Tick:
    sessions = resolve_sessions(site, snapshot)
    latest = max((s.departure_h for s in sessions), default=0.0)
    control = site.control
    horizon = build_horizon(
        snapshot.time,
        step_min if step_min is not None else control.step_min,
        latest,
        horizon_h if horizon_h is not None else control.horizon_h,
        control.uniform_steps,
    )
    series = site_series(site, snapshot, horizon)
    limits = compile_limits(site, sessions, snapshot.uncontrolled)
    uncontrolled_kw = sum(u.power_kw for u in snapshot.uncontrolled)
    caps = session_caps_kw(snapshot.external_limits, sessions, horizon) if snapshot.external_limits else None
    hold = hold_caps_kw(sessions, horizon, series, snapshot.command_hold_s)
    if hold is not None:
        caps = hold if caps is None else np.minimum(caps, hold)
    return Tick(site, snapshot, sessions, horizon, series, limits, uncontrolled_kw, caps_kw=caps)


def temperature_trajectory(
    session: ResolvedSession, schedule_kw: FloatArray, horizon: Horizon, energy_h: FloatArray, ambient_c: FloatArray
) -> FloatArray:
    """Battery temperature at the end of each step under ``schedule_kw`` (``optimizer.thermal``, as the LP)."""
    return trajectory(session.thermal, session.temp0_c, schedule_kw, horizon.length_h, ambient_c,
                      energy_h / horizon.length_h)


def temperature_trajectories(sessions: list[ResolvedSession], schedule_kw: FloatArray, horizon: Horizon,
                             energy_h: FloatArray, ambient_c: FloatArray) -> FloatArray:
    """``temperature_trajectory`` of every session at once (sessions × steps)."""
    return trajectories([s.thermal for s in sessions], np.array([s.temp0_c for s in sessions], dtype=np.float64),
                        schedule_kw, horizon.length_h, ambient_c, energy_h / horizon.length_h.reshape(1, -1))


def plugged_hours(tick: Tick) -> FloatArray:
    """Hours of each step each session is still plugged in (sessions × steps)."""
    n, steps = len(tick.sessions), tick.horizon.steps
    departure = np.array([s.departure_h for s in tick.sessions], dtype=np.float64).reshape(n, 1)
    start = tick.horizon.start_h.reshape(1, steps)
    length = tick.horizon.length_h.reshape(1, steps)
    return np.clip(departure - start, 0.0, length) if n else np.zeros((0, steps))


def input_infeasibilities(tick: Tick) -> list[str]:
    """Reasons the input cannot be fully honoured at step 0 whatever the strategy does."""
    reasons = []
    ev_room = tick.series.import_limit_kw[0] - tick.series.base_load_kw[0] - tick.uncontrolled_kw
    if ev_room < -EPS:
        reasons.append(f"site_import_limit: base and uncontrolled load exceed the import limit by {-ev_room:.3f} kW")
    for name, rhs in zip(tick.limits.names, tick.limits.rhs, strict=True):
        if rhs < -EPS:
            unit = "kW" if name.startswith("circuit_kw_limit") else "A"
            reasons.append(f"{name}: uncontrolled load exceeds the limit by {-rhs:.3f} {unit}")
    for s in tick.sessions:
        th = s.thermal
        if th.is_modelled and s.temp0_c > th.max_temp_c + EPS:
            reasons.append(
                f"battery_temperature[{s.charger.id}/{s.connector_id}]: {s.temp0_c:.1f} °C is "
                f"{s.temp0_c - th.max_temp_c:.1f} °C above the {th.max_temp_c:.1f} °C ceiling"
            )
    return reasons
