"""The hindsight bound (benchmarks/bound.py): a true upper bound that no run within the limits beats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.bound import bound_lp, hindsight_bound, sessions_met_lp
from benchmarks.harness import run_strategy
from benchmarks.plant import PlantOptions
from benchmarks.report import BOUND_TOLERANCE_KWH, exceeds_bound
from benchmarks.scenario import load_scenario
from benchmarks.strategy_names import ALL_STRATEGIES
from optimizer.solver_backend import HighsSolver

SCENARIOS = Path(__file__).resolve().parents[2] / "benchmarks" / "scenarios"


def test_the_bound_caps_every_run_of_the_tiny_day(tiny_scenario_path: Path) -> None:
    scenario = load_scenario(tiny_scenario_path)
    bound = hindsight_bound(scenario)
    requested = sum(s.energy_kwh for s in scenario.sessions)
    assert 0 < bound.energy_kwh <= requested + 1e-6
    assert 0 <= bound.sessions_met <= len(scenario.sessions)
    for name in ALL_STRATEGIES:
        result = run_strategy(scenario, name, PlantOptions(seed=3))
        assert result.metrics is not None, result.error
        assert exceeds_bound(name, result.metrics, bound) is None


def test_a_run_above_the_bound_is_reported() -> None:
    from benchmarks.bound import HindsightBound
    from benchmarks.metrics import Metrics

    bound = HindsightBound("x", 10.0, 50.0, 1.0, 50.0, 0.0, 0.0)
    fields = dict.fromkeys(Metrics.__dataclass_fields__, 0.0)
    over = Metrics(**{**fields, "energy_delivered_kwh": 10.0 + 2 * BOUND_TOLERANCE_KWH, "sessions": 2,
                      "sessions_met_pct": 50.0, "violation_count": 0})  # type: ignore[arg-type]
    assert exceeds_bound("edf", over, bound) is not None
    # A run over a limit, or 'uncontrolled', is not bounded by a bound that respects the limits.
    assert exceeds_bound("uncontrolled", over, bound) is None
    assert exceeds_bound("edf", Metrics(**{**fields, "energy_delivered_kwh": 99.0, "violation_count": 3}), bound) is None  # type: ignore[arg-type]
    more_met = Metrics(**{**fields, "energy_delivered_kwh": 5.0, "sessions": 4, "sessions_met_pct": 50.0,
                          "violation_count": 0})  # type: ignore[arg-type]
    assert "met" in (exceeds_bound("lp", more_met, bound) or "")


def test_the_sessions_met_relaxation_counts_sessions_that_could_be_met(tiny_scenario_path: Path) -> None:
    scenario = load_scenario(tiny_scenario_path)
    lp = bound_lp(scenario)
    requested = np.array([s.energy_kwh for s in scenario.sessions])
    extended = sessions_met_lp(lp, requested)
    assert extended.columns == lp.columns + len(requested)
    solver = HighsSolver()
    solver.load(extended)
    solution = solver.solve()
    z = solution.x[lp.columns:]
    assert ((z >= -1e-9) & (z <= 1 + 1e-9)).all()
    assert -solution.objective == pytest.approx(float(z.sum()))


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", ["two-shift-depot", "van-depot-overnight", "bus-depot-hot-evening"])
def test_no_online_strategy_beats_the_bound_on_a_shipped_day(name: str) -> None:
    scenario = load_scenario(SCENARIOS / f"{name}.yaml")
    bound = hindsight_bound(scenario)
    for strategy in ("lp", "equal_share", "edf", "llf"):
        result = run_strategy(scenario, strategy, PlantOptions(seed=1))
        assert result.metrics is not None, result.error
        assert exceeds_bound(strategy, result.metrics, bound) is None


def test_hindsight_plans_with_the_plants_air_where_a_controller_takes_the_warm_side(tiny_scenario_path: Path) -> None:
    """The tiny day's air rises 20 → 22 → 25 °C on the hour. A controller's step takes the warmer forecast sample
    around it (optimizer.ambient); the bound and offline_optimal know the plant's air exactly, so the bound stays
    an upper bound."""
    from benchmarks.offline import exact_ambient
    from optimizer.domain import Snapshot
    from optimizer.horizon import Horizon, site_series

    scenario = load_scenario(tiny_scenario_path)
    steps, step_h = scenario.steps, scenario.step_s / 3600.0
    now = scenario.start
    horizon = Horizon(start=now, length_h=np.full(steps, step_h), start_h=np.arange(steps) * step_h)
    snapshot = Snapshot(time=now, ambient_c=scenario.ambient_at(now), ambient_forecast_c=scenario.ambient_forecast(now))
    forecast = site_series(scenario.site, snapshot, horizon)
    exact = exact_ambient(forecast, scenario, 0).ambient_c
    plant_air = [scenario.ambient_at(scenario.time_at(k)) for k in range(steps)]
    assert exact.tolist() == plant_air == [20.0] * 12 + [22.0] * 12 + [25.0] * 24
    assert (forecast.ambient_c >= exact).all()
    assert forecast.ambient_c[11] == 22.0 and forecast.ambient_c[23] == 25.0  # the last step of a rising hour
    later = exact_ambient(forecast, scenario, 12).ambient_c  # from step 12 on, as offline_optimal re-solves
    assert later[:24].tolist() == [22.0] * 12 + [25.0] * 12
