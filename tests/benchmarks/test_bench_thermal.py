"""Battery temperature over whole simulated days: recovery from an over-ceiling start, and calibration that keeps
every ceiling when the batteries heat faster than the site file says."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from benchmarks.harness import run_strategy
from benchmarks.hotter_days import ARRIVAL_CAP_C, write_days
from benchmarks.plant import PlantOptions, plant_thermal
from benchmarks.scenario import load_scenario
from benchmarks.thermal_bench import run_row
from optimizer.domain import Snapshot, ThermalModel
from optimizer.strategies import lp as lp_strategy
from optimizer.temp_guard import Screened, TempGuard

QUIET = PlantOptions(soc_noise=0.0, temp_noise_c=0.0, meter_noise=0.0)
REPO = Path(__file__).resolve().parents[2]


def test_battery_found_over_its_ceiling_cools_then_charges_again(tiny_scenario_path: Path) -> None:
    scenario = load_scenario(tiny_scenario_path)
    hot = dataclasses.replace(scenario.sessions[2], battery_temp_c=47.0)  # ceiling 42 °C
    day = dataclasses.replace(scenario, sessions=(hot,))
    result = run_strategy(day, "lp", QUIET)
    assert result.error is None and result.trace is not None
    plugged = result.trace.plugged_h[0] > 0
    temps = result.trace.temp_end_c[0][plugged]
    power = result.trace.power_kw[0][plugged]
    first_charge = int(np.argmax(power > 0.1))
    assert power[0] == 0.0 and first_charge > 0  # cools first ...
    assert temps[first_charge - 1] <= 42.0  # ... until under the ceiling ...
    assert power[first_charge:].sum() > 0  # ... then charges again
    assert (temps[first_charge:] <= 42.0 + 1e-6).all()  # and never goes back over
    assert result.trace.delivered_kwh[0] > 0.5 * hot.energy_kwh
    assert result.statuses.get("infeasible_safe", 0) >= 1  # it said so while it was over


def test_calibration_keeps_the_ceiling_when_batteries_heat_twice_as_fast() -> None:
    scenario = load_scenario(REPO / "benchmarks" / "scenarios" / "bus-depot-hot-evening.yaml")
    row = run_row(scenario, 1.0)
    assert row.calibrated.temp_violation_c_min <= 1.0
    assert row.calibrated.sessions_fitted > 0
    assert row.calibrated.energy_pct >= 90.0
    assert row.calibrated.energy_pct >= row.true_model.energy_pct - 0.5


def test_the_cautious_first_step_keeps_the_ceiling_with_the_configured_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batteries heating twice as fast as configured, no calibration: the cautious first step alone keeps every
    ceiling; without it the plan trusts the configured model for each step it commits to, and overheats them."""
    scenario = load_scenario(REPO / "benchmarks" / "scenarios" / "bus-depot-hot-evening.yaml")
    options = PlantOptions(thermal_mismatch=1.0)
    guarded = run_strategy(scenario, "lp", options, thermal_calibration=False)
    monkeypatch.setattr(lp_strategy, "cautious_first_step", lambda tick: tick)
    trusting = run_strategy(scenario, "lp", options, thermal_calibration=False)
    assert guarded.metrics is not None and trusting.metrics is not None
    assert trusting.metrics.temp_violation_c_min > 5.0
    assert guarded.metrics.temp_violation_c_min <= 1.0
    assert guarded.metrics.energy_delivered_pct >= trusting.metrics.energy_delivered_pct - 0.5


def test_calibration_costs_nothing_when_the_model_is_right(tiny_scenario_path: Path) -> None:
    scenario = load_scenario(tiny_scenario_path)
    on = run_strategy(scenario, "lp", PlantOptions(seed=2), thermal_calibration=True)
    off = run_strategy(scenario, "lp", PlantOptions(seed=2), thermal_calibration=False)
    assert on.metrics is not None and off.metrics is not None
    assert on.fitted_sessions == 0
    assert on.metrics.energy_delivered_pct == pytest.approx(off.metrics.energy_delivered_pct, abs=0.1)


@pytest.mark.parametrize("mismatch", [-0.3, 0.5, 1.0])
def test_mismatch_heats_by_1_plus_m_and_cools_by_its_inverse(mismatch: float) -> None:
    model = ThermalModel(45.0, 0.1, 0.5)
    real = plant_thermal(model, mismatch)
    assert real.heating_c_per_kwh == pytest.approx(0.1 * (1 + mismatch))
    assert real.cooling_per_h == pytest.approx(0.5 / (1 + mismatch))
    assert real.cooling_per_h > 0  # a pack always sheds heat


def test_mismatch_at_or_below_minus_one_is_refused() -> None:
    with pytest.raises(ValueError, match="above -1"):
        plant_thermal(ThermalModel(45.0, 0.1, 0.5), -1.0)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("seed", [1, 3])
def test_a_low_reading_on_a_hotter_day_does_not_take_a_bus_over_its_ceiling(
        seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The two traced cases (docs/battery.md, "Hotter days"): heatwave seeds 1 and 3 with 2 °C hotter air, batteries
    heating twice as fast. One bus was read 0.39 °C low at one tick, planned on it, and went to 45.13 °C. With the
    readings screened it stays under; planned with every reading as read, it does not."""
    [path] = write_days(tmp_path, [seed], [2.0])
    scenario = load_scenario(path)
    options = PlantOptions(thermal_mismatch=1.0)
    screened = run_strategy(scenario, "lp", options, thermal_calibration=True)
    assert screened.metrics is not None
    assert screened.metrics.temp_violation_c_min <= 1.0
    assert screened.distrusted_readings >= 1

    def as_read(self: TempGuard, snapshot: Snapshot, model_of: object) -> Screened:
        return Screened(snapshot, snapshot, ())

    monkeypatch.setattr(TempGuard, "screen", as_read)
    trusting = run_strategy(scenario, "lp", options, thermal_calibration=True)
    assert trusting.metrics is not None
    # Over its ceiling (seed 3: 0.92 °C·min since the SoC fit, above 1 before it), and further than when screened.
    assert trusting.metrics.temp_violation_c_min > max(0.1, screened.metrics.temp_violation_c_min)


def test_hotter_days_start_from_the_shipped_heatwave(tmp_path: Path) -> None:
    shipped = load_scenario(REPO / "benchmarks" / "scenarios" / "bus-depot-heatwave.yaml")
    same, hotter = (load_scenario(p) for p in write_days(tmp_path, [1], [0.0, 3.0]))
    assert same.sessions == shipped.sessions and same.name == "heatwave-s1-plus0C"
    assert hotter.ambient_at(hotter.start) == pytest.approx(shipped.ambient_at(shipped.start) + 3.0)
    for warm, base in zip(hotter.sessions, shipped.sessions, strict=True):
        assert warm.battery_temp_c == pytest.approx(min(ARRIVAL_CAP_C, base.battery_temp_c + 3.0))
    assert max(s.battery_temp_c for s in hotter.sessions) == ARRIVAL_CAP_C  # none arrives over its ceiling
