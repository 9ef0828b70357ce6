"""The command layer every strategy shares (optimizer/strategies/commands.py)."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.domain import PlanStatus
from optimizer.plan_check import check_plan
from optimizer.strategies.base import prepare_tick
from optimizer.strategies.commands import CommandInput, PlanDiagnostics, commands_for
from tests.optimizer.helpers import session, site_with, snapshot


def test_a_plan_of_zeros_gets_the_free_capacity_within_every_row() -> None:
    site = site_with()
    snap = snapshot(session("cp-1", soc=0.5), session("cp-3", soc=0.5))
    tick = prepare_tick(site, snap)
    plan = commands_for(CommandInput(tick, "test", np.zeros((2, tick.horizon.steps)), PlanStatus.FEASIBLE))
    assert all(c.limit_kw > 0 for c in plan.connectors)
    assert check_plan(site, snap, plan, limits=True, temperature=False) == []


def test_without_limits_the_plan_is_only_rounded() -> None:
    site = site_with()
    snap = snapshot(session("cp-1", soc=0.5))
    tick = prepare_tick(site, snap)
    power = np.zeros((1, tick.horizon.steps))
    power[0, 0] = 7.123456
    plan = commands_for(CommandInput(tick, "test", power, PlanStatus.FEASIBLE,
                                     PlanDiagnostics(solver="rule", reason="why"), respects_limits=False))
    c = plan.connectors[0]
    assert c.limit_a == pytest.approx(np.floor(tick.sessions[0].charger.current_a_at(7.123456, 3) * 10) / 10)
    assert c.limit_kw <= 7.123456 and plan.solver == "rule" and plan.reason == "why"


def test_a_power_below_the_minimum_current_is_zero_or_the_minimum() -> None:
    site = site_with()
    snap = snapshot(session("cp-1", soc=0.5))
    tick = prepare_tick(site, snap)
    power = np.zeros((1, tick.horizon.steps))
    power[0, 0] = 1.0  # below 6 A on three phases
    plan = commands_for(CommandInput(tick, "test", power, PlanStatus.FEASIBLE, respects_limits=False))
    assert plan.connectors[0].limit_kw == 0.0 and plan.connectors[0].limit_a == 0.0


@pytest.mark.parametrize("planned_kw", [10.9705, 10.971, 10.9709999, 7.3831, 4.1405])
def test_a_current_command_never_lets_through_more_than_was_planned(planned_kw: float) -> None:
    # 15.9 A on three 230 V phases is 10.971 kW: planned 10.9705 kW, the command must be 15.8 A, and the kW the
    # site budget counts is what the current lets through, never a floored watt below it.
    site = site_with()
    snap = snapshot(session("cp-1", soc=0.5))
    tick = prepare_tick(site, snap)
    power = np.zeros((1, tick.horizon.steps))
    power[0, 0] = planned_kw
    plan = commands_for(CommandInput(tick, "test", power, PlanStatus.FEASIBLE, respects_limits=False))
    c = plan.connectors[0]
    charger = tick.sessions[0].charger
    assert c.limit_a is not None
    through_kw = charger.power_kw_at(c.limit_a, 3)
    assert through_kw <= c.limit_kw + 1e-9 <= planned_kw + 2e-9
    assert c.limit_kw - through_kw < 0.001
    assert check_plan(site, snap, plan, limits=False, temperature=False) == []
