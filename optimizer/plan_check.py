"""An independent check of a plan against the site and the snapshot it was made for.

It recomputes everything from the inputs (it trusts nothing the plan says about limits) and is used by
the live tick before dispatch, by the benchmark after every tick, and by the tests.
"""

from __future__ import annotations

import numpy as np

from optimizer.domain import Plan, PlanStatus, PlugInSlot, Site, Snapshot
from optimizer.errors import PlanViolation
from optimizer.external_limits import session_caps_kw
from optimizer.horizon import FloatArray, Horizon, site_series
from optimizer.infrastructure import compile_columns, compile_limits, plug_in_columns, session_columns
from optimizer.needs import ResolvedSession, resolve_sessions
from optimizer.strategies.base import CURRENT_RESOLUTION_A
from optimizer.thermal import trajectory

ABS_TOL = 1e-6
REL_TOL = 1e-6


def _over(value: float, limit: float) -> bool:
    return value > limit + ABS_TOL + REL_TOL * abs(limit)


def check_plan(
    site: Site, snapshot: Snapshot, plan: Plan, *, limits: bool = True, temperature: bool = True
) -> list[str]:
    """Every broken constraint of ``plan``, as 'name: what and by how much'. Empty when feasible.

    ``limits=False`` skips site and circuit limits (for the uncontrolled baseline);
    ``temperature=False`` skips battery ceilings (strategies that do not model temperature)."""
    problems: list[str] = []
    sessions = resolve_sessions(site, snapshot)
    by_key = {(c.charger_id, c.connector_id): c for c in plan.connectors}
    lengths = np.array(plan.schedule_step_s, dtype=np.float64) / 3600.0
    if lengths.size == 0:
        return ["plan: no steps"]
    horizon = Horizon(start=snapshot.time, length_h=lengths, start_h=np.concatenate(([0.0], np.cumsum(lengths)[:-1])))
    series = site_series(site, snapshot, horizon)
    steps = horizon.steps
    power = np.zeros((len(sessions), steps))
    caps = session_caps_kw(snapshot.external_limits, sessions, horizon)
    for i, s in enumerate(sessions):
        label = f"{s.charger.id}/{s.connector_id}"
        c = by_key.get(s.key)
        if c is None:
            problems.append(f"connectors[{label}]: session missing from the plan")
            continue
        if len(c.schedule_kw) != steps:
            problems.append(f"schedule[{label}]: {len(c.schedule_kw)} values for {steps} steps")
            continue
        sched = np.array(c.schedule_kw, dtype=np.float64)
        power[i] = sched
        if (sched < -ABS_TOL).any():
            problems.append(f"schedule[{label}]: negative power")
        if abs(sched[0] - c.limit_kw) > 1e-6:
            problems.append(f"schedule[{label}]: schedule_kw[0] {sched[0]} != limit_kw {c.limit_kw}")
        # The first step may command the minimum to a vehicle that takes less (it draws what it takes).
        first_cap = max(s.max_kw, s.min_kw if s.max_kw > 0 else 0.0)
        if _over(float(sched[0]), first_cap) or _over(float(sched[1:].max(initial=0.0)), s.max_kw):
            problems.append(f"connector_max[{label}]: {sched.max():.3f} kW above {s.max_kw:.3f} kW")
        if c.limit_a is not None and not s.charger.dc:
            if c.limit_a > ABS_TOL and c.limit_a < s.charger.min_current_a - ABS_TOL:
                problems.append(f"min_current[{label}]: {c.limit_a} A is between 0 and {s.charger.min_current_a} A")
            steps_a = c.limit_a / CURRENT_RESOLUTION_A
            if abs(steps_a - round(steps_a)) > 1e-6:
                problems.append(f"current_resolution[{label}]: {c.limit_a} A is not a multiple of 0.1 A")
            if _over(c.limit_a, s.charger.max_current_a):
                problems.append(f"charger_max_current[{label}]: {c.limit_a} A above {s.charger.max_current_a} A")
            if _over(c.limit_kw, s.charger.power_kw_at(c.limit_a, s.phases)):
                problems.append(f"limit_consistency[{label}]: {c.limit_kw} kW above {c.limit_a} A")
        over_cap = np.nonzero(sched > caps[i] + ABS_TOL + REL_TOL * np.minimum(caps[i], 1e9))[0]
        if over_cap.size:
            t = int(over_cap[0])
            problems.append(f"external_limit[{label}]: {sched[t]:.3f} kW at step {t}, limit {caps[i, t]:.3f} kW")
        hours = np.clip(s.departure_h - horizon.start_h, 0.0, horizon.length_h)
        after = hours <= 0
        if (sched[after] > ABS_TOL).any():
            problems.append(f"departure[{label}]: power planned after departure")
        delivered = float((sched * hours).sum()) * s.efficiency
        allowed = s.need_kwh + s.extra_kwh + 1e-3
        if c.limit_kw > 0 and c.limit_kw <= s.min_kw + 2e-3:
            # Commanding the minimum current to a vehicle that takes less is allowed: it draws what it takes.
            allowed += s.min_kw * float(hours[0]) * s.efficiency
        if _over(delivered, allowed):
            problems.append(f"departure_energy[{label}]: {delivered:.3f} kWh planned for a need of {allowed:.3f} kWh")
        th = s.thermal
        if temperature and th.is_modelled and s.temp0_c <= th.max_temp_c:
            temps = trajectory(th, s.temp0_c, sched, horizon.length_h, series.ambient_c, hours / horizon.length_h)
            plugged = hours > 0
            if plugged.any() and _over(float(temps[plugged].max()), th.max_temp_c + 1e-4):
                problems.append(
                    f"battery_temperature[{label}]: {temps[plugged].max():.3f} °C above {th.max_temp_c:.1f} °C"
                )
    ev_room = series.import_limit_kw - series.base_load_kw - sum(u.power_kw for u in snapshot.uncontrolled)
    if limits and sessions:
        total = power.sum(axis=0)
        for t in range(steps):
            if _over(float(total[t]), max(float(ev_room[t]), 0.0)):
                problems.append(
                    f"site_import_limit[step {t}]: EVs {total[t]:.3f} kW, room {max(ev_room[t], 0.0):.3f} kW"
                )
        circuit = compile_limits(site, sessions, snapshot.uncontrolled)
        if circuit.rows:
            load = circuit.coef @ power  # rows × steps
            room = np.maximum(circuit.rhs, 0.0).reshape(-1, 1)
            over = load - room
            for r, t in zip(*np.nonzero(over > ABS_TOL + REL_TOL * np.abs(room)), strict=True):
                problems.append(f"{circuit.names[r]}[step {t}]: {over[r, t]:.4f} over")
    if limits and plan.plug_in:
        problems += _plug_in_problems(site, snapshot, plan, sessions, power[:, 0], float(ev_room[0]))
    if plan.status == PlanStatus.INFEASIBLE_SAFE and not plan.reason:
        problems.append("status: infeasible_safe without a reason")
    return problems


