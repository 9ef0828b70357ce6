"""Crowded departures (optimizer/strategies/deferral.py, reserve_shortfall; commands.keep_departure_reserve): what
the vehicles leaving by a departure still need must fit in 1 − DEPARTURE_RESERVE_SHARE of the capacity they can
use before it, or the difference is given now from capacity no plan wanted."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from optimizer.domain import PlanStatus, SessionState, ThermalModel
from optimizer.plan_check import check_plan
from optimizer.strategies.base import Tick, plugged_hours, prepare_tick
from optimizer.strategies.commands import CommandInput, commands_for
from optimizer.strategies.deferral import DEPARTURE_RESERVE_SHARE, reserve_shortfall
from tests.optimizer.helpers import BASE_SITE, session, site_with, snapshot

SITE_KW = 60.0


def _two_dc_site(**control: Any) -> Any:
    """Two 50 kW DC chargers behind a 60 kW connection with no other load: the site, not a vehicle, is the limit."""
    return site_with(
        site={**BASE_SITE["site"], "grid": {"import_limit_kw": SITE_KW}, "base_load": {"kw": 0}, "circuits": []},
        chargers=[{"id": "dc-1", "dc": True, "max_power_kw": 50}, {"id": "dc-2", "dc": True, "max_power_kw": 50}],
        control={"step_min": 15, "horizon_h": 12, **control},
    )


def _deferred(*sessions: SessionState, **control: Any) -> tuple[Tick, np.ndarray]:
    """The tick and a plan that leaves the first step empty and delivers every need and margin as late as the site
    allows (what an LP does when the last hours are the cheapest)."""
    tick = prepare_tick(_two_dc_site(**control), snapshot(*sessions))
    hours = plugged_hours(tick)
    power = np.zeros((len(tick.sessions), tick.horizon.steps))
    free_kw = tick.ev_capacity_kw.copy()
    free_kw[0] = 0.0
    for i in sorted(range(len(tick.sessions)), key=lambda i: -tick.sessions[i].departure_h):
        s = tick.sessions[i]
        left_kwh = (s.need_kwh + s.margin_kwh) / s.efficiency
        for t in range(tick.horizon.steps - 1, 0, -1):
            if hours[i, t] <= 0 or left_kwh <= 0:
                continue
            kw = min(free_kw[t], s.max_kw, left_kwh / hours[i, t])
            power[i, t] = kw
            free_kw[t] -= kw
            left_kwh -= kw * hours[i, t]
    return tick, power


def _shortfall(tick: Tick, limits_kw: np.ndarray | None = None) -> Any:
    n = len(tick.sessions)
    rate = np.array([s.max_kw for s in tick.sessions], dtype=np.float64)
    return reserve_shortfall(tick, np.zeros(n) if limits_kw is None else limits_kw, plugged_hours(tick), rate)


def test_a_crowded_departure_is_short_by_what_leaves_too_little_of_the_later_capacity() -> None:
    tick, _ = _deferred(session("dc-1", soc=0.2, hours=1.5), session("dc-2", soc=0.2, hours=1.5))
    need_kwh = sum(s.need_kwh + s.margin_kwh for s in tick.sessions)  # efficiency 1 on these chargers
    later_kwh = SITE_KW * (1.5 - 0.25)  # both together could draw 100 kW: the site's 60 kW is the limit
    shortfall = _shortfall(tick)
    expected_kw = (need_kwh - (1.0 - DEPARTURE_RESERVE_SHARE) * later_kwh) / 0.25
    assert expected_kw > 0  # the need fits in the capacity (73.2 of 75 kWh) but not with the reserve
    assert shortfall.power_kw == pytest.approx(expected_kw)
    assert shortfall.leaving.tolist() == [True, True]
    # What the first step already commands counts: given the shortfall now, the departure has its reserve.
    assert _shortfall(tick, np.array([expected_kw, 0.0])).power_kw == pytest.approx(0.0, abs=1e-9)


def test_the_command_layer_gives_the_shortfall_now_and_the_plan_stays_within_the_limits() -> None:
    tick, power = _deferred(session("dc-1", soc=0.2, hours=1.5), session("dc-2", soc=0.2, hours=1.5))
    assert power[:, 0].sum() == 0.0 and power.sum() > 0
    plan = commands_for(CommandInput(tick, "test", power, PlanStatus.OPTIMAL))
    commanded_kw = sum(c.limit_kw for c in plan.connectors)
    assert commanded_kw == pytest.approx(_shortfall(tick).power_kw, abs=0.01)
    assert check_plan(tick.site, tick.snapshot, plan, limits=True, temperature=False) == []
    # The schedule gives back from its last steps what the first step now delivers: no more than the upper end.
    for c, s in zip(plan.connectors, tick.sessions, strict=True):
        assert c.energy_planned_kwh <= s.need_kwh + s.extra_kwh + 1e-6


def test_a_deferral_with_room_to_spare_is_dispatched_as_planned() -> None:
    tick, power = _deferred(session("dc-1", soc=0.2, hours=4.0), session("dc-2", soc=0.2, hours=4.0))
    assert _shortfall(tick).power_kw == 0.0
    assert not _shortfall(tick).leaving.any()
    plan = commands_for(CommandInput(tick, "test", power, PlanStatus.OPTIMAL))
    assert [c.limit_kw for c in plan.connectors] == [0.0, 0.0]


def test_only_the_vehicles_leaving_by_the_short_departure_are_given_power() -> None:
    # dc-1 leaves in 1 h needing more than 90 % of what it can draw by then; dc-2 stays all night.
    tick, power = _deferred(session("dc-1", soc=0.2, hours=1.0), session("dc-2", soc=0.2, hours=8.0))
    early = next(i for i, s in enumerate(tick.sessions) if s.charger.id == "dc-1")
    shortfall = _shortfall(tick)
    assert shortfall.power_kw > 0
    assert shortfall.leaving.tolist() == [i == early for i in range(2)]
    plan = commands_for(CommandInput(tick, "test", power, PlanStatus.OPTIMAL))
    assert plan.connectors[early].limit_kw > 0
    assert plan.connectors[1 - early].limit_kw == 0.0


def test_a_vehicle_counts_only_what_it_could_take_before_it_leaves() -> None:
    # dc-1 needs 36.6 kWh in 30 minutes at 50 kW: 25 kWh is all it can take, whatever the site does.
    tick, power = _deferred(session("dc-1", soc=0.2, hours=0.5), session("dc-2", soc=0.2, hours=8.0))
    early = next(i for i, s in enumerate(tick.sessions) if s.charger.id == "dc-1")
    shortfall = _shortfall(tick)
    assert shortfall.power_kw == pytest.approx((50.0 * 0.5 - (1.0 - DEPARTURE_RESERVE_SHARE) * 50.0 * 0.25) / 0.25)
    assert shortfall.leaving.tolist() == [i == early for i in range(2)]
    plan = commands_for(CommandInput(tick, "test", power, PlanStatus.OPTIMAL))
    assert plan.connectors[early].limit_kw == pytest.approx(50.0)


def test_a_departure_beyond_the_horizon_is_not_judged() -> None:
    # 12 h of horizon; the vehicle leaves in 30 h needing far more than 12 h could ever give it.
    tick, _ = _deferred(session("dc-1", soc=0.0, hours=30.0, battery_kwh=2000.0, target_soc=1.0), horizon_h=2)
    assert tick.horizon.end_h < tick.sessions[0].departure_h
    assert _shortfall(tick).power_kw == 0.0


def test_vehicles_whose_temperature_is_modelled_get_the_shortfall_within_their_ceiling() -> None:
    thermal = ThermalModel(max_temp_c=45.0, heating_c_per_kwh=0.1, cooling_per_h=0.5)
    hot = ThermalModel(max_temp_c=45.0, heating_c_per_kwh=0.1, cooling_per_h=0.0)
    tick, power = _deferred(session("dc-1", soc=0.2, hours=1.5, thermal=thermal, battery_temp_c=30.0),
                            session("dc-2", soc=0.2, hours=1.5, thermal=hot, battery_temp_c=44.8))
    hot_row = next(i for i, s in enumerate(tick.sessions) if s.charger.id == "dc-2")
    power[hot_row] = 0.0  # the plan holds the battery at its ceiling
    plan = commands_for(CommandInput(tick, "test", power, PlanStatus.OPTIMAL))
    cool = next(i for i, s in enumerate(tick.sessions) if s.charger.id == "dc-1")
    assert plan.connectors[cool].limit_kw > 0  # the energy is its own before it leaves either way ...
    assert plan.connectors[1 - cool].limit_kw == 0.0  # ... but a battery at its ceiling gets nothing more
    assert check_plan(tick.site, tick.snapshot, plan, limits=True, temperature=True) == []


def test_where_the_peak_is_priced_the_reserve_stays_under_the_plans_peak() -> None:
    def flat_plan(**control: Any) -> tuple[Tick, np.ndarray]:
        # 50 kW now, the rest of both needs evenly after: 58.2 kW, above 90 % of the site's 60 kW.
        tick, _ = _deferred(session("dc-1", soc=0.1, hours=1.5), session("dc-2", soc=0.1, hours=1.5), **control)
        need_kwh = sum(s.need_kwh + s.margin_kwh for s in tick.sessions)
        power = np.zeros((2, tick.horizon.steps))
        power[:, 0] = 25.0
        power[:, 1:] = (need_kwh - 50.0 * 0.25) / 1.25 / 2
        return dataclasses.replace(tick, snapshot=dataclasses.replace(tick.snapshot, peak_so_far_kw=0.0)), power

    tick, power = flat_plan(objective={"peak": 1.0})
    planned_peak_kw = float(power.sum(axis=0).max())
    assert 0.9 * SITE_KW < planned_peak_kw < SITE_KW
    priced = sum(c.limit_kw for c in commands_for(CommandInput(tick, "test", power, PlanStatus.OPTIMAL)).connectors)
    assert 50.0 < priced <= planned_peak_kw + 1e-6
    tick, power = flat_plan()
    free = sum(c.limit_kw for c in commands_for(CommandInput(tick, "test", power, PlanStatus.OPTIMAL)).connectors)
    assert free > planned_peak_kw  # where the peak costs nothing the site's limit is the only cap


def test_odd_inputs_give_a_finite_shortfall() -> None:
    tick, _ = _deferred(session("dc-1", soc=0.2, hours=1.5), session("dc-2", soc=0.9, hours=1.5))
    assert np.isfinite(_shortfall(tick).power_kw)
    empty = prepare_tick(_two_dc_site(), snapshot())
    nothing = reserve_shortfall(empty, np.zeros(0), plugged_hours(empty), np.zeros(0))
    assert nothing.power_kw == 0.0 and nothing.leaving.shape == (0,)
    # Vehicles that can draw nothing are no crowd: more power for the others would not help them.
    n = len(tick.sessions)
    assert reserve_shortfall(tick, np.zeros(n), plugged_hours(tick), np.zeros(n)).power_kw == 0.0
    assert reserve_shortfall(tick, np.zeros(n), plugged_hours(tick), np.full(n, np.inf)).power_kw == 0.0
    # A vehicle already full (need 0) leaves the departure its whole reserve.
    full, _ = _deferred(session("dc-1", soc=0.95, hours=0.5))
    assert _shortfall(full).power_kw == 0.0
