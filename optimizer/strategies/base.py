"""What every strategy shares: the interface, the preparation of one tick, and the assembly of a plan
from a power matrix (sessions × steps) with the dispatch rounding rules of contracts.md."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from optimizer.domain import ConnectorPlan, Plan, PlanStatus, Site, Snapshot
from optimizer.horizon import FloatArray, Horizon, SiteSeries, build_horizon, site_series
from optimizer.infrastructure import CircuitLimits, compile_limits
from optimizer.lp_model import thermal_coefficients
from optimizer.needs import ResolvedSession, resolve_sessions

CURRENT_RESOLUTION_A = 0.1  # OCPP 1.6 limit: multipleOf 0.1
POWER_RESOLUTION_KW = 0.001  # 1 W
EPS = 1e-6


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
    return Tick(site, snapshot, sessions, horizon, series, limits, uncontrolled_kw)


def floor_to(value: float, resolution: float) -> float:
    """Round down to ``resolution``, forgiving float noise just below a grid point."""
    if value <= 0 or not math.isfinite(value):
        return 0.0
    return math.floor(value / resolution + 1e-6) * resolution


def command_limits(session: ResolvedSession, power_kw: float) -> tuple[float, float | None]:
    """(limit_kw, limit_a) for a planned power: rounded down, and 0 or ≥ the minimum current."""
    if power_kw <= EPS or session.max_kw <= 0:
        return 0.0, (None if session.charger.dc else 0.0)
    if session.charger.dc:
        return round(floor_to(power_kw, POWER_RESOLUTION_KW), 3), None
    current = floor_to(session.charger.current_a_at(power_kw, session.phases), CURRENT_RESOLUTION_A)
    if current < session.charger.min_current_a - EPS:
        return 0.0, 0.0
    limit_kw = floor_to(min(power_kw, session.charger.power_kw_at(current, session.phases)), POWER_RESOLUTION_KW)
    return round(limit_kw, 3), round(current, 1)


def temperature_trajectory(
    session: ResolvedSession, schedule_kw: FloatArray, horizon: Horizon, energy_h: FloatArray, ambient_c: FloatArray
) -> FloatArray:
    """Battery temperature at the end of each step under ``schedule_kw`` (same model as the LP)."""
    th = session.thermal
    alpha, gain = thermal_coefficients(th.cooling_per_h, horizon.length_h)
    frac = energy_h / horizon.length_h
    out = np.empty(horizon.steps)
    theta = session.temp0_c
    for t in range(horizon.steps):
        theta = ambient_c[t] + alpha[t] * (theta - ambient_c[t]) + th.heating_c_per_kwh * gain[t] * frac[t] * schedule_kw[t]
        out[t] = theta
    return out


def plugged_hours(tick: Tick) -> FloatArray:
    """Hours of each step each session is still plugged in (sessions × steps)."""
    n, steps = len(tick.sessions), tick.horizon.steps
    departure = np.array([s.departure_h for s in tick.sessions], dtype=np.float64).reshape(n, 1)
    start = tick.horizon.start_h.reshape(1, steps)
    length = tick.horizon.length_h.reshape(1, steps)
    return np.clip(departure - start, 0.0, length) if n else np.zeros((0, steps))


def assemble_plan(
    tick: Tick,
    strategy: str,
    power_kw: FloatArray,
    status: PlanStatus,
    *,
    solve_ms: float = 0.0,
    build_ms: float = 0.0,
    objective: float | None = None,
    binding: tuple[str, ...] = (),
    reason: str | None = None,
    solver: str = "",
    min_current_rounds: int = 0,
) -> Plan:
    energy_h = plugged_hours(tick)
    connectors = []
    for i, s in enumerate(tick.sessions):
        schedule = np.maximum(power_kw[i].astype(np.float64), 0.0) if power_kw.size else np.zeros(tick.horizon.steps)
        limit_kw, limit_a = command_limits(s, float(schedule[0]))
        schedule = np.floor(schedule / POWER_RESOLUTION_KW + 1e-6) * POWER_RESOLUTION_KW
        schedule[0] = limit_kw
        delivered = float((schedule * energy_h[i]).sum()) * s.efficiency
        soc_end = min(1.0, s.soc0 + delivered / s.battery_kwh)
        temps = temperature_trajectory(s, schedule, tick.horizon, energy_h[i], tick.series.ambient_c)
        plugged = energy_h[i] > 0
        max_temp = float(max(s.temp0_c, temps[plugged].max())) if plugged.any() else s.temp0_c
        connectors.append(
            ConnectorPlan(
                charger_id=s.charger.id,
                connector_id=s.connector_id,
                limit_kw=limit_kw,
                limit_a=limit_a,
                phases=s.phases,
                schedule_kw=tuple(round(float(v), 3) for v in schedule),
                energy_needed_kwh=s.need_kwh,
                energy_planned_kwh=delivered,
                expected_soc_at_departure=soc_end,
                expected_max_temp_c=max_temp if s.thermal.is_modelled else None,
                departure=s.departure,
                soc_source=s.soc_source,
                temperature_trajectory_c=tuple(float(v) for v in temps) if s.thermal.is_modelled else (),
            )
        )
    return Plan(
        status=status,
        strategy=strategy,
        time=tick.snapshot.time,
        step_s=float(tick.horizon.length_h[0] * 3600.0),
        schedule_step_s=tick.horizon.step_lengths_s(),
        connectors=tuple(connectors),
        solve_ms=solve_ms,
        build_ms=build_ms,
        objective=objective,
        binding=binding,
        reason=reason,
        solver=solver,
        min_current_rounds=min_current_rounds,
        import_limit_kw=tuple(float(v) for v in tick.series.import_limit_kw),
        base_load_kw=tuple(float(v) for v in tick.series.base_load_kw),
    )


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
