"""An independent check of a plan against the site and the snapshot it was made for.

It recomputes everything from the inputs (it trusts nothing the plan says about limits) and is used by
the live tick before dispatch, by the benchmark after every tick, and by the tests. It depends on the domain, the
session resolution and the circuit topology and phase rule of ``optimizer.circuits`` only, never on the LP's
limit compiler (``optimizer.infrastructure``): a bug there must not hide itself here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from optimizer.circuits import CircuitModel, PhaseLoad, compile_circuits, phase_load
from optimizer.domain import ALL_PHASES, Plan, PlanStatus, Site, Snapshot
from optimizer.errors import PlanViolation
from optimizer.external_limits import session_caps_kw
from optimizer.horizon import FloatArray, Horizon, site_series
from optimizer.needs import ResolvedSession, resolve_sessions
from optimizer.strategies.base import CURRENT_RESOLUTION_A, POWER_RESOLUTION_KW
from optimizer.thermal import trajectories

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
    (``optimizer.circuits.phase_load``) summed over the chargers below the circuit, as array sums over each
    circuit's rows (a Python loop per circuit and load cost 70 ms at 1,000 sessions; a BLAS product was slower
    still on a busy machine)."""
    out: list[Violation] = []
    voltage = model.voltage_v
    power = np.array([p for _, _, p in loads], dtype=np.float64).reshape(len(loads), steps)
    rows_of: dict[str, list[int]] = {}
    for i, (cid, _, _) in enumerate(loads):
        rows_of.setdefault(cid, []).append(i)
    amps_per_kw = {phase: np.array([load.current_a(phase, 1.0, voltage) for _, load, _ in loads],
                                   dtype=np.float64).reshape(len(loads), 1) for phase in ALL_PHASES}
    for circuit in model.circuits:
        below = model.below.get(circuit.id, frozenset())
        held = [(load, kw) for cid, load, kw in fixed if cid in below]
        rows = np.array(sorted(i for cid in below for i in rows_of.get(cid, ())), dtype=np.intp)
        mine = power[rows]
        if circuit.max_current_a is not None:
            for phase in ALL_PHASES:
                amps = (mine * amps_per_kw[phase][rows]).sum(axis=0)
                base = sum(load.current_a(phase, kw, voltage) for load, kw in held)
                room = max(circuit.max_current_a - base, 0.0)
                for t in np.nonzero(amps > room + ABS_TOL + REL_TOL * room)[0]:
                    out.append(Violation(f"circuit_phase_limit[{circuit.id},{phase}]",
                                         index.format(t=int(t)), float(amps[t] - room), "A",
                                         f"{amps[t]:.2f} A with {room:.2f} A of room"))
        if circuit.max_kw is not None:
            total = mine.sum(axis=0)
            room = max(circuit.max_kw - sum(kw for _, kw in held), 0.0)
            for t in np.nonzero(total > room + ABS_TOL + REL_TOL * room)[0]:
                out.append(Violation(f"circuit_kw_limit[{circuit.id}]", index.format(t=int(t)),
                                     float(total[t] - room), "kW", f"{total[t]:.3f} kW with {room:.3f} kW of room"))
    return out


@dataclass(frozen=True, slots=True)
class CheckBasis:
    """What the check takes from the site and the snapshot alone, never from the plan: the sessions resolved
    (``optimizer.needs``) and the circuit topology. The live tick prepares it while the solver works, so that the
    check after the plan only compares; it is the same arithmetic the check would do itself."""

    snapshot: Snapshot
    sessions: tuple[ResolvedSession, ...]
    model: CircuitModel


def prepare_check(site: Site, snapshot: Snapshot) -> CheckBasis:
    """The plan-independent part of ``check_plan`` for ``snapshot``. Raises SnapshotError as the check would."""
    return CheckBasis(snapshot, tuple(resolve_sessions(site, snapshot)), compile_circuits(site))


