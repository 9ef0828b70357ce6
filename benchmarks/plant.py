"""The simulated depot: vehicles whose batteries taper, warm and cool, on chargers that obey their
profile limit, minimum current and phases. It implements the site protocol (``observe() -> Snapshot``,
``apply(plan)``) so strategies are driven exactly as the live controller drives them, and it records
what physically happened for the metrics.

Strategies see only what a live controller would: a measured (noisy) SoC for vehicles that report one
(ISO 15118), otherwise no SoC but the charger's energy register; a battery temperature from the
vehicle-data feed when the vehicle has a thermal model; departure, battery size and target from the
roster. The plant's own thermal model may differ from the one the depot believes (``thermal_mismatch``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from benchmarks.limits import FloatArray, LimitRows, hourly_value_per_step, import_limit_per_step, limit_rows
from benchmarks.scenario import Scenario, ScenarioSession
from optimizer.battery import Battery, BatteryState
from optimizer.circuits import PHASE_LEARN_MIN_A, wired_phases
from optimizer.domain import Charger, ConnectorPlan, Phase, Plan, SessionState, Snapshot, ThermalModel, ValueSource
from optimizer.vehicle_limit import MIN_JUDGED_KW, Observation, VehicleLimit, infer_vehicle_limit, takes_clearly_less


@dataclass(frozen=True, slots=True)
class PlantOptions:
    """Imperfections of the simulated world. Defaults are small, realistic sensor errors."""

    seed: int = 0
    soc_noise: float = 0.002  # standard deviation of a reported SoC (fraction)
    temp_noise_c: float = 0.1  # standard deviation of a reported battery temperature
    # Relative standard deviation of a charger meter's calibration error: each session's register reads its true energy
    # times (1 + e), e drawn once, so two reads differ by what was drawn between them (a register is cumulative).
    meter_noise: float = 0.002
    thermal_mismatch: float = 0.0  # the real battery heats (1+m)× and cools 1/(1+m)× as fast as the depot's model says
    hide_soc: bool = True  # False: every vehicle reports its SoC (isolates the cost of estimating it)
    # True: each AC charger's meter reports current per phase, as the controller configures it to (docs/safety-phases.md),
    # so a vehicle that draws is known to draw on the charger's wired phases from the next step on. False: the
    # worst case, where phases are never learnt and a W-limited charger is planned as if on one phase all day.
    phase_metering: bool = True
    # True: the controller re-plans at the end of the fifth of a step in which a vehicle stopped drawing (it reached
    # its target) or took clearly less of a limit newly given to it, as the live controller brings a tick forward then
    # (docs/benchmarks-robust.md, section 2). False: it re-plans only at each step, and what such a vehicle was
    # allowed stays unused until then.
    react_to_stops: bool = True


# A step is integrated in this many parts; a vehicle that stops in one brings the next tick to that part's end.
STOP_CHECKS_PER_STEP = 5


@dataclass(slots=True)
class _Vehicle:
    row: int  # the session's index in the trace arrays
    session: ScenarioSession
    charger: Charger
    battery: Battery
    state: BatteryState
    plugged_from: datetime  # the first tick at or after arrival: the controller plans it from then on
    drawn_kwh: float = 0.0
    allowed_kw: float = 0.0
    limit: VehicleLimit | None = None  # what a live controller's meter shows the vehicle takes (if less)
    seen: Observation | None = None  # what it was allowed and drew when last judged with something allowed
    # What it draws at the last moment integrated: the meter's latest sample, which the controller reads (None on
    # arrival, before anything was integrated).
    draw_now_kw: float | None = None
    new_offer: bool = False  # its limit changed at the last tick (a refusal of it brings the next tick forward)
    meter_gain: float = 1.0  # its charger meter's calibration: the register shows drawn_kwh × this


@dataclass(slots=True)
class PlantTrace:
    """What physically happened, per step (and per session × step). Powers are step averages."""

    step_h: float
    times: list[datetime]
    base_kw: FloatArray
    import_limit_kw: FloatArray
    price_per_kwh: FloatArray
    rows: LimitRows  # one column per session
    power_kw: FloatArray  # sessions × steps, grid side
    plugged_h: FloatArray  # sessions × steps: hours of the step the vehicle was plugged in
    soc_end: FloatArray  # sessions × steps, NaN when not plugged
    temp_end_c: FloatArray  # sessions × steps, NaN when not plugged
    sessions: tuple[ScenarioSession, ...]
    delivered_kwh: FloatArray = field(default_factory=lambda: np.zeros(0))  # battery side, per session
    drawn_kwh: FloatArray = field(default_factory=lambda: np.zeros(0))  # grid side, per session

    @property
    def ev_kw(self) -> FloatArray:
        return np.asarray(self.power_kw.sum(axis=0), dtype=np.float64)

    @property
    def site_kw(self) -> FloatArray:
        return self.ev_kw + self.base_kw

    @property
    def row_load_kw(self) -> FloatArray:
        return np.asarray(self.rows.coef @ self.power_kw, dtype=np.float64)

    @property
    def requested_kwh(self) -> FloatArray:
        return np.array([s.energy_kwh for s in self.sessions], dtype=np.float64)

    @property
    def temp_ceiling_c(self) -> FloatArray:
        return np.array([s.thermal.max_temp_c for s in self.sessions], dtype=np.float64)


def empty_trace(scenario: Scenario) -> PlantTrace:
    """A trace of ``scenario`` with the site's limits, base load and prices filled in and nothing drawn yet
    (shared by the simulated depot and the live mode, which fills it from the emulated chargers)."""
    site = scenario.site
    steps, n = scenario.steps, len(scenario.sessions)
    return PlantTrace(
        step_h=scenario.step_s / 3600.0,
        times=[scenario.time_at(k) for k in range(steps)],
        base_kw=hourly_value_per_step(site, site.base_load.profile_kw, scenario.start, scenario.step_s, steps),
        import_limit_kw=import_limit_per_step(site, scenario.start, scenario.step_s, steps),
        price_per_kwh=hourly_value_per_step(site, site.tariff.price_per_kwh, scenario.start, scenario.step_s, steps),
        rows=limit_rows(site, [s.charger_id for s in scenario.sessions]),
        power_kw=np.zeros((n, steps)),
        plugged_h=np.zeros((n, steps)),
        soc_end=np.full((n, steps), np.nan),
        temp_end_c=np.full((n, steps), np.nan),
        sessions=scenario.sessions,
        delivered_kwh=np.zeros(n),
        drawn_kwh=np.zeros(n),
    )


def charger_allows_kw(charger: Charger, command: ConnectorPlan | None) -> float:
    """The power a charger lets through for a plan's command taken as it is (no rounding, no deadband)."""
    if command is None:
        return 0.0
    return charger_allows(charger, command.limit_kw, command.limit_a, command.phases)


