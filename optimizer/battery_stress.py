"""Battery stress proxies: how hard a charging session works a battery, in three figures a fleet engineer knows.

- ``hours_above_high_soc``: hours the battery sits above ``HIGH_SOC`` (80 %) while plugged in (calendar ageing
  grows with time at high state of charge);
- ``arrhenius_kwh``: energy charged, each kWh weighted by the Arrhenius factor of the battery temperature it was
  charged at, relative to 25 °C (cycle ageing roughly doubles every 10-15 °C; ``ACTIVATION_EV`` sets the slope);
  equal to the energy when everything is charged at 25 °C;
- ``peak_c_rate``: the highest charging power divided by the battery capacity (1/h).

Pure functions of a power schedule, a SoC start and a temperature trajectory; the plan, the API and the benchmark
all report them from here. The LP's optional stress terms (``lp_stress``) use the same constants.
"""

from __future__ import annotations

import math

import numpy as np

from optimizer.domain import BatteryStress
from optimizer.horizon import FloatArray

HIGH_SOC = 0.8
REFERENCE_TEMP_C = 25.0
ACTIVATION_EV = 0.5  # ≈ 48 kJ/mol: a factor ≈ 2 from 25 to 35 °C, typical of published Li-ion cycle-ageing fits
BOLTZMANN_EV_PER_K = 8.617e-5
COLD_TEMP_C = 10.0  # below this, fast charging risks lithium plating: counted as stress too
COLD_FACTOR_PER_C = 0.1  # +10 % weight per °C below COLD_TEMP_C


def temperature_factor(temp_c: FloatArray | float) -> FloatArray:
    """Stress weight of charging one kWh at ``temp_c``: Arrhenius above 25 °C (1 at 25 °C), and a linear plating
    penalty below ``COLD_TEMP_C``; never below 1/4 (a cool battery still ages)."""
    kelvin = np.asarray(temp_c, dtype=np.float64) + 273.15
    arrhenius = np.exp(ACTIVATION_EV / BOLTZMANN_EV_PER_K * (1.0 / (REFERENCE_TEMP_C + 273.15) - 1.0 / kelvin))
    cold = 1.0 + COLD_FACTOR_PER_C * np.maximum(COLD_TEMP_C - np.asarray(temp_c, dtype=np.float64), 0.0)
    return np.asarray(np.maximum(arrhenius, 0.25) * cold, dtype=np.float64)


def session_stress(
    power_kw: FloatArray,
    plugged_h: FloatArray,
    soc0: float,
    battery_kwh: float,
    efficiency: float,
    temps_c: FloatArray | None,
    temp0_c: float,
) -> BatteryStress:
    """Stress of one session under ``power_kw`` per step (grid side) plugged ``plugged_h`` hours of each step.
    ``temps_c`` is the temperature at the end of each step (None: no model, taken as ``temp0_c`` throughout)."""
    energy_kwh = np.maximum(power_kw, 0.0) * plugged_h
    if battery_kwh <= 0 or energy_kwh.size == 0:
        return BatteryStress(0.0, 0.0, 0.0)
    soc_end = soc0 + np.cumsum(energy_kwh) * efficiency / battery_kwh
    soc_start = np.concatenate(([soc0], soc_end[:-1]))
    # Share of each step spent above the threshold, with SoC linear inside the step.
    rise = soc_end - soc_start
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing = np.where(rise > 1e-12, (soc_end - HIGH_SOC) / rise, 0.0)
    share = np.where(soc_start >= HIGH_SOC, 1.0, np.where(soc_end > HIGH_SOC, np.clip(crossing, 0.0, 1.0), 0.0))
    temps = temps_c if temps_c is not None and temps_c.size == energy_kwh.size else np.full(energy_kwh.size, temp0_c)
    # Each step's energy at its mean temperature (start and end of the step).
    mean_temp = (np.concatenate(([temp0_c], temps[:-1])) + temps) / 2.0
    charging = plugged_h > 0
    peak = float((np.maximum(power_kw, 0.0)[charging]).max(initial=0.0)) / battery_kwh
    return BatteryStress(
        hours_above_high_soc=float((share * plugged_h).sum()),
        arrhenius_kwh=float((energy_kwh * temperature_factor(mean_temp)).sum()),
        peak_c_rate=peak if math.isfinite(peak) else 0.0,
    )


def schedules_stress(
    power_kw: FloatArray,
    plugged_h: FloatArray,
    soc0: FloatArray,
    battery_kwh: FloatArray,
    efficiency: FloatArray,
    temps_c: FloatArray,
    temp0_c: FloatArray,
) -> list[BatteryStress]:
    """``session_stress`` for many sessions at once (sessions × steps); ``temps_c`` holds each session's
    temperature at the end of each step (its ``temp0_c`` throughout where it has no model)."""
    n, steps = power_kw.shape
    if n == 0:
        return []
    if steps == 0:
        return [BatteryStress(0.0, 0.0, 0.0)] * n
    drawn_kw = np.maximum(power_kw, 0.0)
    energy_kwh = drawn_kw * plugged_h
    capacity = np.where(battery_kwh > 0, battery_kwh, 1.0).reshape(n, 1)
    soc_end = soc0.reshape(n, 1) + np.cumsum(energy_kwh, axis=1) * efficiency.reshape(n, 1) / capacity
    soc_start = np.concatenate((soc0.reshape(n, 1), soc_end[:, :-1]), axis=1)
    rise = soc_end - soc_start
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing = np.where(rise > 1e-12, (soc_end - HIGH_SOC) / rise, 0.0)
    share = np.where(soc_start >= HIGH_SOC, 1.0, np.where(soc_end > HIGH_SOC, np.clip(crossing, 0.0, 1.0), 0.0))
    mean_temp = (np.concatenate((temp0_c.reshape(n, 1), temps_c[:, :-1]), axis=1) + temps_c) / 2.0
    hours = (share * plugged_h).sum(axis=1)
    arrhenius = (energy_kwh * temperature_factor(mean_temp)).sum(axis=1)
    peak = np.where(plugged_h > 0, drawn_kw, 0.0).max(axis=1) / capacity.ravel()
    return [BatteryStress(float(hours[i]), float(arrhenius[i]), float(peak[i]) if math.isfinite(peak[i]) else 0.0)
            if battery_kwh[i] > 0 else BatteryStress(0.0, 0.0, 0.0) for i in range(n)]
