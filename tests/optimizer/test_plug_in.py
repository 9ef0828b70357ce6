"""Plug-in allowances: capacity no session was planned, handed to chargers with free connectors so that a vehicle
plugging in before the next tick cannot push any limit over (Snapshot.plug_in → Plan.plug_in)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from optimizer.domain import PlugInAllowance, PlugInSlot
from optimizer.errors import SnapshotError
from optimizer.plan_check import check_plan
from optimizer.snapshot_io import plan_to_json, snapshot_from_json
from optimizer.strategies import STRATEGY_NAMES, get_strategy
from tests.optimizer.helpers import NOW, session, site_with, snapshot

# The test site: 35 kW of EV room; feeder-a 32 A/phase holds cp-1 (3-phase 16 A) and cp-2 (1-phase on L2,
# 32 A); feeder-b 15 kW holds cp-3 (22 kW) and cp-4 (DC 50 kW).
SLOTS = (
    PlugInSlot("cp-4", 20.0, 3),  # feeder-b is full with cp-3's vehicle: nothing
    PlugInSlot("cp-1", 11.04, 3),  # 16 A on three phases
    PlugInSlot("cp-2", 7.36, 1),  # what is left of feeder-a's L2 after cp-1: 16 A = 3.68 kW
)


@pytest.mark.parametrize("name", [n for n in STRATEGY_NAMES if n != "uncontrolled"])
def test_allowances_come_only_from_capacity_nobody_was_planned(name: str) -> None:
    site = site_with()
    snap = snapshot(session("cp-3", soc=0.1, battery_kwh=200), plug_in=SLOTS)
    result = get_strategy(name).plan(site, snap)
    assert result.connectors[0].limit_kw == pytest.approx(15.0, abs=0.1)  # feeder-b binds
    allowed = {a.charger_id: a.limit_kw for a in result.plug_in}
    assert allowed["cp-4"] == 0.0
    assert allowed["cp-1"] == pytest.approx(11.04, abs=0.01)
    assert allowed["cp-2"] == pytest.approx(3.68, abs=0.01)
    assert check_plan(site, snap, result, temperature=name == "lp") == []


def test_a_full_site_gives_no_allowance_and_an_allowance_below_minimum_current_is_zero() -> None:
    site = site_with()
    # A 20 kW external cap: cp-3's 15 kW plus 5 kW for cp-1 fill it; 5 kW is left for nothing else.
    snap = snapshot(session("cp-3", soc=0.1, battery_kwh=200), session("cp-1", soc=0.1, battery_kwh=200,
                    max_power_kw=5.0), grid_cap_kw=25.0, plug_in=(PlugInSlot("cp-2", 7.36, 1),))
    result = get_strategy("lp").plan(site, snap)
    assert sum(c.limit_kw for c in result.connectors) == pytest.approx(20.0, abs=0.1)
    assert [(a.charger_id, a.limit_kw) for a in result.plug_in] == [("cp-2", 0.0)]
    # 1 kW left over is below cp-2's 6 A minimum (1.38 kW): an allowance that could charge nobody is 0.
    roomy = replace(snap, grid_cap_kw=26.0)
    assert [a.limit_kw for a in get_strategy("lp").plan(site, roomy).plug_in] == [0.0]
    assert get_strategy("lp").plan(site, replace(snap, grid_cap_kw=26.5)).plug_in[0].limit_kw == pytest.approx(1.5, abs=0.1)


def test_plan_check_refuses_allowances_that_break_a_row_or_were_not_asked_for() -> None:
    site = site_with()
    snap = snapshot(session("cp-3", soc=0.1, battery_kwh=200), plug_in=SLOTS)
    good = get_strategy("lp").plan(site, snap)
    too_much = replace(good, plug_in=(PlugInAllowance("cp-4", 5.0, 3),))
    assert any(str(p).startswith("plug_in[circuit_kw_limit[feeder-b]]") for p in check_plan(site, snap, too_much))
    one_phase = replace(good, plug_in=(PlugInAllowance("cp-2", 7.36, 1),))
    assert any("circuit_phase_limit[feeder-a,L2]" in str(p) for p in check_plan(site, replace(snap, plug_in=(
        PlugInSlot("cp-1", 11.04, 3), PlugInSlot("cp-2", 7.36, 1))), replace(one_phase, plug_in=(
            PlugInAllowance("cp-1", 11.04, 3), PlugInAllowance("cp-2", 7.36, 1)))))
    stranger = replace(good, plug_in=(PlugInAllowance("cp-2", 1.0, 1), *good.plug_in[:0]))
    assert any("nobody asked for" in str(p) for p in check_plan(site, replace(snap, plug_in=()), stranger))


def test_snapshot_and_plan_json_carry_plug_in() -> None:
    site = site_with()
    data = {"time": NOW.isoformat(), "plug_in": [{"charger": "cp-1", "wanted_kw": 11.04}]}
    snap = snapshot_from_json(data, site)
    assert snap.plug_in == (PlugInSlot("cp-1", 11.04, 3),)
    out = plan_to_json(get_strategy("lp").plan(site, snap))
    assert json.loads(json.dumps(out))["plug_in"] == [{"charger": "cp-1", "limit_kw": 11.04, "phases": 3}]
    with pytest.raises(SnapshotError, match=r"plug_in\[0\]\.charger"):
        snapshot_from_json({**data, "plug_in": [{"charger": "nope", "wanted_kw": 1}]}, site)
    with pytest.raises(SnapshotError, match=r"plug_in\[1\]\.charger: a second slot"):
        snapshot_from_json({**data, "plug_in": [{"charger": "cp-1", "wanted_kw": 1}, {"charger": "cp-1", "wanted_kw": 2}]},
                           site)
    with pytest.raises(SnapshotError, match=r"plug_in\.0\.wanted_kw"):
        snapshot_from_json({**data, "plug_in": [{"charger": "cp-1", "wanted_kw": -1}]}, site)
