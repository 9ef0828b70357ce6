"""Every metric on tiny cases computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.metrics import (
    demand_charge,
    energy_cost,
    energy_delivered_pct,
    jain_index,
    limit_violations,
    peak_kw,
    sessions_met_pct,
    temp_violation_c_min,
    tick_times,
)


def a(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)


def test_energy_delivered_is_capped_per_session() -> None:
    # requested 10 + 20 = 30; delivered min(12,10) + 5 = 15 → 50 %
    assert energy_delivered_pct(a(10, 20), a(12, 5)) == pytest.approx(50.0)
    assert energy_delivered_pct(a(), a()) == 100.0


def test_sessions_met_uses_a_tenth_of_a_kwh() -> None:
    # missing: 0.05 (met), 0.15 (not met), 0 (met), 3 (not met) → 2 of 4
    assert sessions_met_pct(a(10, 10, 5, 8), a(9.95, 9.85, 5, 5)) == pytest.approx(50.0)


def test_peak_is_the_highest_step() -> None:
    assert peak_kw(a(3, 9.5, 7)) == 9.5
    assert peak_kw(a()) == 0.0


def test_limit_violations_count_steps_and_energy_over() -> None:
    # 5-minute steps; over by 2 kW and 4 kW in two steps → 6 kW × 1/12 h = 0.5 kWh
    result = limit_violations(a(10, 12, 9, 14), a(10, 10, 10, 10), 1 / 12)
    assert result.count == 2
    assert result.kwh == pytest.approx(0.5)


def test_limit_violations_per_row_broadcast() -> None:
    load = np.array([[5.0, 7.0], [1.0, 1.0]])
    limit = np.array([[6.0], [0.5]])  # one limit per row
    result = limit_violations(load, limit, 0.5)
    assert result.count == 3  # row 0 step 1, row 1 both steps
    assert result.kwh == pytest.approx((1.0 + 0.5 + 0.5) * 0.5)


def test_temperature_violation_in_degree_minutes() -> None:
    # session 0: ceiling 45, end temperatures 44, 46 (5 min plugged), 47 (2.5 min plugged)
    #   → 1 °C × 5 min + 2 °C × 2.5 min = 10 °C·min; session 1: no model (inf), NaN when unplugged.
    temps = np.array([[44.0, 46.0, 47.0], [80.0, np.nan, np.nan]])
    plugged_h = np.array([[5 / 60, 5 / 60, 2.5 / 60], [5 / 60, 0.0, 0.0]])
    assert temp_violation_c_min(temps, plugged_h, a(45.0, math.inf)) == pytest.approx(10.0)


def test_cost_and_demand_charge() -> None:
    # two half-hour steps: 10 kW at 0.2 and 20 kW at 0.1 → 1.0 + 1.0
    assert energy_cost(a(10, 20), a(0.2, 0.1), 0.5) == pytest.approx(2.0)
    assert demand_charge(20.0, 8.0) == 160.0


def test_jain_index() -> None:
    assert jain_index(a(10, 10), a(5, 5)) == pytest.approx(1.0)
    # shares 1 and 0 → (1)² / (2 × 1) = 0.5; a session asking nothing is left out
    assert jain_index(a(10, 10, 0), a(10, 0, 0)) == pytest.approx(0.5)
    # shares 1 (capped), 0.5 → 1.5² / (2 × 1.25) = 0.9
    assert jain_index(a(10, 10), a(30, 5)) == pytest.approx(0.9)
    assert jain_index(a(10), a(0)) == 1.0


def test_tick_percentiles() -> None:
    times = tick_times([1.0, 2.0, 3.0, 4.0])
    assert (times.p50_ms, times.max_ms) == (2.5, 4.0)
    assert times.p95_ms == pytest.approx(3.85)
    assert tick_times([]).max_ms == 0.0
