"""The thermal fit: recovers known coefficients from noisy data, refuses a poor fit, and is never fooled by garbage."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optimizer.domain import ThermalModel
from optimizer.thermal import step_temp_c
from optimizer.thermal_fit import (
    FitSettings,
    ModelSource,
    ThermalFit,
    ThermalObservation,
    choose_model,
    fit_all,
    update,
)

CONFIGURED = ThermalModel(max_temp_c=45.0, heating_c_per_kwh=0.06, cooling_per_h=0.5)
TRUE = ThermalModel(max_temp_c=45.0, heating_c_per_kwh=0.12, cooling_per_h=0.25)


def synthetic(model: ThermalModel, samples: int, *, noise_c: float, seed: int = 1, step_h: float = 1 / 12,
              substeps: int = 10) -> list[ThermalObservation]:
    """Readings every ``step_h`` of a battery charged on and off at varying power and ambient, integrated finer
    than the sampling so the fit is not graded on its own discretisation."""
    rng = np.random.default_rng(seed)
    temp = 35.0
    measured = temp + rng.normal(0, noise_c)
    out = []
    for k in range(samples):
        power = float(rng.choice([0.0, 40.0, 90.0, 150.0])) if k % 7 else 0.0
        ambient = 30.0 + 5.0 * math.sin(k / 20.0)
        for _ in range(substeps):
            temp = step_temp_c(model, temp, power, step_h / substeps, ambient)
        reading = temp + float(rng.normal(0, noise_c))
        out.append(ThermalObservation(step_h, power, ambient, measured, reading))
        measured = reading
    return out


@pytest.mark.parametrize("noise_c", [0.05, 0.1, 0.3])
def test_fit_recovers_known_coefficients_from_noisy_data(noise_c: float) -> None:
    settings = FitSettings()
    fit = fit_all(synthetic(TRUE, 300, noise_c=noise_c), CONFIGURED, settings)
    assert fit.heating_c_per_kwh == pytest.approx(TRUE.heating_c_per_kwh, rel=0.08)
    assert fit.cooling_per_h == pytest.approx(TRUE.cooling_per_h, rel=0.25)
    assert fit.is_trusted(CONFIGURED, settings)
    assert fit.confidence(settings) > 0.9


def test_cautious_model_brackets_the_truth_on_the_safe_side() -> None:
    settings = FitSettings()
    fit = fit_all(synthetic(TRUE, 40, noise_c=0.1), CONFIGURED, settings)
    cautious = fit.cautious_model(CONFIGURED, settings)
    assert cautious.heating_c_per_kwh >= fit.heating_c_per_kwh
    assert cautious.cooling_per_h <= fit.cooling_per_h
    assert cautious.max_temp_c == CONFIGURED.max_temp_c


def test_fit_of_a_correct_configuration_stays_close_and_is_not_preferred_without_gain() -> None:
    settings = FitSettings()
    fit = fit_all(synthetic(CONFIGURED, 200, noise_c=0.1), CONFIGURED, settings)
    assert fit.heating_c_per_kwh == pytest.approx(CONFIGURED.heating_c_per_kwh, rel=0.1)
    # The configured model is the truth: the data do not contradict it.
    assert not fit.contradicts(CONFIGURED, settings)
    assert choose_model(CONFIGURED, fit, None, settings).source == ModelSource.CONFIGURED


def test_poor_fit_is_refused_too_few_samples() -> None:
    settings = FitSettings()
    fit = fit_all(synthetic(TRUE, 2, noise_c=0.1), CONFIGURED, settings)
    assert not fit.is_trusted(CONFIGURED, settings)
    assert choose_model(CONFIGURED, fit, None, settings).model == CONFIGURED


def test_poor_fit_is_refused_without_heating_data() -> None:
    """Only cooling seen: the heating coefficient is not identifiable, whatever the cooling fit says."""
    settings = FitSettings()
    idle = [ThermalObservation(o.duration_h, 0.0, o.ambient_c, o.temp_start_c, o.temp_end_c)
            for o in synthetic(TRUE, 100, noise_c=0.1)]
    fit = fit_all(idle, CONFIGURED, settings)
    assert fit.heated_kwh == 0.0
    assert not fit.is_trusted(CONFIGURED, settings)


def test_poor_fit_is_refused_when_readings_are_mostly_noise() -> None:
    settings = FitSettings()
    noisy = synthetic(TRUE, 12, noise_c=3.0, seed=4)
    fit = fit_all(noisy, CONFIGURED, settings)
    assert fit.heating_sd(settings) > settings.max_relative_error * max(fit.heating_c_per_kwh, 1e-9) \
        or not fit.predicts_better(settings)
    assert choose_model(CONFIGURED, fit, None, settings).source == ModelSource.CONFIGURED


def test_fleet_fit_is_used_when_the_vehicle_has_none() -> None:
    settings = FitSettings()
    fleet = fit_all(synthetic(TRUE, 60, noise_c=0.1), CONFIGURED, settings)
    chosen = choose_model(CONFIGURED, None, fleet, settings)
    assert chosen.source == ModelSource.FLEET
    assert chosen.model.heating_c_per_kwh > CONFIGURED.heating_c_per_kwh


def test_estimates_stay_inside_physical_bounds() -> None:
    settings = FitSettings(heating_max_c_per_kwh=0.5, cooling_max_per_h=1.0)
    # A battery that seems to cool while charging and heat while idle: the fit must not go negative or explode.
    weird = [ThermalObservation(1 / 12, 100.0 if k % 2 else 0.0, 20.0, 40.0, 30.0 if k % 2 else 60.0) for k in range(50)]
    fit = fit_all(weird, CONFIGURED, settings)
    assert 0.0 <= fit.heating_c_per_kwh <= 0.5
    assert 0.0 <= fit.cooling_per_h <= 1.0


@pytest.mark.parametrize(
    "garbage",
    [
        ThermalObservation(math.nan, 10.0, 20.0, 30.0, 31.0),
        ThermalObservation(1 / 12, math.inf, 20.0, 30.0, 31.0),
        ThermalObservation(1 / 12, -5.0, 20.0, 30.0, 31.0),
        ThermalObservation(0.0, 10.0, 20.0, 30.0, 31.0),
        ThermalObservation(3.0, 10.0, 20.0, 30.0, 31.0),  # too long to take power and ambient as constant
        ThermalObservation(1 / 12, 10.0, 20.0, 30.0, 400.0),
        ThermalObservation(1 / 12, 10.0, 95.0, 30.0, 31.0),
    ],
)
def test_garbage_observation_is_ignored(garbage: ThermalObservation) -> None:
    settings = FitSettings()
    start = ThermalFit.start(CONFIGURED, settings)
    assert update(start, garbage, CONFIGURED, settings) == start


def test_no_model_configured_means_no_fit_used() -> None:
    settings = FitSettings()
    fit = fit_all(synthetic(TRUE, 60, noise_c=0.1), CONFIGURED, settings)
    assert choose_model(ThermalModel.none(), fit, fit, settings).model == ThermalModel.none()
