"""Run one strategy through one scenario with the live controller's tick (``optimizer.tick.run_tick``) on the
simulated site (``benchmarks.simulated_site``): observe → strategy.plan → check the plan → apply through the
dispatch rules → let the physics advance.

The benchmark measures rather than protects: a plan that fails the independent check is still applied
(the live tick would refuse it), its failures are counted, and what it physically caused shows in the
limit and temperature metrics. A strategy that raises ends its run with an error; the others go on.
"""

from __future__ import annotations

import dataclasses
import functools
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from benchmarks.metrics import Metrics, summarise
from benchmarks.offline import OfflineOptimal
from benchmarks.plant import PlantOptions, PlantTrace, SimulatedDepot
from benchmarks.scenario import Scenario
from benchmarks.simulated_site import SimulatedSite
from benchmarks.strategy_names import OFFLINE
from optimizer.domain import Plan, SessionState, Snapshot, ThermalModel
from optimizer.errors import DepotError
from optimizer.plan_check import check_plan
from optimizer.strategies import Strategy, get_strategy
from optimizer.temp_guard import TempGuard
from optimizer.thermal_calibration import ThermalCalibrator, configured_model, vehicle_key
from optimizer.tick import complete_now, run_tick

# What each strategy promises, so the check only flags broken promises: the baselines do not model
# battery temperature, and 'uncontrolled' ignores every limit by design.
MODELS_TEMPERATURE = frozenset({"lp", OFFLINE})
IGNORES_LIMITS = frozenset({"uncontrolled"})
CALIBRATED = frozenset({"lp"})  # strategies that plan with a thermal model the run can learn
SCREENED = frozenset({"lp"})  # strategies whose battery temperatures are screened as the live controller's are
# The results field (results.json, report.md) of RunResult.distrusted_count: battery temperatures the controller did
# not plan with as read (docs/battery.md). A count of the controller's, not the plant's, so not in Metrics.
DISTRUSTED = "distrusted_readings"


def configured_thermal(scenario: Scenario) -> dict[tuple[str, int, datetime], ThermalModel]:
    """The thermal model the scenario gives each session (what the depot was configured with), by connector and
    arrival, so a run can tell which sessions were planned with a learnt model."""
    return {(s.charger_id, s.connector_id, s.arrival): s.thermal for s in scenario.sessions}


TickCallback = Callable[[], None]


@dataclass(slots=True)
class RunResult:
    scenario: str
    strategy: str
    metrics: Metrics | None = None
    trace: PlantTrace | None = None
    error: str | None = None
    plan_check_failures: int = 0  # ticks whose plan failed the independent check
    first_check_problem: str | None = None
    statuses: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    thermal_calibration: bool = False  # the strategy planned with thermal models learnt during the run
    fitted_sessions: int = 0  # sessions planned with a learnt model at least once
    distrusted_readings: int = 0  # battery temperatures not planned with as read (optimizer.temp_guard)
    readings_screened: bool = False  # the strategy's battery temperatures were screened (SCREENED)

    @property
    def distrusted_count(self) -> int | None:
        """``distrusted_readings`` where it is a count: None for a strategy whose readings are not screened (it
        plans with every reading as read) and for a run that failed (its count stopped with it)."""
        return self.distrusted_readings if self.readings_screened and self.metrics is not None else None


def _origin(exc: BaseException) -> str:
    """file:line where ``exc`` was raised, so a report points the owner of the code at it."""
    frames = traceback.extract_tb(exc.__traceback__)
    return f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"


def make_strategy(
    name: str, scenario: Scenario, options: PlantOptions, plant: SimulatedDepot | None = None
) -> Strategy:
    """A fresh strategy; raises KeyError for an unknown name. Only the hindsight strategy reads the
    plant's true state."""
    if name == OFFLINE:
        return OfflineOptimal(scenario, options, plant.true_state if plant is not None else None)
    return get_strategy(name)


