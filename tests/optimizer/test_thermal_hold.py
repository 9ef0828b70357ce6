"""A command that stands longer than the plan's first step (late live ticks) still keeps every battery under its
ceiling: the first-step cap of ``optimizer.thermal_hold`` and the snapshot field that asks for it."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from optimizer.domain import Snapshot, ThermalModel
from optimizer.lp_model import THERMAL_MARGIN_C
from optimizer.plan_check import check_plan
from optimizer.strategies import plan
from optimizer.strategies.base import prepare_tick
from optimizer.strategies.lp import LpStrategy
from optimizer.thermal import step_temp_c
from optimizer.thermal_hold import hold_cap_kw
from tests.optimizer.helpers import NOW, session, site_with, snapshot

# Heats 0.5 °C per kWh: at cp-4's 15 kW (its feeder) an hour is +6.5 °C, so a battery 1.5 °C under its ceiling binds.
THERMAL = ThermalModel(max_temp_c=45.0, heating_c_per_kwh=0.5, cooling_per_h=0.3)
SITE = site_with(control={"step_min": 15, "horizon_h": 12})


@pytest.mark.parametrize(("temp_c", "hold_h"), [(40.0, 0.25), (42.5, 0.5), (44.0, 1.0), (30.0, 2.0)])
def test_the_cap_held_for_the_hold_ends_exactly_at_the_lp_ceiling(temp_c: float, hold_h: float) -> None:
    cap = hold_cap_kw(THERMAL, temp_c, 25.0, hold_h)
    assert cap > 0
    end_c = step_temp_c(THERMAL, temp_c, cap, hold_h, 25.0)
    assert end_c == pytest.approx(THERMAL.max_temp_c - THERMAL_MARGIN_C, abs=1e-9)
    # A longer hold allows less power.
    assert hold_cap_kw(THERMAL, temp_c, 25.0, 2 * hold_h) < cap


def test_no_model_no_cap_and_a_battery_over_its_ceiling_gets_nothing() -> None:
    assert hold_cap_kw(ThermalModel.none(), 60.0, 25.0, 1.0) == math.inf
    assert hold_cap_kw(THERMAL, 47.0, 25.0, 0.25) == 0.0
    assert hold_cap_kw(THERMAL, 30.0, 25.0, 0.0) == math.inf


def test_a_held_first_step_stays_under_the_ceiling_for_the_whole_hold() -> None:
    bus = session("cp-4", soc=0.2, hours=6.0, battery_temp_c=43.5, thermal=THERMAL)
    # The LP with the hold cap alone (``plan_tick``): the cautious first step below is stricter than both.
    lp = LpStrategy()
    one_step = lp.plan_tick(prepare_tick(SITE, snapshot(bus, ambient_c=25.0)))
    held = lp.plan_tick(prepare_tick(SITE, snapshot(bus, ambient_c=25.0, command_hold_s=3600.0)))
    first = one_step.connectors[0].limit_kw
    capped = held.connectors[0].limit_kw
    # One step at the plan's power is safe; the same power held an hour is not, the capped one is.
    assert step_temp_c(THERMAL, 43.5, first, 0.25, 25.0) <= THERMAL.max_temp_c
    assert step_temp_c(THERMAL, 43.5, first, 1.0, 25.0) > THERMAL.max_temp_c
    assert 0.0 < capped < first
    assert step_temp_c(THERMAL, 43.5, capped, 1.0, 25.0) <= THERMAL.max_temp_c - THERMAL_MARGIN_C + 1e-6
    assert held.connectors[0].schedule_kw[0] == capped
    assert check_plan(SITE, snapshot(bus, ambient_c=25.0, command_hold_s=3600.0), held) == []


def test_a_hold_of_one_step_or_less_changes_nothing() -> None:
    bus = session("cp-4", soc=0.2, hours=6.0, battery_temp_c=42.0, thermal=THERMAL)
    cold = session("cp-1", soc=0.2, hours=6.0)  # no thermal model: never capped
    base = plan(SITE, snapshot(bus, cold, ambient_c=25.0), "lp")
    for hold_s in (60.0, 900.0):
        same = plan(SITE, snapshot(bus, cold, ambient_c=25.0, command_hold_s=hold_s), "lp")
        assert [c.limit_kw for c in same.connectors] == [c.limit_kw for c in base.connectors]
    long_hold = plan(SITE, snapshot(bus, cold, ambient_c=25.0, command_hold_s=7200.0), "lp")
    by_charger = {c.charger_id: c.limit_kw for c in long_hold.connectors}
    assert by_charger["cp-1"] == pytest.approx({c.charger_id: c.limit_kw for c in base.connectors}["cp-1"])


@pytest.mark.parametrize("hold_s", [0.0, -5.0, math.nan, math.inf])
def test_a_hold_that_is_not_a_duration_is_refused(hold_s: float) -> None:
    with pytest.raises(ValueError, match="command_hold_s"):
        Snapshot(time=NOW, command_hold_s=hold_s)
    with pytest.raises(ValueError, match="command_hold_s"):
        replace(snapshot(), command_hold_s=hold_s)
