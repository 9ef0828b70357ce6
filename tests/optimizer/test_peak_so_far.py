"""A demand charge bills the highest power of the period: a peak already reached is paid for."""

from __future__ import annotations

from dataclasses import replace

import pytest

from optimizer.domain import Site
from optimizer.errors import SnapshotError
from optimizer.site_loader import parse_site_mapping
from optimizer.snapshot_io import snapshot_from_json
from optimizer.strategies import plan
from tests.optimizer.helpers import BASE_SITE, session, snapshot


def _priced_site() -> Site:
    data = {**BASE_SITE, "site": {**BASE_SITE["site"], "grid": {"import_limit_kw": 100}, "base_load": {"kw": 0},
                                  "tariff": {"price_per_kwh": 0.1, "demand_charge_per_kw": 20.0}}}
    return parse_site_mapping(data, "priced.yaml")


def test_power_up_to_the_peak_already_reached_is_used_and_above_it_is_priced() -> None:
    site = _priced_site()
    # 20 kWh for a DC vehicle on feeder-b (15 kW) that leaves in two hours; the demand charge makes every kW of
    # peak cost more than the energy it brings, so priced from 0 the plan keeps the peak as low as it can.
    snap = snapshot(session("cp-4", energy_needed_kwh=20.0, hours=2.0))
    from_zero = plan(site, snap, "lp").connectors[0]
    paid_for = plan(site, replace(snap, peak_so_far_kw=40.0), "lp").connectors[0]
    assert from_zero.limit_kw == pytest.approx(10.0, abs=0.01)  # flat: 20 kWh over 2 h
    assert paid_for.limit_kw == pytest.approx(15.0, abs=0.01)  # under the 40 kW billed: as soon as the feeder allows


def test_snapshot_json_carries_the_peak_so_far() -> None:
    site = _priced_site()
    data = {"time": "2026-11-25T18:00:00Z", "peak_so_far_kw": 312.5, "sessions": []}
    assert snapshot_from_json(data, site).peak_so_far_kw == 312.5
    for garbage in (-1.0, "lots", float("nan")):
        with pytest.raises(SnapshotError, match=r"peak_so_far_kw"):
            snapshot_from_json({**data, "peak_so_far_kw": garbage}, site)
