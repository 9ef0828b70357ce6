"""The command layer every strategy shares: from a strategy's power matrix (sessions × steps) to the Plan
that is dispatched, so that a benchmark compares planning alone (docs/benchmarks-robust.md).

In order: first-step powers are rounded down to what a charger can be commanded (0.1 A on AC, 1 W on DC; 0 or
at least the minimum current); what rounding took is given back where every row has room; vehicles that take
less than their charger's minimum current get it from capacity nobody was planned; capacity still free goes to
vehicles below the upper end of their need (needs.py), so no plugged-in vehicle waits at 0 while the site has
room; later energy that vehicles plugging in could claim, or that a crowded departure cannot count on, is
pulled into the first step (deferral.py); what is left is offered to chargers where a vehicle may plug in. The
needs themselves (estimation) come from ``needs.resolve_sessions`` and a vehicle's own limit, inferred from the
meter, from ``optimizer.vehicle_limit``: both reach every strategy through the same ``Tick``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from optimizer.battery_stress import schedules_stress
from optimizer.charger_commands import current_kw, floor_to
from optimizer.domain import BatteryStress, ConnectorPlan, Plan, PlanStatus, PlugInAllowance, PlugInSlot
from optimizer.horizon import FloatArray
from optimizer.infrastructure import compile_columns, plug_in_columns
from optimizer.lp_model import THERMAL_MARGIN_C, session_arrays, taper_bound_kw
from optimizer.needs import ResolvedSession
from optimizer.strategies.base import (
    CURRENT_RESOLUTION_A,
    EPS,
    MIN_PLUG_IN_KW,
    POWER_RESOLUTION_KW,
    Tick,
    plugged_hours,
    temperature_trajectories,
    temperature_trajectory,
)
from optimizer.strategies.deferral import certain_power_kw, pull_forward_cap_kw, reserve_shortfall


def command_limits(session: ResolvedSession, power_kw: float) -> tuple[float, float | None]:
    """(limit_kw, limit_a) for a planned power: rounded down, and 0 or ≥ the minimum current."""
    if power_kw <= EPS or session.max_kw <= 0:
        return 0.0, (None if session.charger.dc else 0.0)
    if session.charger.dc:
        return round(floor_to(power_kw, POWER_RESOLUTION_KW), 3), None
    charger, phases = session.charger, session.phases
    current = floor_to(charger.current_a_at(power_kw, phases), CURRENT_RESOLUTION_A)
    # The command is a current: its kW, rounded up, must fit what was planned (one step down when rounding up
    # took it over).
    if current_kw(charger, current, phases, POWER_RESOLUTION_KW) > power_kw + EPS:
        current = round(current - CURRENT_RESOLUTION_A, 1)
    if current < charger.min_current_a - EPS:
        return 0.0, 0.0
    return current_kw(charger, current, phases, POWER_RESOLUTION_KW), round(current, 1)


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
                new_kw = current_kw(s.charger, new_a, s.phases, POWER_RESOLUTION_KW)
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
                        near_ceiling: list[bool], accept_kw: FloatArray,
                        fits_ceiling: Callable[[int, float], bool] | None = None,
                        site_cap_kw: float | None = None) -> None:
    """Give first-step capacity that no plan wanted to sessions that may take more than they were planned
    (``room_kw`` each: up to the upper end of their need; never above ``accept_kw``, what each can draw now),
    earliest departure first, within every row. Their own BMS stops them when they are full; the next tick
    sees it in the meter. ``site_cap_kw``: the most all first-step commands may add up to (None: the site limit).
    Changes the arrays in place."""
    n = len(tick.sessions)
    left = FirstStepRoom(tick, limits_kw)
    if site_cap_kw is not None:
        left.site_kw = min(left.site_kw, site_cap_kw - float(limits_kw.sum()))
    order = sorted((i for i in range(n) if room_kw[i] > EPS and not near_ceiling[i]),
                   key=lambda i: tick.sessions[i].departure_h)
    for i in order:
        if left.site_kw <= EPS:
            return
        s = tick.sessions[i]
        room = left.for_session(i)
        target_kw = min(accept_kw[i], limits_kw[i] + room_kw[i], limits_kw[i] + room)
        new_kw, new_a = command_limits(s, target_kw)
        if new_kw <= limits_kw[i] + EPS:
            continue
        extra = new_kw - limits_kw[i]
        if extra > room + EPS:
            continue
        if fits_ceiling is not None and not fits_ceiling(i, new_kw):
            continue  # more now, with the later steps as planned, would heat the battery past its ceiling
        limits_kw[i], limits_a[i] = new_kw, new_a
        left.take(i, extra)


@dataclass(frozen=True, slots=True)
class PlanDiagnostics:
    """What a strategy reports about how it planned; copied into the Plan as it is."""

    solve_ms: float = 0.0
    build_ms: float = 0.0
    objective: float | None = None
    binding: tuple[str, ...] = ()
    reason: str | None = None
    solver: str = ""
    min_current_rounds: int = 0


@dataclass(frozen=True, slots=True)
class CommandInput:
    """A strategy's planning, to be turned into commands."""

    tick: Tick
    strategy: str
    power_kw: FloatArray  # sessions × steps, what the strategy planned (grid side)
    status: PlanStatus
    diagnostics: PlanDiagnostics = PlanDiagnostics()
    # False ('uncontrolled'): the first step is only rounded; no pass hands out capacity within the limits.
    respects_limits: bool = True
    # Vehicles that take less than their charger's minimum current now (lp_model.SessionArrays.below_minimum);
    # None: worked out here from the tick.
    below_minimum: NDArray[np.bool_] | None = None


