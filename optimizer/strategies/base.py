"""What every strategy shares: the interface, the preparation of one tick, and the assembly of a plan
from a power matrix (sessions × steps) with the dispatch rounding rules of contracts.md."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from optimizer.domain import ConnectorPlan, Plan, PlanStatus, PlugInAllowance, PlugInSlot, Site, Snapshot
from optimizer.external_limits import session_caps_kw
from optimizer.horizon import FloatArray, Horizon, SiteSeries, build_horizon, site_series
from optimizer.infrastructure import CircuitLimits, compile_columns, compile_limits, plug_in_columns
from optimizer.lp_model import thermal_coefficients
from optimizer.needs import ResolvedSession, resolve_sessions

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
    return Tick(site, snapshot, sessions, horizon, series, limits, uncontrolled_kw, caps_kw=caps)


def clamp_to_caps(tick: Tick, limits_kw: FloatArray, limits_a: list[float | None]) -> None:
    """Lower first-step commands that the passes after the solve raised above an external cap (a rounding unit,
    a minimum current): rounded down again, and 0 when the cap is below the minimum current. In place."""
    if tick.caps_kw is None:
        return
    for i, s in enumerate(tick.sessions):
        cap = float(tick.caps_kw[i, 0])
        if limits_kw[i] > cap + EPS:
            limits_kw[i], limits_a[i] = command_limits(s, cap)


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


class FirstStepRoom:
    """What is left of the site limit and of every circuit row in the first step, given the limits
    already commanded; shared by the passes that hand out capacity after rounding."""

    def __init__(self, tick: Tick, limits_kw: FloatArray) -> None:
        self._site = tick.site
        self._coef = tick.limits.coef.tocsc()
        self._rows = np.maximum(tick.limits.rhs, 0.0) - (tick.limits.coef @ limits_kw if tick.limits.rows else 0.0)
        self.site_kw = float(tick.ev_capacity_kw[0] - limits_kw.sum())

    @staticmethod
    def _column_of(matrix: sp.csc_matrix, i: int) -> tuple[NDArray[np.int32], FloatArray]:
        start, end = matrix.indptr[i], matrix.indptr[i + 1]
        return matrix.indices[start:end], matrix.data[start:end]

    def _room(self, rows: NDArray[np.int32], coef: FloatArray) -> float:
        positive = coef > 0
        rows_kw = float(np.min(self._rows[rows[positive]] / coef[positive])) if positive.any() else math.inf
        return min(self.site_kw, rows_kw)

    def _take(self, rows: NDArray[np.int32], coef: FloatArray, power_kw: float) -> None:
        self._rows[rows] -= coef * power_kw
        self.site_kw -= power_kw

    def for_session(self, i: int) -> float:
        """The most power session ``i`` can still be given in the first step (kW)."""
        return self._room(*self._column_of(self._coef, i))

    def take(self, i: int, power_kw: float) -> None:
        self._take(*self._column_of(self._coef, i), power_kw)

    def allow_plug_ins(self, slots: tuple[PlugInSlot, ...]) -> tuple[PlugInAllowance, ...]:
        """Hand what is left to the chargers where a vehicle may plug in before the next tick, in slot order, each
        up to what it would draw; an allowance below the charger's minimum current (or 1 kW) would not charge
        anyone, so it is 0. Sessions' limits plus allowances then fit every row: a plug-in can never push the site over."""
        if not slots:
            return ()
        columns = compile_columns(self._site, plug_in_columns(self._site, slots)).coef.tocsc()
        out = []
        for j, slot in enumerate(slots):
            rows, coef = self._column_of(columns, j)
            charger = self._site.charger(slot.charger_id)
            kw = floor_to(min(slot.wanted_kw, self._room(rows, coef)), POWER_RESOLUTION_KW)
            if kw < max(charger.min_power_kw_for(min(slot.phases, charger.phases)), MIN_PLUG_IN_KW) - EPS:
                kw = 0.0
            if kw > 0:
                self._take(rows, coef, kw)
            out.append(PlugInAllowance(slot.charger_id, round(kw, 3), slot.phases))
        return tuple(out)


