"""The one thermal module: exact steps, trajectories and the rigorous bound the LP leaves rows out with."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.domain import ThermalModel
from optimizer.thermal import free_trajectory, rise_upper_bound, step_coefficients, step_temp_c, trajectory

MODEL = ThermalModel(max_temp_c=45.0, heating_c_per_kwh=0.1, cooling_per_h=0.5)


def test_one_long_step_equals_many_short_ones() -> None:
    """The discretisation is exact: splitting a step changes nothing."""
    whole = step_temp_c(MODEL, 30.0, 50.0, 1.0, 25.0)
    theta = 30.0
    for _ in range(100):
        theta = step_temp_c(MODEL, theta, 50.0, 0.01, 25.0)
    assert whole == pytest.approx(theta, abs=1e-9)


def test_trajectory_matches_scalar_steps_and_plugged_fraction_scales_heating() -> None:
    lengths = np.array([0.25, 0.25, 0.5, 1.0])
    ambient = np.array([30.0, 29.0, 28.0, 27.0])
    power = np.array([40.0, 0.0, 20.0, 10.0])
    frac = np.array([1.0, 1.0, 0.5, 0.0])
    got = trajectory(MODEL, 35.0, power, lengths, ambient, frac)
    theta = 35.0
    for t in range(4):
        theta = step_temp_c(MODEL, theta, float(power[t] * frac[t]), float(lengths[t]), float(ambient[t]))
        assert got[t] == pytest.approx(theta)


def test_no_cooling_is_pure_heating() -> None:
    model = ThermalModel(45.0, 0.2, 0.0)
    alpha, gain = step_coefficients(0.0, np.array([0.5]))
    assert alpha[0] == 1.0 and gain[0] == 0.5
    assert step_temp_c(model, 30.0, 10.0, 0.5, 0.0) == pytest.approx(31.0)


def test_free_trajectory_relaxes_towards_ambient() -> None:
    temps = free_trajectory(50.0, 0.5, np.full(20, 0.5), np.full(20, 30.0))
    assert (np.diff(temps) < 0).all() and temps[-1] > 30.0


@pytest.mark.parametrize("seed", range(5))
def test_rise_upper_bound_holds_for_random_schedules(seed: int) -> None:
    rng = np.random.default_rng(seed)
    steps = 48
    lengths = np.full(steps, 0.25)
    ambient = rng.uniform(20.0, 35.0, steps)
    top_kw, energy_kwh = 60.0, 120.0
    power = rng.uniform(0.0, top_kw, steps)
    cumulative = np.cumsum(power * lengths)
    power[cumulative > energy_kwh] = 0.0
    temp0 = 32.0
    temps = trajectory(MODEL, temp0, power, lengths, ambient)
    bound = max(temp0, float(ambient.max())) + rise_upper_bound(MODEL, top_kw, energy_kwh, np.cumsum(lengths))
    assert (temps <= bound + 1e-9).all()
