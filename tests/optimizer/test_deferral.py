"""Later energy that vehicles plugging in could claim (optimizer/strategies/deferral.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from optimizer.domain import PlanStatus, PlugInSlot, ThermalModel
from optimizer.plan_check import check_plan
from optimizer.strategies.base import plugged_hours, prepare_tick
from optimizer.strategies.commands import CommandInput, commands_for
from optimizer.strategies.deferral import certain_power_kw, certain_share, pull_forward_cap_kw
from tests.optimizer.helpers import session, site_with, snapshot

# cp-1 and cp-3 are free: vehicles plugging in there may draw 11 and 22 kW.
FREE = (PlugInSlot("cp-1", 11.0, 3), PlugInSlot("cp-3", 22.0, 3))


def _deferred_plan(snap_slots: tuple[PlugInSlot, ...]) -> tuple[np.ndarray, CommandInput]:
    """A DC vehicle whose whole need (and margin) the plan puts into the steps after the first, at up to 14 kW (its
    feeder allows 15 kW)."""
    site = site_with()
    snap = snapshot(session("cp-4", soc=0.5), plug_in=snap_slots)
    tick = prepare_tick(site, snap)
    s = tick.sessions[0]
    hours = plugged_hours(tick)[0]
    power = np.zeros((1, tick.horizon.steps))
    grid_kwh = (s.need_kwh + s.extra_kwh) / s.efficiency
    steps = int(np.ceil(grid_kwh / (14.0 * hours[1])))
    power[0, 1 : 1 + steps] = grid_kwh / float(hours[1 : 1 + steps].sum())
    return power, CommandInput(tick, "test", power, PlanStatus.OPTIMAL)


def test_without_free_connectors_every_later_step_is_certain() -> None:
    power, request = _deferred_plan(())
    assert certain_share(request.tick, power).tolist() == [1.0] * power.shape[1]
    assert np.array_equal(certain_power_kw(request.tick, power), power)


def test_free_connectors_that_the_site_cannot_fit_besides_the_plan_make_its_later_energy_uncertain() -> None:
    power, request = _deferred_plan(FREE)
    tick = request.tick
    share = certain_share(tick, power)
    assert share[0] == 1.0
    planned_kw = power[0, 1]
    spare_kw = float(tick.ev_capacity_kw[1]) - planned_kw
    # The arrivals may take 33 kW; what the site has spare besides the plan it takes first, the rest from the plan.
    assert share[1] == pytest.approx(1.0 - min(1.0, max(0.0, 33.0 - spare_kw) / planned_kw))
    assert share[1] < 1.0


def test_a_plan_that_leaves_room_for_every_free_connector_is_certain() -> None:
    power, request = _deferred_plan((PlugInSlot("cp-3", 1.0, 3),))
    assert (certain_share(request.tick, power) == 1.0).all()


def test_the_fill_pulls_uncertain_later_energy_into_the_first_step() -> None:
    _, kept = _deferred_plan(())
    _, pulled = _deferred_plan(FREE)
    assert commands_for(kept).connectors[0].limit_kw == 0.0  # the deferral is safe: the plan is dispatched as it is
    plan = commands_for(pulled)
    assert plan.connectors[0].limit_kw > 0.0
    assert check_plan(pulled.tick.site, pulled.tick.snapshot, plan, limits=True, temperature=False) == []


def test_odd_plans_give_shares_between_zero_and_one() -> None:
    _, request = _deferred_plan(FREE)
    tick = request.tick
    steps = tick.horizon.steps
    assert certain_share(tick, np.zeros((0, steps))).tolist() == [1.0] * steps  # no sessions
    assert certain_power_kw(tick, np.zeros((0, steps))).shape == (0, steps)
    negative = np.full((1, steps), -5.0)  # a strategy's negative power plans nothing
    assert (certain_share(tick, negative) == 1.0).all()
    huge = np.full((1, steps), 1e9)
    share = certain_share(tick, huge)
    assert ((share >= 0.0) & (share <= 1.0)).all() and not np.isnan(share).any()


def test_vehicles_whose_temperature_is_modelled_keep_their_plan() -> None:
    site = site_with()
    thermal = ThermalModel(max_temp_c=45.0, heating_c_per_kwh=0.1, cooling_per_h=0.5)
    snap = snapshot(session("cp-4", soc=0.5, thermal=thermal, battery_temp_c=30.0), plug_in=FREE)
    tick = prepare_tick(site, snap)
    power = np.zeros((1, tick.horizon.steps))
    power[0, 1:5] = 14.0
    assert certain_share(tick, power)[1] < 1.0  # the site's later room is at risk ...
    assert np.array_equal(certain_power_kw(tick, power), power)  # ... but the LP may be letting this battery cool


def test_where_the_peak_is_priced_the_pull_forward_stays_under_the_plans_peak() -> None:
    power, request = _deferred_plan(FREE)
    assert pull_forward_cap_kw(request.tick, power) is None  # the test site prices no peak
    site = site_with(control={"step_min": 15, "horizon_h": 12, "objective": {"peak": 1.0}})
    tick = prepare_tick(site, dataclasses.replace(request.tick.snapshot, peak_so_far_kw=9.0))
    cap = pull_forward_cap_kw(tick, power)
    base_kw = float(tick.series.base_load_kw[0])
    planned_peak_kw = float(np.max(power.sum(axis=0) + tick.series.base_load_kw))
    assert cap == pytest.approx(max(planned_peak_kw, 9.0) - base_kw)
    plan = commands_for(CommandInput(tick, "test", power, PlanStatus.OPTIMAL))
    assert sum(c.limit_kw for c in plan.connectors) <= cap + 1e-6
