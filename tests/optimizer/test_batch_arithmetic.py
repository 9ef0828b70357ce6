"""The all-sessions-at-once forms of per-session arithmetic give what the per-session forms give."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.synthetic_site import synthetic_site, synthetic_snapshot
from optimizer.battery_stress import schedules_stress, session_stress
from optimizer.domain import ThermalModel
from optimizer.lp_model import build_lp, session_arrays
from optimizer.lp_rows import RowBuilder, add_taper_rows
from optimizer.strategies.base import prepare_tick
from optimizer.thermal import trajectories, trajectory


def _random_case(seed: int, n: int = 40, steps: int = 22) -> tuple[np.random.Generator, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    length_h = rng.choice([0.25, 0.5, 1.0, 2.0], size=steps)
    plugged = np.clip(rng.uniform(-0.3, 1.3, size=(n, steps)), 0.0, 1.0)
    return rng, length_h, plugged


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_trajectories_equal_one_trajectory_per_battery(seed: int) -> None:
    rng, length_h, plugged = _random_case(seed)
    n, steps = plugged.shape
    models = [ThermalModel(45.0, float(rng.uniform(0.0, 0.6)), float(rng.choice([0.0, rng.uniform(0.05, 1.0)])))
              for _ in range(n)]
    temp0 = rng.uniform(-5.0, 44.0, size=n)
    power = rng.uniform(-1.0, 150.0, size=(n, steps))
    ambient = rng.uniform(-10.0, 35.0, size=steps)
    together = trajectories(models, temp0, power, length_h, ambient, plugged)
    for i, model in enumerate(models):
        np.testing.assert_array_equal(together[i], trajectory(model, float(temp0[i]), power[i], length_h, ambient, plugged[i]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stress_of_all_schedules_equals_the_stress_of_each(seed: int) -> None:
    rng, length_h, plugged = _random_case(seed)
    n, steps = plugged.shape
    plugged_h = plugged * length_h
    power = rng.uniform(-1.0, 150.0, size=(n, steps)) * (rng.uniform(size=(n, 1)) > 0.1)  # some draw nothing
    soc0 = rng.uniform(0.0, 0.95, size=n)
    battery = rng.choice([0.0, 60.0, 80.0, 300.0], size=n)  # 0: a battery size nobody knows
    efficiency = rng.uniform(0.85, 0.97, size=n)
    temp0 = rng.uniform(0.0, 40.0, size=n)
    temps = rng.uniform(0.0, 50.0, size=(n, steps))
    modelled = rng.uniform(size=n) > 0.3
    temps = np.where(modelled.reshape(n, 1), temps, temp0.reshape(n, 1))
    together = schedules_stress(power, plugged_h, soc0, battery, efficiency, temps, temp0)
    for i in range(n):
        alone = session_stress(power[i], plugged_h[i], float(soc0[i]), float(battery[i]), float(efficiency[i]),
                               temps[i] if modelled[i] else None, float(temp0[i]))
        assert together[i].hours_above_high_soc == pytest.approx(alone.hours_above_high_soc, rel=1e-12, abs=1e-12)
        assert together[i].arrhenius_kwh == pytest.approx(alone.arrhenius_kwh, rel=1e-12, abs=1e-12)
        assert together[i].peak_c_rate == pytest.approx(alone.peak_c_rate, rel=1e-12, abs=1e-12)


def test_no_sessions_and_no_steps_give_empty_or_zero_stress() -> None:
    assert schedules_stress(np.zeros((0, 4)), np.zeros((0, 4)), np.zeros(0), np.zeros(0), np.zeros(0),
                            np.zeros((0, 4)), np.zeros(0)) == []
    none = schedules_stress(np.zeros((2, 0)), np.zeros((2, 0)), np.zeros(2), np.full(2, 80.0), np.ones(2),
                            np.zeros((2, 0)), np.zeros(2))
    assert [s.arrhenius_kwh for s in none] == [0.0, 0.0]


@pytest.mark.parametrize("at_step_start", [False, True])
def test_taper_rows_written_at_once_equal_the_rows_written_window_by_window(at_step_start: bool) -> None:
    site = synthetic_site(80, step_min=15.0, horizon_h=24.0, uniform_steps=False)
    tick = prepare_tick(site, synthetic_snapshot(80, 24.0))
    arrays = session_arrays(tick.sessions, tick.horizon, tick.series)
    lp = build_lp(tick.sessions, tick.horizon, tick.series, tick.limits, site.control.objective, tick.uncontrolled_kw,
                  0.0, arrays)
    windows = list(lp.taper_windows)
    assert len(windows) > 10 and len({(f, last) for _, f, last in windows}) > 3  # windows of many shapes
    energy_coef = arrays.efficiency.reshape(-1, 1) * arrays.energy_h
    p_index = np.arange(lp.sessions * lp.steps, dtype=np.int64).reshape(lp.sessions, lp.steps)
    labels = tuple(str(i) for i in range(lp.sessions))
    together = RowBuilder()
    add_taper_rows(together, tick.sessions, windows, p_index, energy_coef, labels, at_step_start)
    alone = RowBuilder()  # the rows as they were written before, one window at a time
    for i, first, last in windows:
        s = tick.sessions[i]
        slope = s.max_kw / (s.battery_kwh * (1.0 - s.knee_soc))
        head = s.max_kw * (1.0 - s.soc0) / (1.0 - s.knee_soc)
        at, before = np.tril_indices(last + 1)
        keep = at >= first
        at, before = at[keep], before[keep]
        stored = (before < at) if at_step_start else np.ones(at.size, dtype=np.bool_)
        alone.add(alone.next_row + at - first, p_index[i, before], slope * energy_coef[i, before] * stored + (at == before))
        alone.bounds(np.full(last - first + 1, -np.inf), np.full(last - first + 1, head))
        alone.next_row += last - first + 1
    assert together.next_row == alone.next_row
    difference = together.matrix(lp.columns) - alone.matrix(lp.columns)
    assert difference.count_nonzero() == 0
    np.testing.assert_array_equal(np.concatenate(together.row_ub), np.concatenate(alone.row_ub))
    np.testing.assert_array_equal(np.concatenate(together.row_lb), np.concatenate(alone.row_lb))
