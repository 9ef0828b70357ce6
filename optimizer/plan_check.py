"""An independent check of a plan against the site and the snapshot it was made for.

It recomputes everything from the inputs (it trusts nothing the plan says about limits) and is used by
the live tick before dispatch, by the benchmark after every tick, and by the tests. It depends on the domain, the
session resolution and the circuit topology and phase rule of ``optimizer.circuits`` only, never on the LP's
limit compiler (``optimizer.infrastructure``): a bug there must not hide itself here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimizer.circuits import CircuitModel, PhaseLoad, compile_circuits, phase_load
from optimizer.domain import ALL_PHASES, Plan, PlanStatus, Site, Snapshot
from optimizer.errors import PlanViolation
from optimizer.external_limits import session_caps_kw
from optimizer.horizon import FloatArray, Horizon, site_series
from optimizer.needs import ResolvedSession, resolve_sessions
from optimizer.strategies.base import CURRENT_RESOLUTION_A
from optimizer.thermal import trajectory

ABS_TOL = 1e-6
REL_TOL = 1e-6


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken constraint: its name (e.g. ``circuit_phase_limit[feeder-a,L2]``), where (a connector
    ``charger/connector``, ``step 3``, or ``plug_in``), by how much in ``unit``, and a readable detail."""

    constraint: str
    index: str
    excess: float
    unit: str
    detail: str = ""

    def __str__(self) -> str:
        where = f"[{self.index}]" if self.index else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.constraint}{where}: {self.excess:.4f} {self.unit} over{detail}".rstrip()


def _over(value: float, limit: float) -> bool:
    return value > limit + ABS_TOL + REL_TOL * abs(limit)


def _circuit_violations(model: CircuitModel, loads: list[tuple[str, PhaseLoad, FloatArray]],
                        fixed: list[tuple[str, PhaseLoad, float]], steps: int, index: str) -> list[Violation]:
    """Every circuit row over its limit, from first principles: each load's worst-case current on each phase
    (``optimizer.circuits.phase_load``) summed over the chargers below the circuit."""
    out: list[Violation] = []
    voltage = model.voltage_v
    for circuit in model.circuits:
        below = model.below.get(circuit.id, frozenset())
        mine = [(load, power) for cid, load, power in loads if cid in below]
        held = [(load, kw) for cid, load, kw in fixed if cid in below]
        if circuit.max_current_a is not None:
            for phase in ALL_PHASES:
                amps = np.zeros(steps)
                for load, power in mine:
                    amps = amps + load.current_a(phase, 1.0, voltage) * power
                base = sum(load.current_a(phase, kw, voltage) for load, kw in held)
                room = max(circuit.max_current_a - base, 0.0)
                for t in np.nonzero(amps > room + ABS_TOL + REL_TOL * room)[0]:
                    out.append(Violation(f"circuit_phase_limit[{circuit.id},{phase}]",
                                         index.format(t=int(t)), float(amps[t] - room), "A",
                                         f"{amps[t]:.2f} A with {room:.2f} A of room"))
        if circuit.max_kw is not None:
            total = np.zeros(steps)
            for _, power in mine:
                total = total + power
            room = max(circuit.max_kw - sum(kw for _, kw in held), 0.0)
            for t in np.nonzero(total > room + ABS_TOL + REL_TOL * room)[0]:
                out.append(Violation(f"circuit_kw_limit[{circuit.id}]", index.format(t=int(t)),
                                     float(total[t] - room), "kW", f"{total[t]:.3f} kW with {room:.3f} kW of room"))
    return out