def _schedules(sessions: Sequence[ResolvedSession], plan: Plan, steps: int
               ) -> tuple[list[Violation | None], FloatArray]:
    """Each session's planned schedule as a row (sessions × steps, zero where it cannot be compared) and, per
    session, why it cannot be (missing from the plan, wrong length) or None."""
    by_key = {(c.charger_id, c.connector_id): c for c in plan.connectors}
    power = np.zeros((len(sessions), steps))
    unusable: list[Violation | None] = []
    for i, s in enumerate(sessions):
        c = by_key.get(s.key)
        label = f"{s.charger.id}/{s.connector_id}"
        if c is None:
            unusable.append(Violation("connectors", label, 0.0, "", "session missing from the plan"))
        elif len(c.schedule_kw) != steps:
            unusable.append(Violation("schedule", label, 0.0, "", f"{len(c.schedule_kw)} values for {steps} steps"))
        else:
            power[i] = c.schedule_kw
            unusable.append(None)
    return unusable, power


def _session_violations(sessions: Sequence[ResolvedSession], plan: Plan, snapshot: Snapshot, horizon: Horizon,
                        ambient_c: FloatArray, temperature: bool) -> tuple[list[Violation], FloatArray]:
    """Every broken per-connector constraint, in session order, and the planned power (sessions × steps). The
    arithmetic runs over all sessions at once; only the verdicts are read one session at a time."""
    steps = horizon.steps
    unusable, power = _schedules(sessions, plan, steps)
    usable = np.array([u is None for u in unusable], dtype=bool)
    caps = session_caps_kw(snapshot.external_limits, sessions, horizon)
    n = len(sessions)
    departure_h = np.array([s.departure_h for s in sessions], dtype=np.float64).reshape(n, 1)
    hours = np.clip(departure_h - horizon.start_h, 0.0, horizon.length_h)
    lowest = power.min(axis=1, initial=0.0)
    later = power[:, 1:].max(axis=1, initial=0.0)
    over_cap = power > caps + ABS_TOL + REL_TOL * np.minimum(caps, 1e9)
    first_over_cap = np.where(over_cap.any(axis=1), over_cap.argmax(axis=1), -1)
    after_departure = np.where(hours <= 0, power, 0.0).max(axis=1, initial=0.0)
    efficiency = np.array([s.efficiency for s in sessions], dtype=np.float64)
    delivered = (power * hours).sum(axis=1) * efficiency
    hottest = np.full(n, -np.inf)
    heated = [i for i, s in enumerate(sessions)
              if temperature and usable[i] and s.thermal.is_modelled and s.temp0_c <= s.thermal.max_temp_c]
    if heated:
        rows = np.array(heated)
        temps = trajectories([sessions[i].thermal for i in heated],
                             np.array([sessions[i].temp0_c for i in heated], dtype=np.float64), power[rows],
                             horizon.length_h, ambient_c, hours[rows] / horizon.length_h)
        hottest[rows] = np.where(hours[rows] > 0, temps, -np.inf).max(axis=1)
    by_key = {(c.charger_id, c.connector_id): c for c in plan.connectors}
    problems: list[Violation] = []
    for i, s in enumerate(sessions):
        reason = unusable[i]
        if reason is not None:
            problems.append(reason)
            continue
        label = f"{s.charger.id}/{s.connector_id}"
        c = by_key[s.key]
        sched = power[i]
        if lowest[i] < -ABS_TOL:
            problems.append(Violation("schedule", label, float(-lowest[i]), "kW", "negative power"))
        if abs(sched[0] - c.limit_kw) > 1e-6:
            problems.append(Violation("schedule", label, float(abs(sched[0] - c.limit_kw)), "kW",
                                      f"schedule_kw[0] {sched[0]} != limit_kw {c.limit_kw}"))
        # The first step may command the minimum to a vehicle that takes less (it draws what it takes).
        first_cap = max(s.max_kw, s.min_kw if s.max_kw > 0 else 0.0)
        if _over(float(sched[0]), first_cap) or _over(float(later[i]), s.max_kw):
            excess = max(float(sched[0]) - first_cap, float(later[i]) - s.max_kw)
            problems.append(Violation("connector_max", label, excess, "kW",
                                      f"{sched.max():.3f} kW above {s.max_kw:.3f} kW"))
        if c.limit_a is not None and not s.charger.dc:
            problems += _current_problems(s, c.limit_a, c.limit_kw, label)
        if first_over_cap[i] >= 0:
            t = int(first_over_cap[i])
            problems.append(Violation("external_limit", label, float(sched[t] - caps[i, t]), "kW",
                                      f"{sched[t]:.3f} kW at step {t}, limit {caps[i, t]:.3f} kW"))
        if after_departure[i] > ABS_TOL:
            problems.append(Violation("departure", label, float(after_departure[i]), "kW",
                                      "power planned after departure"))
        allowed = s.need_kwh + s.extra_kwh + 1e-3
        if c.limit_kw > 0 and c.limit_kw <= s.min_kw + 2e-3:
            # Commanding the minimum current to a vehicle that takes less is allowed: it draws what it takes.
            allowed += s.min_kw * float(hours[i, 0]) * s.efficiency
        if _over(float(delivered[i]), allowed):
            problems.append(Violation("departure_energy", label, float(delivered[i]) - allowed, "kWh",
                                      f"{delivered[i]:.3f} kWh planned for a need of {allowed:.3f} kWh"))
        if _over(float(hottest[i]), s.thermal.max_temp_c + 1e-4):
            problems.append(Violation("battery_temperature", label, float(hottest[i]) - s.thermal.max_temp_c,
                                      "°C", f"{hottest[i]:.3f} °C above {s.thermal.max_temp_c:.1f} °C"))
    return problems, power


