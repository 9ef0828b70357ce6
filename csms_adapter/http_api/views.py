"""Read models of the HTTP API, built from the controller's live state and its last tick. Pure functions of
(controller, now): no I/O, no side effects on the live state, cheap enough to run every second."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from csms_adapter.control.connector_state import ConnectorView
from csms_adapter.control.control_loop import TickResult
from csms_adapter.control.controller import Controller
from csms_adapter.control.dispatch import Outcome
from csms_adapter.control.operator_inputs import GridCap
from csms_adapter.http_api import schemas as s
from optimizer.circuits import compile_circuits, wired_phases
from optimizer.domain import ALL_PHASES, ConnectorPlan, Plan, SessionState, Site, VehicleProfile
from optimizer.horizon import base_load_kw_at, import_limit_kw_at
from optimizer.needs import vehicle_of

# A plan that reaches its target within half a percent of SoC (or 50 Wh of energy) makes it: the LP's own
# rounding is no reason to paint a vehicle red.
MAKES_IT_SOC = 0.005
MAKES_IT_KWH = 0.05




def _finite(value: float | None, digits: int = 3) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


def grid_cap_out(cap: GridCap | None) -> s.GridCapOut | None:
    if cap is None:
        return None
    return s.GridCapOut(limit_kw=cap.limit_kw, set_at=cap.set_at, until=cap.until, reason=cap.reason)


def tick_out(tick: TickResult) -> s.TickOut:
    plan, report = tick.plan, tick.report
    records = report.records if report is not None else ()
    return s.TickOut(
        time=tick.time,
        status=str(plan.status) if plan is not None else "error",
        strategy=plan.strategy if plan is not None else None,
        solver=plan.solver if plan is not None else None,
        solve_ms=round(plan.solve_ms, 2) if plan is not None else None,
        build_ms=round(plan.build_ms, 2) if plan is not None else None,
        tick_ms=round(tick.tick_ms, 2),
        objective=_finite(plan.objective, 6) if plan is not None else None,
        binding=list(plan.binding) if plan is not None else [],
        reason=plan.reason if plan is not None else None,
        error=tick.error,
        sessions=len(tick.snapshot.sessions),
        uncontrolled=len(tick.snapshot.uncontrolled),
        profiles_sent=sum(1 for r in records if r.outcome is Outcome.ACCEPTED),
        profiles_failed=sum(1 for r in records if r.outcome in (Outcome.REJECTED, Outcome.TIMEOUT, Outcome.ERROR)),
    )


def status(controller: Controller, now: datetime, writes_enabled: bool) -> s.StatusOut:
    site, live = controller.site, controller.live
    ev_kw = live.site_power_kw(now)
    base_kw = base_load_kw_at(site, now)
    limit_kw = import_limit_kw_at(site, now)
    cap_kw = live.inputs.grid_cap_kw(now)
    tick = controller.last_tick
    return s.StatusOut(
        site=site.name,
        timezone=site.timezone,
        time=now,
        site_power_kw=round(ev_kw + base_kw, 3),
        ev_power_kw=round(ev_kw, 3),
        base_load_kw=round(base_kw, 3),
        import_limit_kw=limit_kw,
        grid_cap=grid_cap_out(live.inputs.grid_cap),
        grid_limit_kw=min(limit_kw, cap_kw) if cap_kw is not None else limit_kw,
        chargers_online=sum(1 for c in site.chargers if live.charger(c.id).connected),
        chargers_total=len(site.chargers),
        sessions=len(live.open_sessions()),
        last_tick=tick_out(tick) if tick is not None else None,
        ocpp_url=controller.url,
        writes_enabled=writes_enabled,
        billing_peak_kw=(round(controller.loop.billing_peak.peak_kw, 3)
                         if controller.loop.billing_peak is not None else None),
    )


def _vehicle(site: Site, state: SessionState | None) -> VehicleProfile | None:
    if state is None:
        return None
    vehicle, _ = vehicle_of(site, state)
    return vehicle


def _makes_it(cp: ConnectorPlan, target_soc: float | None) -> bool:
    if cp.expected_soc_at_departure is not None and target_soc is not None:
        return cp.expected_soc_at_departure >= target_soc - MAKES_IT_SOC
    return cp.energy_planned_kwh >= cp.energy_needed_kwh - MAKES_IT_KWH


def connector_out(controller: Controller, view: ConnectorView, now: datetime) -> s.ConnectorOut:
    site = controller.site
    state = controller.live.session_state(view.charger_id, view.connector_id, now) if view.transaction_id else None
    vehicle = _vehicle(site, state)
    is_roster = vehicle is not None and vehicle is not site.fleet_defaults
    plan = controller.last_tick.plan if controller.last_tick is not None else None
    cp = plan.for_connector(view.charger_id, view.connector_id) if plan is not None and state is not None else None
    target = state.target_soc if state is not None and state.target_soc is not None else (
        vehicle.target_soc if vehicle is not None else None)
    return s.ConnectorOut(
        charger=view.charger_id,
        connector=view.connector_id,
        online=view.connected,
        plug=str(view.plug),
        controlled=view.controlled,
        note=view.note,
        transaction_id=view.transaction_id,
        id_tag=state.id_tag if state is not None else None,
        vehicle=(state.vehicle_id if state is not None and state.vehicle_id else None)
        or (vehicle.id if is_roster and vehicle is not None else None),
        soc=_finite(state.soc, 4) if state is not None else None,
        soc_source=str(state.soc_source) if state is not None and state.soc is not None else None,
        power_kw=_finite(view.power_kw),
        limit_kw=_finite(view.limit_kw),
        limit_a=_finite(view.limit_a, 1),
        battery_temp_c=_finite(state.battery_temp_c, 1) if state is not None else None,
        temp_source=str(state.temp_source) if state is not None and state.battery_temp_c is not None else None,
        max_temp_c=_finite(vehicle.thermal.max_temp_c, 1) if vehicle is not None else None,
        departure=cp.departure if cp is not None else (state.departure if state is not None else None),
        target_soc=target,
        expected_soc_at_departure=_finite(cp.expected_soc_at_departure, 4) if cp is not None else None,
        will_make_it=_makes_it(cp, target) if cp is not None else None,
        energy_needed_kwh=_finite(cp.energy_needed_kwh) if cp is not None else None,
        energy_planned_kwh=_finite(cp.energy_planned_kwh) if cp is not None else None,
    )


def connectors(controller: Controller, now: datetime) -> list[s.ConnectorOut]:
    return [connector_out(controller, view, now) for view in controller.live.views(now)]


def chargers(controller: Controller, now: datetime) -> list[s.ChargerOut]:
    rows = connectors(controller, now)
    out: list[s.ChargerOut] = []
    for charger in controller.site.chargers:
        state = controller.live.charger(charger.id)
        mine = [r for r in rows if r.charger == charger.id]
        problems = sorted({r.note for r in mine if r.note})
        if state.connected and not state.failsafe_accepted and state.booted_at is not None:
            problems.append("fail-safe profile not accepted")
        share = controller.shares.get(charger.id)
        out.append(s.ChargerOut(
            id=charger.id,
            online=state.connected,
            ocpp_version=state.ocpp_version,
            monitor_only=state.monitor_only,
            failsafe_accepted=state.failsafe_accepted,
            failsafe_share_kw=round(share.station_kw, 3) if share is not None else None,
            last_seen=state.last_seen,
            phases=charger.phases,
            max_power_kw=charger.max_power_kw_for(charger.phases),
            problems=problems,
            connectors=mine,
        ))
    return out


def session_out(controller: Controller, charger_id: str, connector_id: int, now: datetime) -> s.SessionOut | None:
    live = controller.live
    connector = live.charger(charger_id).connectors.get(connector_id)
    state = live.session_state(charger_id, connector_id, now)
    if connector is None or connector.session is None or state is None:
        return None
    session = connector.session
    key = (charger_id, connector_id)
    override = live.inputs.override_for(key, session.transaction_id)
    data = live.inputs.vehicle_data_for(key, session.transaction_id)
    vehicle = _vehicle(controller.site, state)
    return s.SessionOut(
        charger=charger_id,
        connector=connector_id,
        transaction_id=session.transaction_id,
        id_tag=session.id_tag,
        vehicle=state.vehicle_id or (vehicle.id if vehicle is not None and vehicle is not controller.site.fleet_defaults
                                     else None),
        started_at=session.started_at,
        energy_delivered_kwh=round(session.delivered_kwh, 4),
        soc=_finite(state.soc, 4),
        soc_source=str(state.soc_source) if state.soc is not None else None,
        battery_kwh=state.battery_kwh,
        battery_temp_c=_finite(state.battery_temp_c, 1),
        temp_source=str(state.temp_source) if state.battery_temp_c is not None else None,
        departure=state.departure,
        target_soc=state.target_soc,
        priority=state.priority,
        override=s.SessionOverrideOut(departure=override.departure, target_soc=override.target_soc,
                                      priority=override.priority, set_at=override.set_at)
        if override is not None else None,
        vehicle_data=s.VehicleDataOut(measured_at=data.measured_at, soc=data.soc, battery_temp_c=data.battery_temp_c,
                                      battery_kwh=data.battery_kwh, vehicle=data.vehicle_id)
        if data is not None else None,
    )


def sessions(controller: Controller, now: datetime) -> list[s.SessionOut]:
    out = [session_out(controller, cid, conn, now) for cid, conn, _ in controller.live.open_sessions()]
    return [row for row in out if row is not None]


def circuits(controller: Controller, now: datetime) -> list[s.CircuitOut]:
    """Measured load on every circuit and site phase: each connector's draw is added to every circuit on its
    charger's path to the root. Per-phase currents come from per-phase measurements where the charger sends them
    (mapped through its phase rotation), otherwise from power spread evenly over the phases it uses."""
    site, live = controller.site, controller.live
    load_kw = {c.id: 0.0 for c in site.circuits}
    current = {c.id: dict.fromkeys((str(p) for p in ALL_PHASES), 0.0) for c in site.circuits}
    model = compile_circuits(site)
    for charger in site.chargers:
        path = model.path(charger.id)
        state = live.chargers.get(charger.id)
        if not path or state is None:
            continue
        for connector_id, connector in state.connectors.items():
            if connector_id < 1:
                continue
            power = live.measured_power_kw(charger, connector, now) or 0.0
            per_phase: dict[str, float] = {}
            fresh = {k: r.value for k, r in connector.readings.phase_current_a.items() if now - r.at <= live.stale_after}
            for index, site_phase in enumerate(wired_phases(charger)):
                own = f"L{index + 1}"
                if fresh:
                    per_phase[str(site_phase)] = fresh.get(own, 0.0)
                elif power > 0 and not charger.dc:
                    per_phase[str(site_phase)] = charger.current_a_at(power, charger.phases)
            for circuit_id in path:
                load_kw[circuit_id] += power
                for phase, amps in per_phase.items():
                    current[circuit_id][phase] += amps
    out: list[s.CircuitOut] = []
    for circuit in site.circuits:
        ratios = []
        if circuit.max_current_a:
            ratios.append(max(current[circuit.id].values()) / circuit.max_current_a)
        if circuit.max_kw:
            ratios.append(load_kw[circuit.id] / circuit.max_kw)
        out.append(s.CircuitOut(
            id=circuit.id, parent=circuit.parent, load_kw=round(load_kw[circuit.id], 3),
            current_a={k: round(v, 2) for k, v in current[circuit.id].items()},
            max_current_a=circuit.max_current_a, max_kw=circuit.max_kw,
            utilisation=round(max(ratios), 4) if ratios else None,
        ))
    return out


def uncontrolled(controller: Controller) -> list[s.UncontrolledOut]:
    tick = controller.last_tick
    if tick is None:
        return []
    return [s.UncontrolledOut(charger=u.charger_id, connector=u.connector_id, power_kw=round(u.power_kw, 3),
                              reason=u.reason) for u in tick.snapshot.uncontrolled]


def plan_ahead(plan: Plan | None, uncontrolled_kw: float) -> list[s.SeriesPoint]:
    """The planned site power (sessions + base load + what the plan could not steer) and the limit per step."""
    if plan is None or not plan.schedule_step_s:
        return []
    points: list[s.SeriesPoint] = []
    at = plan.time
    for t, step_s in enumerate(plan.schedule_step_s):
        ev_kw = sum(c.schedule_kw[t] for c in plan.connectors if t < len(c.schedule_kw))
        base = plan.base_load_kw[t] if t < len(plan.base_load_kw) else 0.0
        limit = plan.import_limit_kw[t] if t < len(plan.import_limit_kw) else math.nan
        if math.isfinite(limit):
            points.append(s.SeriesPoint(time=at, site_power_kw=round(ev_kw + base + uncontrolled_kw, 3),
                                        grid_limit_kw=round(limit, 3)))
        at += timedelta(seconds=step_s)
    return points