def _fits_ceiling(request: CommandInput, energy_h: FloatArray) -> Callable[[int, float], bool]:
    """Whether session i may be commanded ``first_kw`` in the first step, its later steps as planned, and keep the
    LP's own margin under its temperature ceiling (a pass after the solve must not undo the thermal rows)."""
    tick = request.tick

    def fits(i: int, first_kw: float) -> bool:
        s = tick.sessions[i]
        if not s.thermal.is_modelled:
            return True
        row = np.maximum(request.power_kw[i].astype(np.float64), 0.0)
        row[0] = first_kw
        temps = temperature_trajectory(s, row, tick.horizon, energy_h[i], tick.series.ambient_c)
        return float(temps.max(initial=-math.inf)) <= s.thermal.max_temp_c - THERMAL_MARGIN_C + EPS

    return fits


def _near_ceiling(request: CommandInput, energy_h: FloatArray) -> list[bool]:
    """Batteries whose planned temperature comes within 0.5 °C of their ceiling: no pass adds energy to them."""
    tick = request.tick
    modelled = np.array([s.thermal.is_modelled for s in tick.sessions], dtype=np.bool_)
    if not modelled.any():
        return [False] * len(tick.sessions)
    temps = temperature_trajectories(tick.sessions, request.power_kw, tick.horizon, energy_h, tick.series.ambient_c)
    ceiling_c = np.array([s.thermal.max_temp_c for s in tick.sessions], dtype=np.float64)
    near = modelled & (temps.max(axis=1, initial=-math.inf) > ceiling_c - 0.5)
    return [bool(v) for v in near]


def _first_step_room_kw(tick: Tick, power_kw: FloatArray, energy_h: FloatArray, limits_kw: FloatArray,
                        energy_kwh: FloatArray) -> FloatArray:
    """First-step power each session can still be given before the steps after it (as planned) and the first
    step's limit deliver ``energy_kwh`` (battery side); 0 for a session not plugged in during the first step."""
    n = len(tick.sessions)
    eta = np.array([s.efficiency for s in tick.sessions])
    later_kwh = (np.floor(np.maximum(power_kw[:, 1:], 0.0) / POWER_RESOLUTION_KW + 1e-6) * POWER_RESOLUTION_KW
                 * energy_h[:, 1:]).sum(axis=1).reshape(n)
    first_h = energy_h[:, 0]
    room = np.where(first_h > 0, (energy_kwh / eta - later_kwh - 1e-4) / np.maximum(first_h, 1e-9) - limits_kw, 0.0)
    return np.asarray(np.maximum(room, 0.0), dtype=np.float64)


def _acceptance_kw(tick: Tick, energy_h: FloatArray) -> FloatArray:
    """What each vehicle can draw in the first step (its taper from the lowest SoC it may have)."""
    out = np.empty(len(tick.sessions))
    for i, s in enumerate(tick.sessions):
        low = s.uncertainty is not None and s.uncertainty.estimated
        soc = max(0.0, s.soc0 - s.extra_kwh / s.battery_kwh) if low else s.soc0
        out[i] = taper_bound_kw(s, soc, float(energy_h[i, 0]) * s.efficiency)
    return out