def charger_allows(charger: Charger, limit_kw: float, limit_a: float | None, phases: int) -> float:
    """The power a charger lets through for a limit: its current (AC) or power (DC) limit, capped at its
    maximum; below the minimum current an IEC 61851 charger pauses instead."""
    if limit_kw <= 0:
        return 0.0
    if charger.dc:
        return min(limit_kw, charger.max_power_kw)
    phases = max(1, min(phases, charger.phases))
    current_a = limit_a if limit_a is not None else charger.current_a_at(limit_kw, phases)
    if current_a < charger.min_current_a - 1e-9:
        return 0.0
    current_a = min(current_a, charger.max_current_a)
    return min(charger.power_kw_at(current_a, phases), charger.max_power_kw)


def plant_thermal(model: ThermalModel, mismatch: float) -> ThermalModel:
    """The real battery's thermal model: the depot's, off by ``mismatch`` (perfect knowledge sees this one): it heats
    (1+m)× and cools 1/(1+m)× as fast, so m = +1 is a pack that warms twice as fast and sheds heat half as fast
    (m > −1). Cooling (1−m)× would make m = +1 a pack that never cools, which no pack is."""
    if not model.is_modelled or mismatch == 0.0:
        return model
    if mismatch <= -1.0:
        raise ValueError(f"thermal mismatch {mismatch:g} must be above -1")
    return ThermalModel(model.max_temp_c, model.heating_c_per_kwh * (1.0 + mismatch), model.cooling_per_h / (1.0 + mismatch))


