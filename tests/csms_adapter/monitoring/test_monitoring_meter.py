"""Meter integrity: each kind of bad reading is flagged; good readings pass; a reset meter is believed again."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csms_adapter.monitoring import meter_integrity as mi
from csms_adapter.protocol import events as ev

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
LIMITS = mi.MeterLimits(max_power_kw=22.0, max_current_a=32.0)


def sample(seconds: float, value: float, quantity: ev.Quantity = ev.Quantity.ENERGY_KWH,
           connector: int = 1) -> ev.MeterSample:
    return ev.MeterSample("cp-1", connector, quantity, value, "Energy.Active.Import.Register",
                          T0 + timedelta(seconds=seconds))


def checker() -> mi.MeterIntegrity:
    return mi.MeterIntegrity(lambda charger: LIMITS if charger == "cp-1" else None, frozen_after_s=300)


def codes(meter: mi.MeterIntegrity, samples: list[ev.MeterSample]) -> list[str | None]:
    return [meter.check(s).code for s in samples]


@pytest.mark.parametrize(("name", "readings", "expected"), [
    ("steady charging", [(0, 100.0), (60, 100.3), (120, 100.6)], [None, None, None]),
    ("register backwards", [(0, 100.0), (60, 99.0)], [None, mi.REGISTER_BACKWARDS]),
    ("register reset", [(0, 100.0), (60, 0.1)], [None, mi.REGISTER_RESET]),
    ("jump no 22 kW charger could make in 60 s", [(0, 100.0), (60, 101.0)], [None, mi.IMPOSSIBLE_JUMP]),
    ("22 kW for an hour is fine", [(0, 100.0), (3600, 122.0)], [None, None]),
    ("two values at one time", [(0, 100.0), (0, 100.2)], [None, mi.DUPLICATED]),
    ("a replay of the same value", [(0, 100.0), (0, 100.0)], [None, None]),
    ("negative register", [(0, -5.0)], [mi.OUT_OF_RANGE]),
    ("glitch then back on track", [(0, 100.0), (60, 5000.0), (120, 100.5)], [None, mi.IMPOSSIBLE_JUMP, None]),
])
def test_register_checks(name: str, readings: list[tuple[float, float]], expected: list[str | None]) -> None:
    assert codes(checker(), [sample(t, v) for t, v in readings]) == expected, name


def test_power_and_current_far_above_the_nameplate_are_out_of_range() -> None:
    meter = checker()
    assert meter.check(sample(0, 21.0, ev.Quantity.POWER_KW)).ok
    assert meter.check(sample(0, 400.0, ev.Quantity.POWER_KW)).code == mi.OUT_OF_RANGE
    assert meter.check(sample(0, 31.0, ev.Quantity.CURRENT_A)).ok
    assert meter.check(sample(0, 900.0, ev.Quantity.CURRENT_A)).code == mi.OUT_OF_RANGE
    assert meter.check(sample(0, 900.0, ev.Quantity.TEMPERATURE_C)).code == mi.OUT_OF_RANGE
    assert meter.check(sample(0, math.nan, ev.Quantity.POWER_KW)).code == mi.OUT_OF_RANGE


def test_frozen_register_while_drawing_power_is_flagged_and_recovers() -> None:
    meter = checker()
    assert meter.check(sample(0, 100.0)).ok
    results = []
    for t in range(60, 420, 60):
        meter.check(sample(t, 11.0, ev.Quantity.POWER_KW))
        results.append(meter.check(sample(t, 100.0)).code)
    assert results[:4] == [None, None, None, None]
    assert mi.FROZEN in results
    verdict = meter.check(sample(480, 100.5))
    assert verdict.ok and verdict.recovered


def test_standing_register_without_power_is_normal() -> None:
    meter = checker()
    assert all(meter.check(sample(t, 100.0)).ok for t in range(0, 3600, 60))


def test_reset_meter_is_believed_again_after_three_consistent_values() -> None:
    meter = checker()
    meter.check(sample(0, 100.0))
    verdicts = [meter.check(sample(t, v)) for t, v in [(60, 0.0), (120, 0.2), (180, 0.4), (240, 0.6)]]
    assert [v.ok for v in verdicts] == [False, False, True, True]
    assert verdicts[2].recovered


@given(st.lists(st.tuples(st.floats(0, 10_000), st.floats(allow_nan=True, allow_infinity=True)), max_size=30))
def test_garbage_never_raises(readings: list[tuple[float, float]]) -> None:
    meter = checker()
    for t, value in sorted(readings):
        for quantity in ev.Quantity:
            verdict = meter.check(sample(t, value, quantity))
            assert verdict.ok or verdict.code is not None