def keep_departure_reserve(request: CommandInput, limits_kw: FloatArray, limits_a: list[float | None],
                           energy_h: FloatArray, upper_kwh: FloatArray, near_ceiling: list[bool], accept_kw: FloatArray,
                           fits_ceiling: Callable[[int, float], bool]) -> None:
    """Where the vehicles leaving by some departure would need more than the share of the capacity before it that a
    plan may count on (``deferral.reserve_shortfall``), give them the difference now from capacity no plan wanted,
    earliest departure first, counting their later planned energy as not yet provided. Vehicles modelled thermally
    take part too (unlike the arrivals' pull-forward): the energy is theirs before they leave either way, and
    ``fits_ceiling`` keeps each under its ceiling. Where the peak is priced, the first step stays under the plan's
    own peak. In place."""
    tick = request.tick
    if float(tick.ev_capacity_kw[0] - limits_kw.sum()) <= EPS:
        return  # the site is full now: nothing to give
    rate_kw = np.minimum(accept_kw, np.array([s.max_kw for s in tick.sessions], dtype=np.float64))
    shortfall = reserve_shortfall(tick, limits_kw, energy_h, rate_kw)
    if shortfall.power_kw <= EPS:
        return
    cap_kw = float(limits_kw.sum()) + shortfall.power_kw
    peak_cap_kw = pull_forward_cap_kw(tick, request.power_kw)
    if peak_cap_kw is not None:
        cap_kw = min(cap_kw, peak_cap_kw)
    unplanned = _first_step_room_kw(tick, np.zeros_like(request.power_kw), energy_h, limits_kw, upper_kwh)
    fill_spare_capacity(tick, limits_kw, limits_a, np.where(shortfall.leaving, unplanned, 0.0), near_ceiling,
                        accept_kw, fits_ceiling, cap_kw)


def clamp_to_caps(tick: Tick, limits_kw: FloatArray, limits_a: list[float | None]) -> None:
    """Lower first-step commands that the passes after the solve raised above an external cap (a rounding unit,
    a minimum current): rounded down again, and 0 when the cap is below the minimum current. In place."""
    if tick.caps_kw is None:
        return
    for i, s in enumerate(tick.sessions):
        cap = float(tick.caps_kw[i, 0])
        if limits_kw[i] > cap + EPS:
            limits_kw[i], limits_a[i] = command_limits(s, cap)


def commands_for(request: CommandInput) -> Plan:
    """The Plan a strategy's power matrix dispatches, with the passes above applied to its first step."""
    tick, power_kw = request.tick, request.power_kw
    energy_h = plugged_hours(tick)
    n = len(tick.sessions)
    wanted = np.maximum(power_kw[:, 0], 0.0) if n else np.zeros(0)
    first = [command_limits(s, float(wanted[i])) for i, s in enumerate(tick.sessions)]
    limits_kw = np.array([f[0] for f in first], dtype=np.float64)
    limits_a: list[float | None] = [f[1] for f in first]
    if request.respects_limits and n:
        near = _near_ceiling(request, energy_h)
        upper_kwh = np.array([s.need_kwh + s.extra_kwh for s in tick.sessions])
        top_up_after_rounding(tick, limits_kw, limits_a, wanted, near,
                              _first_step_room_kw(tick, power_kw, energy_h, limits_kw, upper_kwh))
        below = request.below_minimum
        if below is None:
            below = session_arrays(tick.sessions, tick.horizon, tick.series, tick.caps_kw).below_minimum
        if below is not None:
            give_minimum_from_spare(tick, limits_kw, limits_a, below, near)
        accept_kw, fits = _acceptance_kw(tick, energy_h), _fits_ceiling(request, energy_h)
        fill_spare_capacity(tick, limits_kw, limits_a,
                            _first_step_room_kw(tick, power_kw, energy_h, limits_kw, upper_kwh), near, accept_kw, fits)
        # Then later energy that vehicles plugging in could claim, as not yet provided (deferral.py).
        fill_spare_capacity(tick, limits_kw, limits_a,
                            _first_step_room_kw(tick, certain_power_kw(tick, power_kw), energy_h, limits_kw, upper_kwh),
                            near, accept_kw, fits, pull_forward_cap_kw(tick, power_kw))
        keep_departure_reserve(request, limits_kw, limits_a, energy_h, upper_kwh, near, accept_kw, fits)
    clamp_to_caps(tick, limits_kw, limits_a)  # limits set outside depotctl (a station's external limit) win
    plug_in = FirstStepRoom(tick, limits_kw).allow_plug_ins(tick.snapshot.plug_in)
    connectors = _connector_plans(request, limits_kw, limits_a, energy_h)
    d = request.diagnostics
    return Plan(
        status=request.status,
        strategy=request.strategy,
        time=tick.snapshot.time,
        step_s=float(tick.horizon.length_h[0] * 3600.0),
        schedule_step_s=tick.horizon.step_lengths_s(),
        connectors=connectors,
        solve_ms=d.solve_ms,
        build_ms=d.build_ms,
        objective=d.objective,
        binding=d.binding,
        reason=d.reason,
        solver=d.solver,
        min_current_rounds=d.min_current_rounds,
        import_limit_kw=tuple(float(v) for v in tick.series.import_limit_kw),
        base_load_kw=tuple(float(v) for v in tick.series.base_load_kw),
        plug_in=plug_in,
    )