class SimulatedDepot:
    """One scenario run. Call ``observe``/``apply``/``advance`` until ``done``; then read ``trace``."""

    def __init__(self, scenario: Scenario, options: PlantOptions | None = None) -> None:
        self.scenario = scenario
        self.options = options or PlantOptions()
        self._rng = np.random.default_rng(self.options.seed)
        self.step = 0
        self._elapsed_s = 0.0  # into the current step (a tick brought forward by a stop falls inside a step)
        site = scenario.site
        step = timedelta(seconds=scenario.step_s)
        self._vehicles: list[_Vehicle] = []
        # Meter calibrations from their own stream, so the readings' noise is the same as with a perfect meter.
        meters = np.random.default_rng([self.options.seed, 1])
        for row, s in enumerate(scenario.sessions):
            charger = site.charger(s.charger_id)
            ticks = math.ceil((s.arrival - scenario.start) / step - 1e-9)
            battery = Battery(
                capacity_kwh=s.battery_kwh,
                max_power_kw=s.max_kw,
                knee_soc=s.knee_soc,
                thermal=plant_thermal(s.thermal, self.options.thermal_mismatch),
                efficiency=charger.efficiency,
            )
            state = BatteryState(soc=s.soc_arrival, temp_c=s.battery_temp_c)
            gain = 1.0 + float(meters.normal(0.0, self.options.meter_noise)) if self.options.meter_noise > 0 else 1.0
            self._vehicles.append(_Vehicle(row, s, charger, battery, state, scenario.start + ticks * step,
                                           meter_gain=gain))
        self.trace = empty_trace(scenario)

    @property
    def now(self) -> datetime:
        return self.scenario.time_at(self.step) + timedelta(seconds=self._elapsed_s)

    @property
    def done(self) -> bool:
        return self.step >= self.scenario.steps

    def plugged(self) -> list[_Vehicle]:
        now = self.now
        return [v for v in self._vehicles if v.plugged_from <= now < v.session.departure]

    # ------------------------------------------------------------------------- the site protocol

    def observe(self) -> Snapshot:
        """What the live controller would know now (with sensor noise)."""
        now = self.now
        sessions = tuple(self._session_state(v) for v in self.plugged())
        return Snapshot(
            time=now,
            sessions=sessions,
            ambient_c=self.scenario.ambient_at(now),
            ambient_forecast_c=self.scenario.ambient_forecast(now),
            peak_so_far_kw=self.peak_so_far_kw,
        )

    @property
    def peak_so_far_kw(self) -> float:
        """The site's highest step power so far (the scenario is one billing period), as its grid meter says."""
        return float(self.trace.site_kw[: self.step].max()) if self.step > 0 else 0.0

    def apply(self, plan: Plan) -> None:
        """Send the plan's first-step limits to the chargers as they are; connectors it omits get nothing. (The
        benchmark goes through ``benchmarks.simulated_site``, which rounds and holds limits as dispatch does.)"""
        self.set_allowed({v.row: charger_allows_kw(v.charger, plan.for_connector(v.session.charger_id, v.session.connector_id))
                          for v in self.plugged()})

    def set_allowed(self, allowed_kw: Mapping[int, float]) -> None:
        """What each plugged-in session's charger lets through until the next step, by session row (0 if absent)."""
        for v in self.plugged():
            allowed = allowed_kw.get(v.row, 0.0)
            v.new_offer = allowed != v.allowed_kw
            v.allowed_kw = allowed

    def plugged_sessions(self) -> list[tuple[int, ScenarioSession]]:
        """(row, session) of every vehicle plugged in now."""
        return [(v.row, v.session) for v in self.plugged()]

    def advance(self) -> None:
        """Let the rest of the step pass at the applied limits."""
        if not self.done:
            self._integrate(self._step_s - self._elapsed_s)
            self._judge_draws(self.now)

    def advance_to_next_tick(self) -> bool:
        """Let time pass until the controller ticks again: the end of the step, or with ``react_to_stops`` the end of
        the fifth of a step in which a vehicle stopped drawing. True when the step was completed."""
        if self.done:
            return True
        if not self.options.react_to_stops:
            self.advance()
            return True
        part_s = self._step_s / STOP_CHECKS_PER_STEP
        first = True
        while True:
            stopped = self._integrate(min(part_s, self._step_s - self._elapsed_s), refusals=first)
            first = False
            if self._elapsed_s == 0.0 or stopped:
                self._judge_draws(self.now)
                return self._elapsed_s == 0.0

    @property
    def _step_s(self) -> float:
        return float(self.scenario.step_s)

    def _integrate(self, seconds: float, refusals: bool = False) -> bool:
        """Physics for ``seconds`` (within the current step) at the applied limits. True when a vehicle that was
        allowed power stopped drawing in that time (it reached its target), or with ``refusals`` (the first part
        after a tick) when one draws clearly less of a limit changed at that tick (``takes_clearly_less``: a full
        vehicle offered a re-probe, a tapering one offered more than it takes), as the live controller judges each
        new command once (``csms_adapter.control.vehicle_stops``)."""
        now, k = self.now, self.step
        part_end = now + timedelta(seconds=seconds)
        ambient = self.scenario.ambient_at(self.scenario.time_at(k))
        trace = self.trace
        stopped = False
        for v in self.plugged():
            i = v.row
            until = min(v.session.departure, part_end)
            hours = max(0.0, (until - now).total_seconds() / 3600.0)
            was_short = v.state.soc < v.session.target_soc - 1e-9
            v.state, drawn = v.battery.charge(v.state, v.allowed_kw, hours, ambient, v.session.target_soc)
            v.drawn_kwh += drawn
            if hours > 0:
                reached = v.state.soc >= v.session.target_soc - 1e-9
                v.draw_now_kw = 0.0 if reached else min(v.allowed_kw, v.battery.acceptance_kw(v.state.soc))
                if v.allowed_kw >= MIN_JUDGED_KW and until == part_end:
                    refused = refusals and v.new_offer and takes_clearly_less(v.allowed_kw, v.draw_now_kw)
                    stopped = stopped or (was_short and reached) or refused
            trace.power_kw[i, k] += drawn / trace.step_h
            trace.plugged_h[i, k] += hours
            trace.soc_end[i, k] = v.state.soc
            trace.temp_end_c[i, k] = v.state.temp_c
            trace.delivered_kwh[i] = v.state.energy_kwh
            trace.drawn_kwh[i] = v.drawn_kwh
        self._elapsed_s += seconds
        if self._elapsed_s >= self._step_s - 1e-6:
            self.step += 1
            self._elapsed_s = 0.0
        return stopped

    def _judge_draws(self, at: datetime) -> None:
        """The vehicle-limit memory (``optimizer.vehicle_limit``) after what each vehicle was allowed and draws now,
        as the live controller judges the latest meter sample against the accepted limit."""
        for v in self._vehicles:
            if v.draw_now_kw is None or not v.plugged_from < at <= v.session.departure:
                continue
            observation = Observation(v.allowed_kw, v.draw_now_kw)
            v.limit = infer_vehicle_limit(v.limit, v.allowed_kw, observation.drawn_kw, at, v.seen)
            if v.allowed_kw >= MIN_JUDGED_KW:  # a tick it was given nothing says nothing about its draw
                v.seen = observation

    def true_state(self, row: int) -> BatteryState:
        """The real battery of session ``row`` now (for the hindsight strategy only)."""
        return self._vehicles[row].state

    # ------------------------------------------------------------------------------- helpers

    def _noisy(self, value: float, sigma: float) -> float:
        return value + float(self._rng.normal(0.0, sigma)) if sigma > 0 else value

    @staticmethod
    def _vehicle_limit_kw(v: _Vehicle) -> float:
        """What a live controller infers from its meter (``optimizer.vehicle_limit``), not the nameplate."""
        return min(v.session.max_kw, v.limit.limit_kw) if v.limit is not None else v.session.max_kw

    def _session_state(self, v: _Vehicle) -> SessionState:
        s = v.session
        soc = min(1.0, max(0.0, self._noisy(v.state.soc, self.options.soc_noise))) if s.reports_soc or not self.options.hide_soc else None
        temp = self._noisy(v.state.temp_c, self.options.temp_noise_c) if s.thermal.is_modelled else None
        meter = max(0.0, v.drawn_kwh * v.meter_gain)
        phases, site_phases = self._measured_phases(v)
        return SessionState(
            charger_id=s.charger_id,
            connector_id=s.connector_id,
            soc=soc,
            soc_source=ValueSource.ISO15118 if soc is not None else ValueSource.ESTIMATED,
            battery_kwh=s.battery_kwh,
            target_soc=s.target_soc,
            departure=s.departure,
            max_power_kw=self._vehicle_limit_kw(v),
            battery_temp_c=temp,
            temp_source=ValueSource.VEHICLE_DATA,
            priority=s.priority,
            id_tag=s.id_tag,
            knee_soc=s.knee_soc,
            thermal=s.thermal,
            plugged_in_at=s.arrival,
            energy_delivered_kwh=meter,
            power_kw=v.draw_now_kw,
            phases=phases,
            site_phases=site_phases,
        )

    def _measured_phases(self, v: _Vehicle) -> tuple[int | None, tuple[Phase, ...] | None]:
        """The phases a live controller learns from per-phase current (the simulated vehicles draw on every wired
        phase): known once the vehicle drew at least ``PHASE_LEARN_MIN_A`` per phase over a step."""
        charger = v.charger
        power_kw = v.draw_now_kw
        if not self.options.phase_metering or charger.dc or power_kw is None:
            return None, None
        if charger.current_a_at(power_kw, charger.phases) < PHASE_LEARN_MIN_A:
            return None, None
        wired = wired_phases(charger)
        return len(wired), wired
