"""The cautious first step (lp): a battery that heats twice as fast as its model says still keeps its ceiling at the
first step's command (``optimizer.strategies.thermal_first_step``)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from optimizer.domain import ThermalModel
from optimizer.strategies.base import prepare_tick
from optimizer.strategies.lp import LpStrategy
from optimizer.strategies.thermal_first_step import FIRST_STEP_HEATING_FACTOR, FIRST_STEP_MARGIN_C, cautious_cap_kw
from optimizer.thermal import step_temp_c
from optimizer.thermal_hold import hold_cap_kw
from tests.optimizer.helpers import session, site_with, snapshot

# Heats 0.5 °C per kWh: at cp-4's 15 kW (its feeder) an hour is +6.5 °C, so a battery 1.5 °C under its ceiling binds.
THERMAL = ThermalModel(max_temp_c=45.0, heating_c_per_kwh=0.5, cooling_per_h=0.3)


def _twice_as_hot(model: ThermalModel) -> ThermalModel:
    return replace(model, heating_c_per_kwh=model.heating_c_per_kwh * FIRST_STEP_HEATING_FACTOR,
                   cooling_per_h=model.cooling_per_h / FIRST_STEP_HEATING_FACTOR)


@pytest.mark.parametrize(("temp_c", "hold_h"), [(40.0, 0.25), (43.0, 0.25), (44.0, 1.0)])
def test_the_cautious_cap_keeps_a_battery_heating_twice_as_fast_under_its_ceiling(temp_c: float, hold_h: float) -> None:
    cap = cautious_cap_kw(THERMAL, temp_c, 25.0, hold_h)
    assert 0 < cap < hold_cap_kw(THERMAL, temp_c, 25.0, hold_h, 0.0)
    end_c = step_temp_c(_twice_as_hot(THERMAL), temp_c, cap, hold_h, 25.0)
    assert end_c == pytest.approx(THERMAL.max_temp_c - FIRST_STEP_MARGIN_C, abs=1e-9)
    assert cautious_cap_kw(ThermalModel.none(), temp_c, 25.0, hold_h) == math.inf
    assert cautious_cap_kw(THERMAL, 46.0, 25.0, 0.25) == 0.0  # over its ceiling: nothing until it has cooled


def test_lp_first_step_keeps_the_ceiling_when_the_battery_heats_twice_as_fast() -> None:
    """One step at the power the LP alone plans (up to its own ceiling, 0.5 °C under) takes a battery that heats
    twice as fast as modelled over the ceiling; the plan's first step does not."""
    site = site_with(control={"step_min": 15, "horizon_h": 12})
    bus = session("cp-4", soc=0.2, hours=6.0, battery_temp_c=42.0, thermal=THERMAL)
    snap = snapshot(bus, ambient_c=25.0)
    lp = LpStrategy()
    unguarded = lp.plan_tick(prepare_tick(site, snap)).connectors[0].limit_kw
    guarded = lp.plan(site, snap).connectors[0].limit_kw
    hot = _twice_as_hot(THERMAL)
    assert step_temp_c(hot, 42.0, unguarded, 0.25, 25.0) > THERMAL.max_temp_c
    assert 0 < guarded < unguarded
    assert step_temp_c(hot, 42.0, guarded, 0.25, 25.0) <= THERMAL.max_temp_c - FIRST_STEP_MARGIN_C + 1e-6
    # Far from its ceiling a battery is not held back, and one without a model never is.
    cool = session("cp-4", soc=0.2, hours=6.0, battery_temp_c=30.0, thermal=THERMAL)
    plain = session("cp-4", soc=0.2, hours=6.0)
    for s in (cool, plain):
        snap = snapshot(s, ambient_c=25.0)
        assert lp.plan(site, snap).connectors[0].limit_kw == lp.plan_tick(prepare_tick(site, snap)).connectors[0].limit_kw
