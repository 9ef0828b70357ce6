"""The cost of unmet need (optimizer/lp_columns.unmet_weights), and what the kWh objective's session share does."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.domain import Objective
from optimizer.lp_columns import KWH_SESSION_SHARE, MARGIN_WEIGHT_SHARE, READ_MARGIN_WEIGHT_SHARE, unmet_weights
from optimizer.lp_model import build_lp, session_arrays
from optimizer.strategies.base import prepare_tick
from tests.optimizer.helpers import session, site_with, snapshot

KWH = Objective(unmet_per="kwh")
NEEDS = np.array([4.0, 20.0, 40.0])
PRIORITY = np.ones(3)


def test_the_session_objective_weighs_each_session_by_its_need() -> None:
    weights = unmet_weights(NEEDS, PRIORITY, Objective())
    assert weights == pytest.approx(1000.0 / NEEDS)


def test_the_kwh_objective_breaks_ties_towards_finishing_vehicles() -> None:
    weights = unmet_weights(NEEDS, PRIORITY, KWH)
    mean = float(NEEDS.mean())
    assert 0 < KWH_SESSION_SHARE < 0.05  # a tie-break, never a trade of energy for sessions
    assert weights[0] == pytest.approx(1000.0 * ((1 - KWH_SESSION_SHARE) / mean + KWH_SESSION_SHARE / 4.0))
    assert weights[0] > weights[1] > weights[2]
    # Within a few per cent of every kWh alike.
    assert weights.max() / weights.min() < 1.0 + KWH_SESSION_SHARE * mean / float(NEEDS.min())


def test_tiny_or_empty_needs_keep_finite_weights() -> None:
    weights = unmet_weights(np.array([0.0, 1e-9, 30.0]), np.ones(3), KWH)
    assert np.isfinite(weights).all() and (weights > 0).all()
    assert unmet_weights(np.zeros(0), np.zeros(0), KWH).size == 0


def test_the_lp_gives_the_session_share_to_read_and_assumed_needs_alike() -> None:
    site = site_with(control={"step_min": 15, "horizon_h": 12, "objective": {"unmet_per": "kwh"}})
    snap = snapshot(session("cp-1", soc=0.7), session("cp-3", soc=0.3), session("cp-4", soc=None),
                    session("cp-2", soc=None, energy_delivered_kwh=20.0))
    tick = prepare_tick(site, snap)
    arrays = session_arrays(tick.sessions, tick.horizon, tick.series)
    assert arrays.need_read is not None and arrays.need_read.tolist() == [True, True, False, False]
    lp = build_lp(tick.sessions, tick.horizon, tick.series, tick.limits, site.control.objective, 0.0, 0.0, arrays)
    u_cost = lp.cost[lp.sessions * lp.steps : lp.sessions * lp.steps + lp.sessions]
    assert u_cost[0] > u_cost[1]  # read: the smaller need weighs more
    assert u_cost[3] > u_cost[2]  # assumed: the vehicle the meter says got 20 kWh has the smaller need left
    expected = unmet_weights(arrays.need_kwh, arrays.priority, site.control.objective)
    assert u_cost == pytest.approx(expected)


def test_under_the_kwh_objective_a_read_margin_costs_as_much_as_a_central_kwh() -> None:
    snap = snapshot(session("cp-1", soc=0.5), session("cp-4", soc=None))
    for unmet_per, read_share in (("kwh", READ_MARGIN_WEIGHT_SHARE), ("session", MARGIN_WEIGHT_SHARE)):
        site = site_with(control={"step_min": 15, "horizon_h": 12, "objective": {"unmet_per": unmet_per}})
        tick = prepare_tick(site, snap)
        arrays = session_arrays(tick.sessions, tick.horizon, tick.series)
        assert arrays.margin_kwh is not None and (arrays.margin_kwh > 0).all()
        lp = build_lp(tick.sessions, tick.horizon, tick.series, tick.limits, site.control.objective, 0.0, 0.0, arrays)
        n_u = lp.sessions * lp.steps
        cheapest = float(lp.cost[n_u : n_u + lp.sessions].min())
        margin_cost = lp.cost[-2:]  # the margin columns come last, one per session with a margin
        assert margin_cost[0] == pytest.approx(read_share * cheapest)  # read SoC
        assert margin_cost[1] == pytest.approx(MARGIN_WEIGHT_SHARE * cheapest)  # assumed: given up first
