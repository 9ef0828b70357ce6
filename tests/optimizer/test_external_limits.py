"""External limits (Snapshot.external_limits): a limit a local energy manager, the grid operator or the vehicle set
on a charger is honoured by every strategy, in every step it touches, and checked by plan_check."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from optimizer.domain import ExternalLimit, LimitSource
from optimizer.errors import SnapshotError
from optimizer.plan_check import check_plan
from optimizer.snapshot_io import snapshot_from_json
from optimizer.strategies import STRATEGY_NAMES, get_strategy
from tests.optimizer.helpers import NOW, session, site_with, snapshot


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_a_connector_limit_caps_its_session_in_every_step(name: str) -> None:
    site = site_with()
    limit = ExternalLimit("cp-4", 1, 12.5, LimitSource.SO)
    snap = snapshot(session("cp-4", soc=0.1, battery_kwh=200), external_limits=(limit,))
    plan = get_strategy(name).plan(site, snap)
    conn = plan.connectors[0]
    assert 0 < conn.limit_kw <= 12.5
    assert max(conn.schedule_kw) <= 12.5 + 1e-9
    assert check_plan(site, snap, plan, limits=name != "uncontrolled", temperature=False) == []
    free = get_strategy(name).plan(site, replace(snap, external_limits=()))
    assert free.connectors[0].limit_kw > 12.5  # the cap is what held it


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_a_whole_charger_limit_is_shared_by_its_sessions(name: str) -> None:
    site = site_with(chargers=[{"id": "cp-1", "phases": 3, "max_current_a": 32, "connectors": 2},
                               {"id": "cp-2", "phases": 1, "phase_rotation": "L2", "max_current_a": 32},
                               {"id": "cp-3", "phases": 3, "max_current_a": 32, "max_power_kw": 22},
                               {"id": "cp-4", "dc": True, "max_power_kw": 50}])
    limit = ExternalLimit("cp-1", 0, 16.0, LimitSource.EMS)
    snap = snapshot(session("cp-1", 1, soc=0.1), session("cp-1", 2, soc=0.1), external_limits=(limit,))
    plan = get_strategy(name).plan(site, snap)
    assert sum(c.limit_kw for c in plan.connectors) <= 16.0 + 1e-9
    assert check_plan(site, snap, plan, limits=name != "uncontrolled", temperature=False) == []


def test_a_limit_applies_only_while_it_is_valid() -> None:
    site = site_with()
    limit = ExternalLimit("cp-4", 1, 5.0, LimitSource.SO, start=NOW + timedelta(hours=1),
                          until=NOW + timedelta(hours=2))
    snap = snapshot(session("cp-4", soc=0.1, battery_kwh=300), external_limits=(limit,))
    plan = get_strategy("lp").plan(site, snap)
    conn = plan.connectors[0]
    starts = [sum(plan.schedule_step_s[:k]) / 3600 for k in range(len(plan.schedule_step_s))]
    during = [kw for kw, h, length in zip(conn.schedule_kw, starts, plan.schedule_step_s, strict=True)
              if h + length / 3600 > 1.0 + 1e-9 and h < 2.0 - 1e-9]
    assert conn.limit_kw > 5.0  # not yet in force
    assert during and max(during) <= 5.0 + 1e-9
    assert check_plan(site, snap, plan, temperature=False) == []


def test_a_cap_below_the_minimum_current_stops_the_session() -> None:
    site = site_with()  # cp-1: 3-phase, 6 A minimum = 4.14 kW
    snap = snapshot(session("cp-1", soc=0.1), external_limits=(ExternalLimit("cp-1", 1, 3.0, LimitSource.SO),))
    plan = get_strategy("lp").plan(site, snap)
    assert plan.connectors[0].limit_kw == 0.0
    assert check_plan(site, snap, plan, temperature=False) == []


def test_plan_check_flags_a_plan_above_an_external_limit() -> None:
    site = site_with()
    snap = snapshot(session("cp-4", soc=0.1, battery_kwh=200))
    plan = get_strategy("lp").plan(site, snap)
    limited = replace(snap, external_limits=(ExternalLimit("cp-4", 1, 10.0, LimitSource.CSO),))
    assert any(p.constraint == "external_limit" and p.index == "cp-4/1"
               for p in check_plan(site, limited, plan, temperature=False))


def test_snapshot_json_reads_external_limits_and_rejects_garbage() -> None:
    site = site_with()
    base = {"time": "2026-11-25T18:00:00Z", "sessions": [{"charger": "cp-4", "soc": 0.2}]}
    snap = snapshot_from_json({**base, "external_limits": [
        {"charger": "cp-4", "connector": 1, "limit_kw": 7.5, "source": "SO", "until": "2026-11-25T20:00:00Z"}]}, site)
    assert snap.external_limits[0].limit_kw == 7.5 and snap.external_limits[0].source is LimitSource.SO
    bad = [
        ({"charger": "nope", "limit_kw": 1}, "external_limits[0].charger"),
        ({"charger": "cp-4", "limit_kw": -1}, "external_limits.0.limit_kw"),
        ({"charger": "cp-4", "limit_kw": "lots"}, "external_limits.0.limit_kw"),
        ({"charger": "cp-4", "limit_kw": 1, "source": "Moon"}, "external_limits.0.source"),
        ({"charger": "cp-4", "connector": 9, "limit_kw": 1}, "external_limits[0].connector"),
        ({"charger": "cp-4", "limit_kw": 1, "start": "2026-11-25T20:00:00Z", "until": "2026-11-25T19:00:00Z"},
         "external_limits[0].until"),
        ({"charger": "cp-4", "limit_kw": 1, "until": "2026-11-25T20:00:00"}, "external_limits[0].until"),
        ({"charger": "cp-4", "limit_kw": 1, "colour": "red"}, "external_limits.0.colour"),
    ]
    for item, key in bad:
        with pytest.raises(SnapshotError) as caught:
            snapshot_from_json({**base, "external_limits": [item]}, site)
        assert key in str(caught.value), (item, str(caught.value))
