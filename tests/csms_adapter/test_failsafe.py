from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from live_site import make_site

from csms_adapter.control.failsafe import compute_shares, to_unit, worst_case_ev_budget_kw
from optimizer.domain import ALL_PHASES, RateUnit, Site
from optimizer.site_loader import load_site, parse_site

DEMO = Path(__file__).resolve().parents[2] / "site_configs" / "demo-van-depot.yaml"


def subtree(site: Site, circuit_id: str) -> set[str]:
    found = set()
    for c in site.circuits:
        cursor: str | None = c.id
        while cursor is not None:
            if cursor == circuit_id:
                found |= set(c.chargers)
                break
            cursor = next(x.parent for x in site.circuits if x.id == cursor)
    return found


def assert_shares_fit(site: Site) -> None:
    shares = compute_shares(site)
    assert set(shares) == {c.id for c in site.chargers}
    assert sum(s.station_kw for s in shares.values()) <= worst_case_ev_budget_kw(site) + 1e-9
    for circuit in site.circuits:
        below = subtree(site, circuit.id)
        if circuit.max_kw is not None:
            assert sum(shares[c].station_kw for c in below) <= circuit.max_kw + 1e-9
        if circuit.max_current_a is not None:
            for phase in ALL_PHASES:
                amps = 0.0
                for cid in below:
                    ch = site.charger(cid)
                    if phase in ch.phase_rotation[: ch.phases]:
                        amps += shares[cid].station_kw * 1000 / (site.voltage_v * ch.phases)
                assert amps <= circuit.max_current_a + 1e-9, (circuit.id, phase)
    for share in shares.values():
        assert 0 <= share.default_kw <= share.station_kw


def test_demo_site_shares_fit_grid_and_every_circuit() -> None:
    if not DEMO.exists():
        pytest.skip("demo site not written yet")
    site = load_site(DEMO)
    assert_shares_fit(site)
    # The day's lowest window (70 kW from 07:00) minus 8 kW base load is the budget.
    assert worst_case_ev_budget_kw(site) == pytest.approx(62.0)


def test_test_site_shares_fit() -> None:
    assert_shares_fit(make_site())


@settings(max_examples=40, deadline=None)
@given(
    limit=st.floats(20, 400),
    base=st.floats(0, 15),
    feeder_a=st.floats(10, 200),
    feeder_kw=st.floats(5, 100),
    n=st.integers(1, 6),
    one_phase=st.booleans(),
)
def test_shares_fit_random_sites(limit: float, base: float, feeder_a: float, feeder_kw: float, n: int,
                                 one_phase: bool) -> None:
    chargers = "\n".join(
        f"  - {{id: c{i}, phases: {1 if one_phase and i % 2 else 3}, "
        f"phase_rotation: {'L' + str(i % 3 + 1) if one_phase and i % 2 else 'L1L2L3'}, max_current_a: 32}}"
        for i in range(n)
    )
    half = n // 2
    yaml = f"""
site:
  name: s
  grid: {{import_limit_kw: {limit}}}
  base_load: {{kw: {base}}}
  circuits:
    - id: main
      max_current_a: {feeder_a * 2}
      children:
        - {{id: fa, max_current_a: {feeder_a}, chargers: [{", ".join(f"c{i}" for i in range(half))}]}}
        - {{id: fb, max_kw: {feeder_kw}, chargers: [{", ".join(f"c{i}" for i in range(half, n))}]}}
chargers:
{chargers}
"""
    assert_shares_fit(parse_site(yaml, "random.yaml"))


@pytest.mark.parametrize(
    ("power_kw", "unit", "phases", "expected"),
    [
        (11.0, RateUnit.AMPS, 3, 15.9),  # 15.94 A rounds down
        (3.68, RateUnit.AMPS, 1, 16.0),
        (7.399, RateUnit.AMPS, 1, 32.1),  # 32.17 → 32.1, never up
        (11.0, RateUnit.WATTS, 3, 11000.0),
        (0.00005, RateUnit.WATTS, 3, 0.0),
    ],
)
def test_unit_conversion_rounds_down(power_kw: float, unit: RateUnit, phases: int, expected: float) -> None:
    charger = make_site().charger("cp-b")
    assert to_unit(charger, power_kw, unit, phases) == pytest.approx(expected)
