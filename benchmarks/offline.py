"""``offline_optimal``: the depot LP with perfect knowledge of every arrival, departure, SoC and battery
temperature of the day: the upper bound every online strategy is measured against.

It reuses the optimizer's formulation (``session_arrays`` + ``build_lp``) on the simulation's own
uniform time grid. Sessions that have not arrived yet are planned with ``ResolvedSession.arrival_h``:
the LP gives them power only from the first tick at or after their arrival (when the plant plugs them
in) and starts their battery temperature at that step, at the temperature they arrive with.

A schedule solved once and played open-loop drifts from the plant (currents are rounded down to 0.1 A,
the plant's taper acts within a step, minimum currents switch small powers off), and the drift would
make the "upper bound" lose to the closed-loop LP. So the hindsight LP is re-solved from the plant's
true state over the rest of the day, every tick when that is cheap, and less often when one solve is
slow (a budget of ~60 s of solving per run).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from datetime import datetime

import numpy as np

from benchmarks.plant import PlantOptions, plant_thermal
from benchmarks.scenario import Scenario, ScenarioSession
from optimizer.battery import BatteryState
from optimizer.circuits import phase_load
from optimizer.domain import Plan, PlanStatus, Site, Snapshot, ValueSource
from optimizer.horizon import FloatArray, Horizon, SiteSeries, site_series
from optimizer.infrastructure import compile_limits
from optimizer.lp_model import build_lp, session_arrays
from optimizer.needs import ResolvedSession
from optimizer.solver_backend import HighsSolver
from optimizer.strategies.base import prepare_tick
from optimizer.strategies.commands import CommandInput, PlanDiagnostics, commands_for

OFFLINE_TIME_LIMIT_S = 600.0


TruthSource = Callable[[int], BatteryState]

SOLVE_BUDGET_S = 60.0


def exact_ambient(series: SiteSeries, scenario: Scenario, first_step: int) -> SiteSeries:
    """``series`` (on the plant's own step grid from ``first_step``) with the ambient the plant will apply: hindsight
    knows it exactly, where a controller plans with the warmer of the forecast's samples around each step
    (``optimizer.ambient.warmest_over_steps``)."""
    return dataclasses.replace(series, ambient_c=np.array(scenario.ambient_on_steps(first_step, series.ambient_c.size)))


class OfflineOptimal:
    """A strategy that answers every tick from a schedule solved with hindsight."""

    name = "offline_optimal"

    def __init__(self, scenario: Scenario, options: PlantOptions | None = None, truth: TruthSource | None = None) -> None:
        self.scenario = scenario
        self.options = options or PlantOptions()
        self._truth = truth
        self._power_kw: FloatArray | None = None  # sessions × steps from ``_solved_at``
        self._below_minimum = np.zeros(len(scenario.sessions), dtype=np.bool_)  # at ``_solved_at`` (lp_model)
        self._solved_at = 0
        self._resolve_every = 1
        self._solver = ""
        self._objective: float | None = None

    def plan(self, site: Site, snapshot: Snapshot) -> Plan:
        started = time.perf_counter()
        k = round((snapshot.time - self.scenario.start).total_seconds() / self.scenario.step_s)
        first = self._power_kw is None
        if first or (self._truth is not None and snapshot.sessions and k - self._solved_at >= self._resolve_every):
            self._power_kw = self.schedule(site, k, snapshot.peak_so_far_kw or 0.0)
            self._solved_at = k
            if first:
                elapsed = time.perf_counter() - started
                self._resolve_every = max(1, math.ceil(elapsed * self.scenario.steps / 2 / SOLVE_BUDGET_S))
        assert self._power_kw is not None
        tick = prepare_tick(site, self._as_planned(snapshot))
        power = np.zeros((len(tick.sessions), tick.horizon.steps))
        below_minimum = np.zeros(len(tick.sessions), dtype=np.bool_)
        column = k - self._solved_at
        # The tick's leading steps that match the schedule's grid get the schedule's later columns too: the passes
        # after it judge a battery's ceiling with the later steps as planned (zeros let them add power now that
        # the schedule's next step, planned to the ceiling, then takes over it).
        step_h = self.scenario.step_s / 3600.0
        matches = np.abs(tick.horizon.length_h - step_h) < 1e-9
        same = tick.horizon.steps if matches.all() else int(np.argmin(matches))
        width = max(1, min(same, self._power_kw.shape[1] - column))
        for i, s in enumerate(tick.sessions):
            row = self._session_row(s.charger.id, s.connector_id, snapshot.time)
            if row is not None and 0 <= column < self._power_kw.shape[1]:
                power[i, :width] = self._power_kw[row, column : column + width]
                below_minimum[i] = column == 0 and self._below_minimum[row]
        diagnostics = PlanDiagnostics(
            solve_ms=(time.perf_counter() - started) * 1000.0, objective=self._objective, solver=self._solver
        )
        return commands_for(CommandInput(tick, self.name, power, PlanStatus.OPTIMAL, diagnostics, below_minimum=below_minimum))

    def _as_planned(self, snapshot: Snapshot) -> Snapshot:
        """``snapshot`` with each battery's true thermal model (and, with the plant's truth, its true temperature):
        the passes after the schedule (rounding, spare capacity) judge a battery's ceiling with the model the
        schedule was solved with. With the depot's model they gave batteries that heat twice as fast 150 kW at
        their ceiling (185-506 °C·min over the ceilings on the heatwave at +100 %)."""
        sessions = []
        for s in snapshot.sessions:
            row = self._session_row(s.charger_id, s.connector_id, snapshot.time)
            if row is None:
                sessions.append(s)
                continue
            true = self.scenario.sessions[row]
            temp_c = self._truth(row).temp_c if self._truth is not None else s.battery_temp_c
            thermal = plant_thermal(true.thermal, self.options.thermal_mismatch)
            sessions.append(dataclasses.replace(s, thermal=thermal, battery_temp_c=temp_c))
        return dataclasses.replace(snapshot, sessions=tuple(sessions))

    def _session_row(self, charger_id: str, connector_id: int, now: datetime) -> int | None:
        for row, s in enumerate(self.scenario.sessions):
            if s.charger_id == charger_id and s.connector_id == connector_id and s.arrival <= now < s.departure:
                return row
        return None

    # ------------------------------------------------------------------------------------ the LP

    def schedule(self, site: Site, k: int, peak_so_far_kw: float = 0.0) -> FloatArray:
        """Schedule (all sessions × steps k..end) from the true state at step k; departed rows stay 0."""
        sc = self.scenario
        steps = sc.steps - k
        step_h = sc.step_s / 3600.0
        now = sc.time_at(k)
        horizon = Horizon(start=now, length_h=np.full(steps, step_h), start_h=np.arange(steps, dtype=np.float64) * step_h)
        snapshot = Snapshot(time=now, ambient_c=sc.ambient_at(now), ambient_forecast_c=sc.ambient_forecast(now))
        series = exact_ambient(site_series(site, snapshot, horizon), sc, k)
        rows = [r for r, s in enumerate(sc.sessions) if s.departure > now]
        out = np.zeros((len(sc.sessions), steps))
        if not rows or steps <= 0:
            return out
        sessions = [
            self.resolved_session(site, sc.sessions[r], r, now, max(0.0, self.available_h(sc.sessions[r]) - k * step_h))
            for r in rows
        ]
        arrays = session_arrays(sessions, horizon, series)
        limits = compile_limits(site, sessions)
        lp = build_lp(sessions, horizon, series, limits, site.control.objective, 0.0, site.tariff.demand_charge_per_kw, arrays,
                      peak_so_far_kw)
        solver = HighsSolver(time_limit_s=OFFLINE_TIME_LIMIT_S)
        solver.load(lp)
        solution = solver.solve()
        self._solver = solution.solver
        self._objective = solution.objective
        out[rows] = solution.x[: lp.sessions * lp.steps].reshape(lp.sessions, lp.steps)
        self._below_minimum[:] = False
        if arrays.below_minimum is not None:
            self._below_minimum[rows] = arrays.below_minimum
        return out

    def available_h(self, s: ScenarioSession) -> float:
        """Hours from the start to the first tick at or after arrival (when the plant plugs it in)."""
        ticks = math.ceil((s.arrival - self.scenario.start).total_seconds() / self.scenario.step_s - 1e-9)
        return ticks * self.scenario.step_s / 3600.0

    def resolved_session(self, site: Site, s: ScenarioSession, row: int, now: datetime, arrival_h: float) -> ResolvedSession:
        """The session as the LP sees it from ``now``: its true state once plugged in, its arrival values
        (and ``arrival_h`` hours until the plant plugs it in) before."""
        charger = site.charger(s.charger_id)
        soc0, need_kwh, temp0_c = s.soc_arrival, s.energy_kwh, s.battery_temp_c
        if self._truth is not None and s.arrival <= now:
            state = self._truth(row)
            soc0, need_kwh, temp0_c = state.soc, max(0.0, s.energy_kwh - state.energy_kwh), state.temp_c
        phases = charger.phases
        max_kw = min(charger.max_power_kw_for(phases), s.max_kw)
        min_kw = charger.min_power_kw_for(phases)
        profile = site.vehicle_for_tag(s.id_tag) if s.id_tag else None
        priority = s.priority if s.priority is not None else (profile or site.fleet_defaults).priority
        return ResolvedSession(
            charger=charger,
            connector_id=s.connector_id,
            soc0=soc0,
            soc_source=ValueSource.MEASURED,
            battery_kwh=s.battery_kwh,
            target_soc=s.target_soc,
            need_kwh=need_kwh,
            departure=s.departure,
            departure_h=(s.departure - now).total_seconds() / 3600.0,
            max_kw=0.0 if min_kw > max_kw + 1e-9 else max_kw,
            min_kw=min_kw,
            phases=phases,
            site_phases=phase_load(charger, vehicle_phases=phases).site_phases,
            load=phase_load(charger, vehicle_phases=phases),
            knee_soc=s.knee_soc,
            thermal=plant_thermal(s.thermal, self.options.thermal_mismatch),
            temp0_c=temp0_c,
            priority=priority,
            efficiency=charger.efficiency,
            arrival_h=arrival_h,
        )