def top_up_after_rounding(tick: Tick, limits_kw: FloatArray, limits_a: list[float | None],
                          wanted_kw: FloatArray, near_ceiling: list[bool], energy_room_kw: FloatArray) -> None:
    """Give back what rounding down took, where every row still has room: one 0.1 A step per AC
    connector, the rest to DC connectors (1 W resolution). Only for connectors whose unrounded plan
    was higher and whose battery is not at its temperature ceiling. Changes the arrays in place."""
    n = len(tick.sessions)
    if n == 0:
        return
    left = FirstStepRoom(tick, limits_kw)
    lost_kw = float(wanted_kw.sum() - limits_kw.sum())
    order = sorted(range(n), key=lambda i: -(wanted_kw[i] - limits_kw[i]))
    # Pass 1: each connector gets back up to one rounding unit of what it was planned.
    # Pass 2: what is still lost goes to DC connectors (1 W resolution) that are charging anyway.
    for second_pass in (False, True):
        for i in order:
            s = tick.sessions[i]
            if near_ceiling[i] or limits_kw[i] <= 0 or lost_kw <= EPS or energy_room_kw[i] <= EPS:
                continue
            if second_pass and not s.charger.dc:
                continue
            if not second_pass and wanted_kw[i] - limits_kw[i] <= EPS:
                continue
            room = left.for_session(i)
            if s.charger.dc:
                cap = min(s.max_kw - limits_kw[i], energy_room_kw[i])
                cap = min(cap, lost_kw) if second_pass else min(cap, wanted_kw[i] - limits_kw[i])
                extra = floor_to(min(room, cap), POWER_RESOLUTION_KW)
                new_kw, new_a = limits_kw[i] + extra, None
            else:
                current = limits_a[i] or 0.0
                new_a = round(current + CURRENT_RESOLUTION_A, 1)
                if new_a > s.charger.max_current_a + EPS or s.charger.power_kw_at(new_a, s.phases) > s.max_kw + EPS:
                    continue
                new_kw = floor_to(s.charger.power_kw_at(new_a, s.phases), POWER_RESOLUTION_KW)
                extra = new_kw - limits_kw[i]
                if extra > room + EPS or extra > energy_room_kw[i] + EPS:
                    continue
            if extra <= EPS:
                continue
            limits_kw[i] = round(new_kw, 3)
            limits_a[i] = new_a
            energy_room_kw[i] -= extra
            lost_kw -= extra
            left.take(i, extra)


def give_minimum_from_spare(tick: Tick, limits_kw: FloatArray, limits_a: list[float | None],
                            below_minimum: NDArray[np.bool_], near_ceiling: list[bool]) -> None:
    """Command their minimum to vehicles that take less than it (``lp_model.SessionArrays.below_minimum``)
    where first-step capacity nobody was planned covers it in every row: highest priority, then earliest
    departure, first. Changes the arrays in place."""
    left = FirstStepRoom(tick, limits_kw)
    order = sorted((int(i) for i in np.flatnonzero(below_minimum) if limits_kw[i] <= EPS and not near_ceiling[i]),
                   key=lambda i: (-tick.sessions[i].priority, tick.sessions[i].departure_h))
    for i in order:
        s = tick.sessions[i]
        new_kw, new_a = command_limits(s, s.min_kw + EPS)
        if new_kw <= EPS or new_kw > left.for_session(i) + EPS:
            continue
        limits_kw[i], limits_a[i] = new_kw, new_a
        left.take(i, new_kw)


