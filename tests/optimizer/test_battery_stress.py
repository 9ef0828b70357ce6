"""Battery stress: the proxies on hand-computed cases, and the optional LP terms that lower them without losing
energy (off by default: no extra rows or columns)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from optimizer.battery_stress import HIGH_SOC, session_stress, temperature_factor
from optimizer.domain import Objective, ThermalModel
from optimizer.lp_model import build_lp, session_arrays
from optimizer.lp_stress import reserve_h, temperature_cost
from optimizer.strategies import get_strategy
from optimizer.strategies.base import prepare_tick
from tests.optimizer.helpers import session, site_with, snapshot

HOT = ThermalModel(max_temp_c=60.0, heating_c_per_kwh=0.01, cooling_per_h=0.5)


def test_hours_above_80_percent_count_the_part_of_a_step_past_the_threshold() -> None:
    # 60 kWh battery at 70 %: 12 kWh in the first hour (to 90 %, crossing 80 % half-way), then an idle hour.
    stress = session_stress(np.array([12.0, 0.0]), np.array([1.0, 1.0]), 0.7, 60.0, 1.0, None, 25.0)
    assert stress.hours_above_high_soc == pytest.approx(0.5 + 1.0)
    assert stress.arrhenius_kwh == pytest.approx(12.0)  # at 25 °C the factor is 1
    assert stress.peak_c_rate == pytest.approx(12.0 / 60.0)


def test_temperature_factor_doubles_about_every_ten_degrees_and_penalises_cold() -> None:
    factors = temperature_factor(np.array([25.0, 35.0, 5.0]))
    assert factors[0] == pytest.approx(1.0)
    assert 1.7 < factors[1] < 2.2
    assert factors[2] > temperature_factor(10.0)  # colder than 10 °C costs more than 10 °C


def test_plan_reports_stress_per_connector() -> None:
    site = site_with()
    plan = get_strategy("lp").plan(site, snapshot(session("cp-4", soc=0.5, hours=4.0, target_soc=0.9)))
    stress = plan.connectors[0].stress
    assert stress is not None and stress.peak_c_rate > 0 and stress.arrhenius_kwh > 0


def _site(high_soc: float = 0.0, temperature: float = 0.0):  # type: ignore[no-untyped-def]
    site = site_with()
    objective = dataclasses.replace(Objective(), stress_high_soc=high_soc, stress_temperature=temperature)
    return dataclasses.replace(site, control=dataclasses.replace(site.control, objective=objective))


def test_weights_off_add_nothing_to_the_lp() -> None:
    snap = snapshot(session("cp-4", soc=0.5, hours=6.0, target_soc=0.95))
    sizes = []
    for site in (site_with(), _site(0.0, 0.0)):
        tick = prepare_tick(site, snap)
        lp = build_lp(tick.sessions, tick.horizon, tick.series, tick.limits, site.control.objective,
                      tick.uncontrolled_kw, 0.0, session_arrays(tick.sessions, tick.horizon, tick.series))
        sizes.append((lp.columns, lp.matrix.shape[0], lp.matrix.nnz))
        assert not any(g.kind == "stress_high_soc" for g in lp.groups)
    assert sizes[0] == sizes[1]


def test_high_soc_weight_defers_the_top_of_the_charge_without_losing_energy() -> None:
    # 60 kWh at 50 % to 95 % in 6 h on a 15 kW feeder, no taper: 18 kWh to 80 %, then 9 kWh (36 min at full power).
    # Unstressed, when the top is charged is left to chance; stressed, it is charged at the end of the stay.
    snap = snapshot(session("cp-4", soc=0.5, hours=6.0, target_soc=0.95, knee_soc=1.0))
    plain = get_strategy("lp").plan(_site(), snap).connectors[0]
    gentle = get_strategy("lp").plan(_site(high_soc=0.01), snap).connectors[0]
    assert gentle.energy_planned_kwh == pytest.approx(plain.energy_planned_kwh, rel=1e-3)
    # the need (27 kWh), plus at most the margin of its SoC reading (1 % resolution of 60 kWh: optimizer/needs.py)
    assert 27.0 * (1 - 1e-3) <= gentle.energy_planned_kwh <= 27.0 + 0.6 + 1e-3
    assert gentle.stress is not None
    # the last steps of the horizon are an hour long: the top lands in the last one
    assert gentle.stress.hours_above_high_soc <= 1.0 + 1e-6
    assert gentle.expected_soc_at_departure > HIGH_SOC  # type: ignore[operator]


def test_temperature_weight_moves_charging_to_a_cooler_battery() -> None:
    # A hot battery (45 °C, cooling towards 20 °C): the stressed plan waits for it to cool, delivering the same.
    snap = snapshot(session("cp-4", soc=0.3, hours=8.0, target_soc=0.6, battery_temp_c=45.0, thermal=HOT),
                    ambient_c=20.0)
    plain = get_strategy("lp").plan(_site(), snap).connectors[0]
    gentle = get_strategy("lp").plan(_site(temperature=0.05), snap).connectors[0]
    assert gentle.energy_planned_kwh == pytest.approx(plain.energy_planned_kwh, rel=1e-3)
    assert gentle.stress is not None and plain.stress is not None
    assert gentle.stress.arrhenius_kwh < plain.stress.arrhenius_kwh
    assert gentle.limit_kw < plain.limit_kw


def test_temperature_weight_leaves_the_end_of_the_stay_free_for_catching_up() -> None:
    # The battery keeps cooling all stay, so without the reserve the coolest, cheapest hours would be the last ones.
    snap = snapshot(session("cp-4", soc=0.3, hours=8.0, target_soc=0.6, battery_temp_c=45.0, thermal=HOT),
                    ambient_c=20.0)
    tick = prepare_tick(_site(temperature=0.05), snap)
    arrays = session_arrays(tick.sessions, tick.horizon, tick.series)
    energy_coef = arrays.efficiency.reshape(-1, 1) * arrays.energy_h
    cost = temperature_cost(tick.sessions, tick.horizon, tick.series, energy_coef, 0.05)[0]
    ends_h = tick.horizon.start_h + tick.horizon.length_h
    reserve = ends_h > 8.0 - reserve_h(8.0)
    assert reserve_h(8.0) == 2.0 and reserve_h(2.0) == 1.0  # a quarter of the stay, at least an hour
    stay = ends_h <= 8.0
    assert cost[reserve].min() == pytest.approx(cost[stay].max())  # never a reason to defer into the reserve
    assert cost[~reserve & stay][-1] < cost[stay].max()  # before it, cooler hours still cost less
    gentle = get_strategy("lp").plan(_site(temperature=0.05), snap).connectors[0]
    schedule = np.array(gentle.schedule_kw)
    assert schedule[reserve & stay].sum() == pytest.approx(0.0, abs=1e-6)
