"""The battery thermal model, written once: dθ/dt = heating·P − cooling·(θ − θ_ambient).

``heating_c_per_kwh`` (a) is the rise per kWh drawn at the grid side with no cooling, ``cooling_per_h`` (b) the
rate at which the pack relaxes towards ambient. Over a step of length Δ with constant power and ambient the
model integrates exactly to

    θ' = θa + α (θ − θa) + a · g · P,   α = exp(−b Δ),   g = (1 − α) / b   (g = Δ when b = 0).

The LP's temperature rows, the plan checker, the strategies' trajectories, the simulated plant and the fit
(``optimizer.thermal_fit``) all use these functions, so they cannot drift apart. ``rise_upper_bound`` is the
rigorous bound the LP uses to leave out rows that cannot bind.
"""

from __future__ import annotations

import math

import numpy as np

from optimizer.horizon import FloatArray
from optimizer.site_model import ThermalModel


def step_coefficients(cooling_per_h: float, length_h: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(α, g) per step of ``length_h`` hours: θ' = θa + α(θ − θa) + a·g·P."""
    if cooling_per_h <= 0:
        return np.ones_like(length_h), np.asarray(length_h, dtype=np.float64).copy()
    alpha = np.exp(-cooling_per_h * length_h)
    return alpha, (1.0 - alpha) / cooling_per_h


def step_temp_c(model: ThermalModel, temp_c: float, power_kw: float, duration_h: float, ambient_c: float) -> float:
    """The temperature after ``duration_h`` at constant ``power_kw`` and ``ambient_c`` (exact)."""
    if model.cooling_per_h > 0:
        alpha = math.exp(-model.cooling_per_h * duration_h)
        gain = (1.0 - alpha) / model.cooling_per_h
    else:
        alpha, gain = 1.0, duration_h
    return ambient_c + alpha * (temp_c - ambient_c) + model.heating_c_per_kwh * gain * power_kw


def trajectory(
    model: ThermalModel,
    temp0_c: float,
    power_kw: FloatArray,
    length_h: FloatArray,
    ambient_c: FloatArray,
    plugged_fraction: FloatArray | None = None,
) -> FloatArray:
    """Temperature at the end of each step under ``power_kw`` (the power flows for ``plugged_fraction`` of each
    step, 1 when None: a vehicle that leaves mid-step heats only while plugged)."""
    alpha, gain = step_coefficients(model.cooling_per_h, length_h)
    fraction = plugged_fraction if plugged_fraction is not None else np.ones(length_h.size)
    heat = model.heating_c_per_kwh * gain * fraction * power_kw
    out = np.empty(length_h.size)
    theta = temp0_c
    for t in range(length_h.size):
        theta = ambient_c[t] + alpha[t] * (theta - ambient_c[t]) + heat[t]
        out[t] = theta
    return out


def trajectories(
    models: list[ThermalModel],
    temp0_c: FloatArray,
    power_kw: FloatArray,
    length_h: FloatArray,
    ambient_c: FloatArray,
    plugged_fraction: FloatArray,
) -> FloatArray:
    """``trajectory`` for many batteries at once (rows of ``power_kw`` and ``plugged_fraction``, sessions × steps),
    the same arithmetic step by step: a Python loop over 1,000 sessions cost more than the LP's warm solve."""
    n, steps = power_kw.shape
    cooling = np.array([m.cooling_per_h for m in models], dtype=np.float64).reshape(n, 1)
    heating = np.array([m.heating_c_per_kwh for m in models], dtype=np.float64).reshape(n, 1)
    length = np.broadcast_to(length_h.reshape(1, steps), (n, steps))
    cools = (cooling > 0).ravel()
    alpha = np.ones((n, steps))
    gain = np.array(length, dtype=np.float64)
    alpha[cools] = np.exp(-cooling[cools] * length[cools])
    gain[cools] = (1.0 - alpha[cools]) / cooling[cools]
    heat = heating * gain * plugged_fraction * power_kw
    out = np.empty((n, steps))
    theta = np.asarray(temp0_c, dtype=np.float64).copy()
    for t in range(steps):
        theta = ambient_c[t] + alpha[:, t] * (theta - ambient_c[t]) + heat[:, t]
        out[:, t] = theta
    return out


def free_trajectory(temp0_c: float, cooling_per_h: float, length_h: FloatArray, ambient_c: FloatArray) -> FloatArray:
    """Temperature at the end of each step with no charging."""
    model = ThermalModel(math.inf, 0.0, cooling_per_h)
    return trajectory(model, temp0_c, np.zeros(length_h.size), length_h, ambient_c)


def rise_upper_bound(model: ThermalModel, top_kw: float, energy_kwh: float, elapsed_h: FloatArray) -> FloatArray:
    """A rigorous bound on θ(τ) − max(θ0, warmest ambient) after ``elapsed_h`` for any schedule drawing at most
    ``top_kw`` and ``energy_kwh`` in all: θ' = a·p − b(θ − θa) ≤ a·p − b(θ − A), and the worst schedule puts all its
    energy last. Cooling is what makes it tight; a·E alone kept rows for batteries that cannot bind."""
    if top_kw <= 0:
        return np.zeros_like(elapsed_h)
    heat_time_h = np.minimum(energy_kwh / top_kw, elapsed_h)
    if model.cooling_per_h > 0:
        b = model.cooling_per_h
        return np.asarray(model.heating_c_per_kwh * top_kw / b * (1.0 - np.exp(-b * heat_time_h)), dtype=np.float64)
    return np.asarray(model.heating_c_per_kwh * top_kw * heat_time_h, dtype=np.float64)


def steady_power_kw(model: ThermalModel, temp_c: float, ambient_c: float) -> float:
    """The power that holds the battery at ``temp_c`` for ever at ``ambient_c`` (∞ with no heating model)."""
    if model.heating_c_per_kwh <= 0:
        return math.inf
    return max(0.0, model.cooling_per_h * (temp_c - ambient_c) / model.heating_c_per_kwh)
