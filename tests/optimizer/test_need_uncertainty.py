"""Needs with their uncertainty (optimizer/needs.py), the arrival SoC setting and how every strategy plans them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from optimizer.domain import ThermalModel, ValueSource
from optimizer.errors import ConfigError, SnapshotError
from optimizer.lp_model import session_arrays
from optimizer.needs import DEFAULT_SOC_RESOLUTION, DRAWING_FLOOR_H, FUSED_CENTRAL_SIGMAS, resolve_sessions
from optimizer.site_loader import parse_site_mapping
from optimizer.strategies import STRATEGY_NAMES, get_strategy, plan
from optimizer.strategies.base import prepare_tick
from tests.optimizer.helpers import BASE_SITE, session, site_with, snapshot


def site_with_defaults(**defaults: Any) -> Any:
    data = copy.deepcopy(BASE_SITE)
    data["fleet"]["defaults"].update(defaults)
    return parse_site_mapping(data, "depot.yaml")


def test_a_whole_percent_reading_gets_a_margin_of_one_percent_of_the_battery() -> None:
    (s,) = resolve_sessions(site_with(), snapshot(session("cp-3", soc=0.5, target_soc=0.8)))
    assert s.need_kwh == pytest.approx(0.3 * 60)
    assert s.margin_kwh == pytest.approx(DEFAULT_SOC_RESOLUTION * 60)
    assert s.extra_kwh == pytest.approx(s.margin_kwh)
    assert s.uncertainty is not None and not s.uncertainty.estimated and s.uncertainty.resolution == DEFAULT_SOC_RESOLUTION


def test_an_old_reading_gets_a_wider_margin_and_a_fine_one_a_narrower() -> None:
    site = site_with()
    (fresh,) = resolve_sessions(site, snapshot(session("cp-3", soc=0.5, soc_resolution=0.001)))
    (old,) = resolve_sessions(site, snapshot(session("cp-3", soc=0.5, soc_resolution=0.001, soc_age_s=3600.0)))
    assert fresh.margin_kwh == pytest.approx(0.001 * 60)
    assert old.margin_kwh > fresh.margin_kwh + 1.0


def test_a_soc_fitted_to_many_readings_reaches_above_its_value_and_keeps_a_light_margin() -> None:
    site = site_with()
    (fitted,) = resolve_sessions(site, snapshot(session("cp-3", soc=0.5, target_soc=0.8, soc_error=0.001)))
    (read,) = resolve_sessions(site, snapshot(session("cp-3", soc=0.5, target_soc=0.8)))
    assert fitted.need_kwh == pytest.approx((0.3 + FUSED_CENTRAL_SIGMAS * 0.001) * 60)
    assert fitted.need_kwh + fitted.extra_kwh == pytest.approx(read.need_kwh + read.extra_kwh)
    assert fitted.uncertainty is not None and fitted.uncertainty.fitted
    # Its margin is weighed as margin (given up first), a single reading's as a central kWh.
    tick = prepare_tick(site, snapshot(session("cp-3", soc=0.5, target_soc=0.8, soc_error=0.001),
                                       session("cp-4", soc=0.5, target_soc=0.8)))
    arrays = session_arrays(tick.sessions, tick.horizon, tick.series)
    assert arrays.need_read is not None and arrays.need_read.tolist() == [False, True]


def test_the_margin_never_goes_past_a_full_battery() -> None:
    (s,) = resolve_sessions(site_with(), snapshot(session("cp-3", soc=0.995, target_soc=1.0)))
    assert s.need_kwh + s.extra_kwh == pytest.approx(0.005 * 60)


def test_a_reading_just_above_the_target_keeps_only_a_margin() -> None:
    # 80.5 % read to a whole percent may be 80.0 %: the margin stays, at its lower weight.
    (s,) = resolve_sessions(site_with(), snapshot(session("cp-3", soc=0.805, target_soc=0.8)))
    assert s.need_kwh == 0.0 and s.margin_kwh == pytest.approx(0.005 * 60)


def test_a_vehicle_believed_done_but_drawing_keeps_a_central_need() -> None:
    site = site_with()
    (idle,) = resolve_sessions(site, snapshot(session("cp-3", soc=0.85, target_soc=0.8, power_kw=0.0)))
    (drawing,) = resolve_sessions(site, snapshot(session("cp-3", soc=0.85, target_soc=0.8, power_kw=11.0)))
    assert idle.need_kwh == 0.0 and idle.extra_kwh == 0.0  # a whole percent above its target, and idle: done
    assert drawing.need_kwh == pytest.approx(min(11.0 * DRAWING_FLOOR_H, DEFAULT_SOC_RESOLUTION * 60 / 2))
    assert drawing.uncertainty is not None and drawing.uncertainty.drawing
    assert plan(site, snapshot(session("cp-3", soc=0.85, target_soc=0.8, power_kw=11.0)), "edf").connectors[0].limit_kw > 0


def test_the_arrival_soc_is_a_fleet_setting() -> None:
    site = site_with_defaults(arrival_soc=0.4)
    (s,) = resolve_sessions(site, snapshot(session("cp-3", soc=None, target_soc=0.8)))
    assert s.soc_source == ValueSource.ESTIMATED and s.soc0 == pytest.approx(0.4)
    assert s.need_kwh == pytest.approx(0.4 * 60)
    assert s.need_kwh + s.extra_kwh == pytest.approx(0.8 * 60)  # the upper end: it may have arrived empty
    assert 0 < s.margin_kwh <= s.extra_kwh


@pytest.mark.parametrize("value", [-0.1, 1.0, 7, "lots", None, float("nan")])
def test_a_garbage_arrival_soc_names_its_key(value: Any) -> None:
    data = copy.deepcopy(BASE_SITE)
    data["fleet"]["defaults"]["arrival_soc"] = value
    with pytest.raises(ConfigError) as info:
        parse_site_mapping(data, "depot.yaml")
    assert any("fleet.defaults.arrival_soc" in str(p) for p in info.value.problems), info.value.problems


def test_a_target_below_the_assumed_arrival_soc_still_gets_a_need() -> None:
    site = site_with_defaults(arrival_soc=0.2)
    snap = snapshot(session("cp-1", soc=None, target_soc=0.15, thermal=ThermalModel.none()))
    (s,) = resolve_sessions(site, snap)
    assert s.need_kwh > 0
    for name in ("lp", "equal_share", "edf", "llf"):
        c = plan(site, snap, name).connectors[0]
        assert c.limit_kw > 0, name


@pytest.mark.parametrize(("key", "value"), [("soc_resolution", -0.01), ("soc_resolution", float("inf")),
                                            ("soc_age_s", -5.0), ("power_kw", float("nan")),
                                            ("soc_error", -0.001), ("soc_error", float("nan"))])
def test_garbage_uncertainty_fields_are_named(key: str, value: float) -> None:
    with pytest.raises(SnapshotError, match=key):
        resolve_sessions(site_with(), snapshot(session("cp-3", soc=0.5, **{key: value})))


def test_lp_plans_the_margin_when_there_is_room() -> None:
    # One DC vehicle alone on a site with room: the plan covers the upper end of its need.
    site = site_with()
    result = plan(site, snapshot(session("cp-4", soc=0.5, target_soc=0.8, hours=8.0)), "lp")
    c = result.connectors[0]
    assert c.energy_planned_kwh == pytest.approx(0.3 * 60 + DEFAULT_SOC_RESOLUTION * 60, abs=0.01)


def test_lp_gives_the_margin_up_before_any_central_need() -> None:
    # Two vehicles on feeder-b (15 kW) for one hour: central needs 7.2 + 7.5 kWh fit, their margins (0.6 kWh each)
    # do not. Both central needs are planned in full and the feeder is used to its limit.
    site = site_with()
    snap = snapshot(session("cp-3", soc=0.68, target_soc=0.8, hours=1.0),
                    session("cp-4", soc=0.675, target_soc=0.8, hours=1.0))
    result = plan(site, snap, "lp")
    (s3, s4) = resolve_sessions(site, snap)
    by_id = {c.charger_id: c for c in result.connectors}
    assert by_id["cp-3"].energy_planned_kwh >= s3.need_kwh - 1e-3
    assert by_id["cp-4"].energy_planned_kwh >= s4.need_kwh - 1e-3
    planned = by_id["cp-3"].energy_planned_kwh + by_id["cp-4"].energy_planned_kwh
    assert planned < s3.need_kwh + s4.need_kwh + s3.margin_kwh + s4.margin_kwh - 0.1  # some margin given up
    assert by_id["cp-3"].limit_kw + by_id["cp-4"].limit_kw <= 15.0 + 1e-6


@pytest.mark.parametrize("name", [n for n in STRATEGY_NAMES if n != "uncontrolled"])
def test_no_strategy_leaves_a_vehicle_at_zero_while_capacity_is_free(name: str) -> None:
    # A vehicle believed done (by an estimate) but drawing, and one that needs energy: the site has room for both.
    site = site_with()
    snap = snapshot(session("cp-3", soc=None, target_soc=0.8, energy_delivered_kwh=40.0, power_kw=0.0),
                    session("cp-4", soc=0.75, target_soc=0.8, hours=8.0))
    result = get_strategy(name).plan(site, snap)
    assert all(c.limit_kw > 0 for c in result.connectors), [(c.charger_id, c.limit_kw) for c in result.connectors]


def test_uncontrolled_charges_to_the_upper_end_of_the_need() -> None:
    # Its estimate says it is done (arrived at 20 %, 40 kWh since); it may have arrived emptier: uncontrolled
    # charges it on, until the vehicle itself stops.
    site = site_with()
    snap = snapshot(session("cp-3", soc=None, target_soc=0.8, energy_delivered_kwh=40.0))
    c = get_strategy("uncontrolled").plan(site, snap).connectors[0]
    (s,) = resolve_sessions(site, snap)
    assert s.need_kwh == 0.0 and c.limit_kw > 0
    assert c.energy_planned_kwh == pytest.approx(s.need_kwh + s.extra_kwh, abs=0.05)