def fill_spare_capacity(tick: Tick, limits_kw: FloatArray, limits_a: list[float | None], room_kw: FloatArray,
                        near_ceiling: list[bool]) -> None:
    """Give first-step capacity that no plan wanted to sessions whose SoC is only estimated and that may
    take more than estimated (``room_kw`` each), earliest departure first, within every row. Their own
    BMS stops them when they are full; the next tick sees it in the meter. Changes the arrays in place."""
    n = len(tick.sessions)
    left = FirstStepRoom(tick, limits_kw)
    order = sorted((i for i in range(n) if room_kw[i] > EPS and not near_ceiling[i]),
                   key=lambda i: tick.sessions[i].departure_h)
    for i in order:
        if left.site_kw <= EPS:
            return
        s = tick.sessions[i]
        room = left.for_session(i)
        target_kw = min(s.max_kw, limits_kw[i] + room_kw[i], limits_kw[i] + room)
        new_kw, new_a = command_limits(s, target_kw)
        if new_kw <= limits_kw[i] + EPS:
            continue
        extra = new_kw - limits_kw[i]
        if extra > room + EPS:
            continue
        limits_kw[i], limits_a[i] = new_kw, new_a
        left.take(i, extra)


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
    top_up: bool = True,
    fill_spare: bool = False,
    below_minimum: NDArray[np.bool_] | None = None,
) -> Plan:
    energy_h = plugged_hours(tick)
    n = len(tick.sessions)
    wanted = np.array([max(float(power_kw[i, 0]), 0.0) for i in range(n)]) if n else np.zeros(0)
    first = [command_limits(s, float(wanted[i])) for i, s in enumerate(tick.sessions)]
    limits_kw = np.array([f[0] for f in first], dtype=np.float64)
    limits_a: list[float | None] = [f[1] for f in first]
    if top_up and n:
        # A unit's worth of energy in the first step must not push a battery over its ceiling.
        near = []
        for i, s in enumerate(tick.sessions):
            temps = temperature_trajectory(s, power_kw[i], tick.horizon, energy_h[i], tick.series.ambient_c)
            near.append(s.thermal.is_modelled and float(temps.max(initial=-math.inf)) > s.thermal.max_temp_c - 0.5)
        later_kwh = np.array([
            float((np.floor(np.maximum(power_kw[i, 1:], 0.0) / POWER_RESOLUTION_KW + 1e-6) * POWER_RESOLUTION_KW
                   * energy_h[i, 1:]).sum()) for i in range(n)])
        need_grid_kwh = np.array([(s.need_kwh + s.extra_kwh) / s.efficiency for s in tick.sessions])
        first_h = energy_h[:, 0]
        energy_room = np.where(first_h > 0, (need_grid_kwh - later_kwh - 1e-4) / np.maximum(first_h, 1e-9) - limits_kw, 0.0)
        top_up_after_rounding(tick, limits_kw, limits_a, wanted, near, np.maximum(energy_room, 0.0))
        if below_minimum is not None:
            give_minimum_from_spare(tick, limits_kw, limits_a, below_minimum, near)
        if fill_spare:
            known_room = np.where(first_h > 0, (np.array([s.need_kwh / s.efficiency for s in tick.sessions]) - later_kwh)
                                  / np.maximum(first_h, 1e-9) - limits_kw, 0.0)
            spare = np.array([
                (s.extra_kwh / s.efficiency) / max(float(first_h[i]), 1e-9) + max(float(known_room[i]), 0.0)
                if s.extra_kwh > 0 and first_h[i] > 0 else 0.0
                for i, s in enumerate(tick.sessions)])
            fill_spare_capacity(tick, limits_kw, limits_a, spare, near)
    clamp_to_caps(tick, limits_kw, limits_a)
    plug_in = FirstStepRoom(tick, limits_kw).allow_plug_ins(tick.snapshot.plug_in)
    connectors = []
    for i, s in enumerate(tick.sessions):
        schedule = np.maximum(power_kw[i].astype(np.float64), 0.0) if power_kw.size else np.zeros(tick.horizon.steps)
        limit_kw, limit_a = float(limits_kw[i]), limits_a[i]
        if tick.caps_kw is not None:
            schedule = np.minimum(schedule, tick.caps_kw[i])
        schedule = np.floor(schedule / POWER_RESOLUTION_KW + 1e-6) * POWER_RESOLUTION_KW
        schedule[0] = limit_kw
        # A vehicle commanded its minimum current may draw less: never count more than it can take.
        delivered = min(float((schedule * energy_h[i]).sum()) * s.efficiency, s.need_kwh + s.extra_kwh)
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
        plug_in=plug_in,
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