def check_plan(
    site: Site, snapshot: Snapshot, plan: Plan, *, limits: bool = True, temperature: bool = True
) -> list[Violation]:
    """Every broken constraint of ``plan``. Empty when feasible.

    ``limits=False`` skips site and circuit limits (for the uncontrolled baseline);
    ``temperature=False`` skips battery ceilings (strategies that do not model temperature)."""
    problems: list[Violation] = []
    sessions = resolve_sessions(site, snapshot)
    by_key = {(c.charger_id, c.connector_id): c for c in plan.connectors}
    lengths = np.array(plan.schedule_step_s, dtype=np.float64) / 3600.0
    if lengths.size == 0:
        return [Violation("plan", "", 0.0, "", "no steps")]
    horizon = Horizon(start=snapshot.time, length_h=lengths, start_h=np.concatenate(([0.0], np.cumsum(lengths)[:-1])))
    series = site_series(site, snapshot, horizon)
    steps = horizon.steps
    power = np.zeros((len(sessions), steps))
    caps = session_caps_kw(snapshot.external_limits, sessions, horizon)
    for i, s in enumerate(sessions):
        label = f"{s.charger.id}/{s.connector_id}"
        c = by_key.get(s.key)
        if c is None:
            problems.append(Violation("connectors", label, 0.0, "", "session missing from the plan"))
            continue
        if len(c.schedule_kw) != steps:
            problems.append(Violation("schedule", label, 0.0, "", f"{len(c.schedule_kw)} values for {steps} steps"))
            continue
        sched = np.array(c.schedule_kw, dtype=np.float64)
        power[i] = sched
        if (sched < -ABS_TOL).any():
            problems.append(Violation("schedule", label, float(-sched.min()), "kW", "negative power"))
        if abs(sched[0] - c.limit_kw) > 1e-6:
            problems.append(Violation("schedule", label, float(abs(sched[0] - c.limit_kw)), "kW",
                                      f"schedule_kw[0] {sched[0]} != limit_kw {c.limit_kw}"))
        # The first step may command the minimum to a vehicle that takes less (it draws what it takes).
        first_cap = max(s.max_kw, s.min_kw if s.max_kw > 0 else 0.0)
        later = float(sched[1:].max(initial=0.0))
        if _over(float(sched[0]), first_cap) or _over(later, s.max_kw):
            excess = max(float(sched[0]) - first_cap, later - s.max_kw)
            problems.append(Violation("connector_max", label, excess, "kW",
                                      f"{sched.max():.3f} kW above {s.max_kw:.3f} kW"))
        if c.limit_a is not None and not s.charger.dc:
            if c.limit_a > ABS_TOL and c.limit_a < s.charger.min_current_a - ABS_TOL:
                problems.append(Violation("min_current", label, s.charger.min_current_a - c.limit_a, "A",
                                          f"{c.limit_a} A is between 0 and {s.charger.min_current_a} A"))
            steps_a = c.limit_a / CURRENT_RESOLUTION_A
            if abs(steps_a - round(steps_a)) > 1e-6:
                problems.append(Violation("current_resolution", label, 0.0, "A",
                                          f"{c.limit_a} A is not a multiple of 0.1 A"))
            if _over(c.limit_a, s.charger.max_current_a):
                problems.append(Violation("charger_max_current", label, c.limit_a - s.charger.max_current_a, "A",
                                          f"{c.limit_a} A above {s.charger.max_current_a} A"))
            at_a = s.charger.power_kw_at(c.limit_a, s.phases)
            if _over(c.limit_kw, at_a):
                problems.append(Violation("limit_consistency", label, c.limit_kw - at_a, "kW",
                                          f"{c.limit_kw} kW above {c.limit_a} A"))
        over_cap = np.nonzero(sched > caps[i] + ABS_TOL + REL_TOL * np.minimum(caps[i], 1e9))[0]
        if over_cap.size:
            t = int(over_cap[0])
            problems.append(Violation("external_limit", label, float(sched[t] - caps[i, t]), "kW",
                                      f"{sched[t]:.3f} kW at step {t}, limit {caps[i, t]:.3f} kW"))
        hours = np.clip(s.departure_h - horizon.start_h, 0.0, horizon.length_h)
        after = hours <= 0
        if (sched[after] > ABS_TOL).any():
            problems.append(Violation("departure", label, float(sched[after].max()), "kW",
                                      "power planned after departure"))
        delivered = float((sched * hours).sum()) * s.efficiency
        allowed = s.need_kwh + s.extra_kwh + 1e-3
        if c.limit_kw > 0 and c.limit_kw <= s.min_kw + 2e-3:
            # Commanding the minimum current to a vehicle that takes less is allowed: it draws what it takes.
            allowed += s.min_kw * float(hours[0]) * s.efficiency
        if _over(delivered, allowed):
            problems.append(Violation("departure_energy", label, delivered - allowed, "kWh",
                                      f"{delivered:.3f} kWh planned for a need of {allowed:.3f} kWh"))
        th = s.thermal
        if temperature and th.is_modelled and s.temp0_c <= th.max_temp_c:
            temps = trajectory(th, s.temp0_c, sched, horizon.length_h, series.ambient_c, hours / horizon.length_h)
            plugged = hours > 0
            if plugged.any() and _over(float(temps[plugged].max()), th.max_temp_c + 1e-4):
                hottest = float(temps[plugged].max())
                problems.append(Violation("battery_temperature", label, hottest - th.max_temp_c, "°C",
                                          f"{hottest:.3f} °C above {th.max_temp_c:.1f} °C"))
    ev_room = series.import_limit_kw - series.base_load_kw - sum(u.power_kw for u in snapshot.uncontrolled)
    model = compile_circuits(site)
    fixed = [(u.charger_id, phase_load(site.charger(u.charger_id), vehicle_phases=max(1, u.phases)), u.power_kw)
             for u in snapshot.uncontrolled if site.has_charger(u.charger_id)]
    if limits and sessions:
        total = power.sum(axis=0)
        for t in range(steps):
            room = max(float(ev_room[t]), 0.0)
            if _over(float(total[t]), room):
                problems.append(Violation("site_import_limit", f"step {t}", float(total[t]) - room, "kW",
                                          f"EVs {total[t]:.3f} kW, room {room:.3f} kW"))
        loads = [(s.charger.id, s.phase_load, power[i]) for i, s in enumerate(sessions)]
        problems += _circuit_violations(model, loads, fixed, steps, "step {t}")
    if limits and plan.plug_in:
        problems += _plug_in_problems(site, snapshot, plan, sessions, power[:, 0], float(ev_room[0]), model, fixed)
    if plan.status == PlanStatus.INFEASIBLE_SAFE and not plan.reason:
        problems.append(Violation("status", "", 0.0, "", "infeasible_safe without a reason"))
    return problems