def trim_later_steps(schedule_kw: FloatArray, energy_h: FloatArray, efficiency: float, upper_kwh: float) -> None:
    """Take what the first step now delivers beyond the plan out of the last planned steps, so the schedule never
    plans more than the upper end of the need (the spare-capacity fill may pull later energy forward). In place."""
    excess_kwh = float((schedule_kw * energy_h).sum()) * efficiency - upper_kwh
    for t in range(schedule_kw.size - 1, 0, -1):
        if excess_kwh <= 1e-6:
            return
        step_kwh = float(schedule_kw[t] * energy_h[t]) * efficiency
        if step_kwh <= 0:
            continue
        keep_kwh = max(0.0, step_kwh - excess_kwh)
        schedule_kw[t] = math.floor(keep_kwh / (energy_h[t] * efficiency) / POWER_RESOLUTION_KW) * POWER_RESOLUTION_KW
        excess_kwh -= step_kwh - float(schedule_kw[t] * energy_h[t]) * efficiency


def _connector_plans(request: CommandInput, limits_kw: FloatArray, limits_a: list[float | None],
                     energy_h: FloatArray) -> tuple[ConnectorPlan, ...]:
    """Each session's plan: its command, its schedule (the LP's, floored to 1 W, capped), and what that schedule
    delivers and does to the battery; computed for all sessions at once."""
    tick, sessions = request.tick, request.tick.sessions
    n = len(sessions)
    if n == 0:
        return ()
    schedule = np.maximum(request.power_kw.astype(np.float64), 0.0)
    if tick.caps_kw is not None:
        schedule = np.minimum(schedule, tick.caps_kw)
    schedule = np.floor(schedule / POWER_RESOLUTION_KW + 1e-6) * POWER_RESOLUTION_KW
    schedule[:, 0] = limits_kw
    efficiency = np.array([s.efficiency for s in sessions], dtype=np.float64)
    upper_kwh = np.array([s.need_kwh + s.extra_kwh for s in sessions], dtype=np.float64)
    for i in range(n):
        trim_later_steps(schedule[i], energy_h[i], float(efficiency[i]), float(upper_kwh[i]))
    # A vehicle commanded its minimum current may draw less: never count more than it can take.
    delivered = np.minimum((schedule * energy_h).sum(axis=1) * efficiency, upper_kwh)
    temp0_c = np.array([s.temp0_c for s in sessions], dtype=np.float64)
    modelled = np.array([s.thermal.is_modelled for s in sessions], dtype=np.bool_)
    temps = temperature_trajectories(sessions, schedule, tick.horizon, energy_h, tick.series.ambient_c)
    plugged = energy_h > 0
    max_temp = np.maximum(temp0_c, np.where(plugged, temps, -math.inf).max(axis=1, initial=-math.inf))
    stress = schedules_stress(schedule, energy_h, np.array([s.soc0 for s in sessions], dtype=np.float64),
                              np.array([s.battery_kwh for s in sessions], dtype=np.float64), efficiency,
                              np.where(modelled.reshape(n, 1), temps, temp0_c.reshape(n, 1)), temp0_c)
    return tuple(_connector_plan(s, float(limits_kw[i]), limits_a[i], schedule[i], float(delivered[i]),
                                 temps[i] if modelled[i] else None, float(max_temp[i]), stress[i])
                 for i, s in enumerate(sessions))


def _connector_plan(s: ResolvedSession, limit_kw: float, limit_a: float | None, schedule: FloatArray,
                    delivered_kwh: float, temps_c: FloatArray | None, max_temp_c: float,
                    stress: BatteryStress) -> ConnectorPlan:
    return ConnectorPlan(
        charger_id=s.charger.id,
        connector_id=s.connector_id,
        limit_kw=limit_kw,
        limit_a=limit_a,
        phases=s.phases,
        schedule_kw=tuple(round(v, 3) for v in schedule.tolist()),
        energy_needed_kwh=s.need_kwh,
        energy_planned_kwh=delivered_kwh,
        expected_soc_at_departure=min(1.0, s.soc0 + delivered_kwh / s.battery_kwh),
        expected_max_temp_c=max_temp_c if temps_c is not None else None,
        departure=s.departure,
        soc_source=s.soc_source,
        temperature_trajectory_c=tuple(temps_c.tolist()) if temps_c is not None else (),
        stress=stress,
    )