def _current_problems(s: ResolvedSession, limit_a: float, limit_kw: float, label: str) -> list[Violation]:
    """A current command the charger cannot hold or that says more than its power."""
    problems = []
    if limit_a > ABS_TOL and limit_a < s.charger.min_current_a - ABS_TOL:
        problems.append(Violation("min_current", label, s.charger.min_current_a - limit_a, "A",
                                  f"{limit_a} A is between 0 and {s.charger.min_current_a} A"))
    steps_a = limit_a / CURRENT_RESOLUTION_A
    if abs(steps_a - round(steps_a)) > 1e-6:
        problems.append(Violation("current_resolution", label, 0.0, "A", f"{limit_a} A is not a multiple of 0.1 A"))
    if _over(limit_a, s.charger.max_current_a):
        problems.append(Violation("charger_max_current", label, limit_a - s.charger.max_current_a, "A",
                                  f"{limit_a} A above {s.charger.max_current_a} A"))
    # The kW of a current command is its power rounded up to the watt (charger_commands.current_kw), so up to a watt
    # above the current's exact power.
    at_a = s.charger.power_kw_at(limit_a, s.phases)
    if _over(limit_kw, at_a + POWER_RESOLUTION_KW):
        problems.append(Violation("limit_consistency", label, limit_kw - at_a, "kW", f"{limit_kw} kW above {limit_a} A"))
    return problems


def check_plan(
    site: Site, snapshot: Snapshot, plan: Plan, *, limits: bool = True, temperature: bool = True,
    basis: CheckBasis | None = None,
) -> list[Violation]:
    """Every broken constraint of ``plan``. Empty when feasible.

    ``limits=False`` skips site and circuit limits (for the uncontrolled baseline);
    ``temperature=False`` skips battery ceilings (strategies that do not model temperature);
    ``basis``: ``prepare_check(site, snapshot)`` done ahead (one made for another snapshot is not used)."""
    if basis is None or basis.snapshot is not snapshot:
        basis = prepare_check(site, snapshot)
    sessions = basis.sessions
    lengths = np.array(plan.schedule_step_s, dtype=np.float64) / 3600.0
    if lengths.size == 0:
        return [Violation("plan", "", 0.0, "", "no steps")]
    horizon = Horizon(start=snapshot.time, length_h=lengths, start_h=np.concatenate(([0.0], np.cumsum(lengths)[:-1])))
    series = site_series(site, snapshot, horizon)
    steps = horizon.steps
    problems, power = _session_violations(sessions, plan, snapshot, horizon, series.ambient_c, temperature)
    ev_room = series.import_limit_kw - series.base_load_kw - sum(u.power_kw for u in snapshot.uncontrolled)
    model = basis.model
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


def _plug_in_problems(site: Site, snapshot: Snapshot, plan: Plan, sessions: Sequence[ResolvedSession],
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