def _plug_in_problems(site: Site, snapshot: Snapshot, plan: Plan, sessions: list[ResolvedSession],
                      first_kw: FloatArray, ev_room_kw: float, model: CircuitModel,
                      fixed: list[tuple[str, PhaseLoad, float]]) -> list[Violation]:
    """Plug-in allowances are asked for, within what was asked, and fit with the first step's plan in every row
    (a vehicle may plug in anywhere that has an allowance, all at once)."""
    problems = []
    wanted = {slot.charger_id: slot for slot in snapshot.plug_in}
    for a in plan.plug_in:
        slot = wanted.get(a.charger_id)
        if slot is None:
            problems.append(Violation("plug_in", a.charger_id, a.limit_kw, "kW", "an allowance nobody asked for"))
        elif _over(a.limit_kw, slot.wanted_kw) or a.limit_kw < 0 or a.phases > slot.phases:
            problems.append(Violation("plug_in", a.charger_id, max(a.limit_kw - slot.wanted_kw, 0.0), "kW",
                                      f"{a.limit_kw:.3f} kW on {a.phases} phase(s) for a slot of "
                                      f"{slot.wanted_kw:.3f} kW on {slot.phases}"))
    allowed = [a for a in plan.plug_in if a.charger_id in wanted]
    total = float(first_kw.sum() + sum(a.limit_kw for a in allowed))
    if _over(total, max(ev_room_kw, 0.0)):
        problems.append(Violation("plug_in", "site_import_limit", total - max(ev_room_kw, 0.0), "kW",
                                  f"EVs and allowances {total:.3f} kW, room {max(ev_room_kw, 0.0):.3f} kW"))
    loads = [(s.charger.id, s.phase_load, np.array([first_kw[i]])) for i, s in enumerate(sessions)]
    for a in allowed:
        # The fewest phases the allowance may land on, on any of the charger's phases.
        load = phase_load(site.charger(a.charger_id), vehicle_phases=max(1, a.phases))
        loads.append((a.charger_id, load, np.array([a.limit_kw])))
    for v in _circuit_violations(model, loads, fixed, 1, "plug_in"):
        problems.append(Violation(f"plug_in[{v.constraint}]", "", v.excess, v.unit,
                                  f"{v.detail} with every allowance drawn"))
    return problems


def assert_plan_feasible(
    site: Site, snapshot: Snapshot, plan: Plan, *, limits: bool = True, temperature: bool = True
) -> None:
    """Raise PlanViolation listing every broken constraint."""
    problems = check_plan(site, snapshot, plan, limits=limits, temperature=temperature)
    if problems:
        raise PlanViolation(problems)
