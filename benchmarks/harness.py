"""Run one strategy through one scenario with the live controller's tick (``optimizer.tick.run_tick``) on the
simulated site (``benchmarks.simulated_site``): observe → strategy.plan → check the plan → apply through the
dispatch rules → let the physics advance.

The benchmark measures rather than protects: a plan that fails the independent check is still applied
(the live tick would refuse it), its failures are counted, and what it physically caused shows in the
limit and temperature metrics. A strategy that raises ends its run with an error; the others go on.
"""

from __future__ import annotations

import functools
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.metrics import Metrics, summarise
from benchmarks.offline import OfflineOptimal
from benchmarks.plant import PlantOptions, PlantTrace, SimulatedDepot
from benchmarks.scenario import Scenario
from benchmarks.simulated_site import SimulatedSite
from optimizer.domain import Plan, Snapshot
from optimizer.errors import DepotError
from optimizer.plan_check import check_plan
from optimizer.strategies import STRATEGY_NAMES, Strategy, get_strategy
from optimizer.tick import complete_now, run_tick

OFFLINE = "offline_optimal"
ALL_STRATEGIES: tuple[str, ...] = (*STRATEGY_NAMES, OFFLINE)
# What each strategy promises, so the check only flags broken promises: the baselines do not model
# battery temperature, and 'uncontrolled' ignores every limit by design.
MODELS_TEMPERATURE = frozenset({"lp", OFFLINE})
IGNORES_LIMITS = frozenset({"uncontrolled"})

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


def run_strategy(
    scenario: Scenario, name: str, options: PlantOptions | None = None, on_tick: TickCallback | None = None
) -> RunResult:
    """Simulate the whole scenario under strategy ``name``. Never raises for a failing strategy."""
    opts = options or PlantOptions()
    result = RunResult(scenario=scenario.name, strategy=name)
    started = time.perf_counter()
    plant = SimulatedDepot(scenario, opts)
    site = scenario.site
    simulated = SimulatedSite(plant)
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
            plant.advance()
            if on_tick is not None:
                on_tick()
    except (DepotError, ArithmeticError, ValueError, KeyError, IndexError, RuntimeError) as exc:
        # One strategy failing must not stop the benchmark; the report shows the error.
        result.error = f"{type(exc).__name__}: {exc} (at {_origin(exc)})"
        result.wall_s = time.perf_counter() - started
        return result
    result.trace = plant.trace
    result.metrics = summarise(plant.trace, tick_ms, scenario.priced, site.tariff.demand_charge_per_kw)
    result.wall_s = time.perf_counter() - started
    return result