class ControllerSite:
    """The simulated depot as lp's controller sees it: each snapshot's battery temperatures are screened
    (``optimizer.temp_guard``), the trusted ones teach the calibrator (when there is one), and the planner (and the
    plan check) get the screened temperatures with the thermal models learnt so far."""

    def __init__(self, inner: SimulatedSite, calibrator: ThermalCalibrator | None,
                 on_calibrated: Callable[[Snapshot], None]) -> None:
        self.inner = inner
        self.calibrator = calibrator
        self.on_calibrated = on_calibrated
        self.guard = TempGuard()

    def model_in_use(self, session: SessionState) -> ThermalModel:
        site = self.inner.plant.scenario.site
        configured = configured_model(site, session)
        if self.calibrator is None:
            return configured
        return self.calibrator.choice(vehicle_key(site, session), configured).model

    async def observe(self, now: datetime) -> Snapshot:
        snapshot = await self.inner.observe(now)
        site = self.inner.plant.scenario.site
        screened = self.guard.screen(snapshot, self.model_in_use)
        if self.calibrator is None:
            return screened.planning
        self.calibrator.observe_snapshot(site, screened.learning)
        calibrated = self.calibrator.calibrate(site, screened.planning)
        self.on_calibrated(calibrated)
        return calibrated

    async def apply(self, plan: Plan, snapshot: Snapshot, now: datetime) -> object:
        return await self.inner.apply(plan, snapshot, now)


def run_strategy(
    scenario: Scenario, name: str, options: PlantOptions | None = None, on_tick: TickCallback | None = None,
    *, thermal_calibration: bool = True,
) -> RunResult:
    """Simulate the whole scenario under strategy ``name``. Never raises for a failing strategy.

    With ``thermal_calibration`` a strategy that models temperature plans with the thermal models learnt from the
    readings so far (``optimizer.thermal_calibration``), as the live controller does; the plan is still checked
    against what the strategy was told, so a broken promise is the strategy's, not the fit's."""
    opts = options or PlantOptions()
    calibrator = ThermalCalibrator() if thermal_calibration and name in CALIBRATED else None
    result = RunResult(scenario=scenario.name, strategy=name, thermal_calibration=calibrator is not None,
                       readings_screened=name in SCREENED)
    fitted: set[tuple[str, int, datetime]] = set()
    configured = configured_thermal(scenario)
    started = time.perf_counter()
    if name == OFFLINE:
        # The hindsight replay follows its schedule step by step: a tick brought forward would change nothing.
        opts = dataclasses.replace(opts, react_to_stops=False)
    plant = SimulatedDepot(scenario, opts)
    site = scenario.site
    plain = SimulatedSite(plant)
    simulated: SimulatedSite | ControllerSite = plain
    if name in SCREENED:
        def note_fitted(snapshot: Snapshot) -> None:
            fitted.update(key for s in snapshot.sessions if s.plugged_in_at is not None
                          and (key := (s.charger_id, s.connector_id, s.plugged_in_at)) in configured
                          and s.thermal is not None and s.thermal != configured[key])

        simulated = ControllerSite(plain, calibrator, note_fitted)
    check = functools.partial(check_plan, site, limits=name not in IGNORES_LIMITS, temperature=name in MODELS_TEMPERATURE)
    tick_ms: list[float] = []
    try:
        strategy = make_strategy(name, scenario, opts, plant)

        async def planner(snapshot: Snapshot) -> Plan:
            return strategy.plan(site, snapshot)

        while not plant.done:
            outcome = complete_now(run_tick(simulated, planner, plant.now, check=check, apply_unsafe=True))
            if outcome.error is not None:
                raise outcome.error
            assert outcome.plan is not None and outcome.plan_ms is not None
            if outcome.snapshot.sessions:  # empty ticks would flatter the percentiles
                tick_ms.append(outcome.plan_ms)
            if outcome.problems:
                result.plan_check_failures += 1
                result.first_check_problem = result.first_check_problem or f"{outcome.time.isoformat()}: {outcome.problems[0]}"
            status = outcome.plan.status.value
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if plant.advance_to_next_tick() and on_tick is not None:
                on_tick()
    except (DepotError, ArithmeticError, ValueError, KeyError, IndexError, RuntimeError) as exc:
        # One strategy failing must not stop the benchmark; the report shows the error.
        result.error = f"{type(exc).__name__}: {exc} (at {_origin(exc)})"
        result.wall_s = time.perf_counter() - started
        return result
    result.fitted_sessions = len(fitted)
    if isinstance(simulated, ControllerSite):
        result.distrusted_readings = simulated.guard.distrusted_total
    result.trace = plant.trace
    result.metrics = summarise(plant.trace, tick_ms, scenario.priced, site.tariff.demand_charge_per_kw)
    result.wall_s = time.perf_counter() - started
    return result