def _plug_in_problems(site: Site, snapshot: Snapshot, plan: Plan, sessions: list[ResolvedSession],
                      first_kw: FloatArray, ev_room_kw: float) -> list[str]:
    """Plug-in allowances are asked for, within what was asked, and fit with the first step's plan in every row
    (a vehicle may plug in anywhere that has an allowance, all at once)."""
    problems = []
    wanted = {slot.charger_id: slot for slot in snapshot.plug_in}
    for a in plan.plug_in:
        slot = wanted.get(a.charger_id)
        if slot is None:
            problems.append(f"plug_in[{a.charger_id}]: an allowance nobody asked for")
        elif _over(a.limit_kw, slot.wanted_kw) or a.limit_kw < 0 or a.phases > slot.phases:
            problems.append(f"plug_in[{a.charger_id}]: {a.limit_kw:.3f} kW on {a.phases} phase(s) for a slot of "
                            f"{slot.wanted_kw:.3f} kW on {slot.phases}")
    allowed = [a for a in plan.plug_in if a.charger_id in wanted]
    allowance_kw = np.array([a.limit_kw for a in allowed], dtype=np.float64)
    total = float(first_kw.sum() + allowance_kw.sum())
    if _over(total, max(ev_room_kw, 0.0)):
        problems.append(f"plug_in[site_import_limit]: EVs and allowances {total:.3f} kW, room {max(ev_room_kw, 0.0):.3f} kW")
    slots = tuple(PlugInSlot(a.charger_id, a.limit_kw, a.phases) for a in allowed)
    circuit = compile_columns(site, session_columns(site, sessions) + plug_in_columns(site, slots), snapshot.uncontrolled)
    if circuit.rows:
        over = circuit.coef @ np.concatenate((first_kw, allowance_kw)) - np.maximum(circuit.rhs, 0.0)
        for r in np.nonzero(over > ABS_TOL + REL_TOL * np.abs(circuit.rhs))[0]:
            problems.append(f"plug_in[{circuit.names[r]}]: {over[r]:.4f} over with every allowance drawn")
    return problems


def assert_plan_feasible(
    site: Site, snapshot: Snapshot, plan: Plan, *, limits: bool = True, temperature: bool = True
) -> None:
    """Raise PlanViolation listing every broken constraint."""
    problems = check_plan(site, snapshot, plan, limits=limits, temperature=temperature)
    if problems:
        raise PlanViolation(problems)
