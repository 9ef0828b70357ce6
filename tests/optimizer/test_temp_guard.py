"""Battery temperature readings screened before planning (optimizer.temp_guard): a reading the physics cannot
explain is not planned with as read, and a real step in the readings is believed after a few consistent ones.
Times are passed explicitly: the guard has no clock of its own."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from optimizer.domain import SessionState, Snapshot, ThermalModel, ValueSource
from optimizer.temp_guard import TOLERANCE_C, TRUST_AFTER, Reading, TempGuard, plausible_range_c
from optimizer.thermal import step_temp_c
from tests.optimizer.helpers import NOW

MODEL = ThermalModel(45.0, 0.06, 0.5)  # the heatwave buses' configured model


def _at(minutes: float) -> datetime:
    return NOW + timedelta(minutes=minutes)


def _snapshot(minutes: float, temp_c: float | None, energy_kwh: float = 0.0, ambient_c: float = 44.0,
              source: ValueSource = ValueSource.MEASURED, plugged_in_at: datetime = NOW,
              temp_at: datetime | None = None) -> Snapshot:
    session = SessionState("bus-01", 1, battery_temp_c=temp_c, temp_source=source, energy_delivered_kwh=energy_kwh,
                           plugged_in_at=plugged_in_at, temp_at=temp_at)
    return Snapshot(time=_at(minutes), sessions=(session,), ambient_c=ambient_c)


def _model(_: SessionState) -> ThermalModel:
    return MODEL


def _planned(guard: TempGuard, snapshot: Snapshot) -> tuple[float | None, float | None, int]:
    """(temperature planned with, temperature learnt from, readings distrusted in this snapshot)."""
    out = guard.screen(snapshot, _model)
    return out.planning.sessions[0].battery_temp_c, out.learning.sessions[0].battery_temp_c, len(out.distrusted)


def test_an_idle_battery_read_far_lower_than_free_cooling_allows_is_planned_at_its_prediction() -> None:
    """The traced case: a bus at 44.40 °C in 44 °C air, read 44.01 °C five idle minutes later."""
    guard = TempGuard()
    assert _planned(guard, _snapshot(0, 44.40)) == (44.40, 44.40, 0)
    planned, learnt, doubted = _planned(guard, _snapshot(5, 44.01))
    expected = step_temp_c(MODEL, 44.40, 0.0, 5 / 60, 44.0)
    assert doubted == 1 and guard.distrusted_total == 1
    assert planned == pytest.approx(expected) and planned > 44.3  # the prediction, not the low reading
    assert learnt is None  # the fit does not learn from it
    out = guard.screen(_snapshot(5, 44.01), _model)  # the same reading again: same verdict, not counted twice
    assert out.planning.sessions[0].temp_source == ValueSource.ESTIMATED and guard.distrusted_total == 1


def test_sensor_noise_within_the_allowance_is_planned_as_read() -> None:
    guard = TempGuard()
    _planned(guard, _snapshot(0, 44.40))
    assert _planned(guard, _snapshot(5, 44.40 - TOLERANCE_C + 0.05)) == (pytest.approx(44.20), pytest.approx(44.20), 0)
    assert _planned(guard, _snapshot(10, 44.38)) == (44.38, 44.38, 0)
    assert guard.distrusted_total == 0


def test_a_hot_battery_cooling_in_cool_air_is_trusted_however_far_it_falls() -> None:
    guard = TempGuard()
    _planned(guard, _snapshot(0, 44.0, ambient_c=20.0))
    cooled = step_temp_c(MODEL, 44.0, 0.0, 1.0, 20.0)  # 34.6 °C after an hour
    assert _planned(guard, _snapshot(60, cooled, ambient_c=20.0)) == (cooled, cooled, 0)
    # Even three times the model's cooling rate is believed (a model that underestimates cooling).
    fast = step_temp_c(ThermalModel(45.0, 0.06, 1.4), cooled, 0.0, 0.5, 20.0)
    assert _planned(guard, _snapshot(90, fast, ambient_c=20.0))[2] == 0
    # But not a fall below the air it cools in.
    assert _planned(guard, _snapshot(95, 19.0, ambient_c=20.0))[2] == 1


def test_a_rise_the_energy_drawn_explains_is_trusted_and_one_it_cannot_is_planned_as_read() -> None:
    guard = TempGuard()
    _planned(guard, _snapshot(0, 40.0, energy_kwh=0.0, ambient_c=30.0))
    heated = step_temp_c(ThermalModel(45.0, 0.12, 0.25), 40.0, 150.0, 5 / 60, 30.0)  # twice the heating of the model
    assert _planned(guard, _snapshot(5, heated, energy_kwh=12.5, ambient_c=30.0)) == (heated, heated, 0)
    planned, learnt, doubted = _planned(guard, _snapshot(10, heated + 3.0, energy_kwh=12.5, ambient_c=30.0))
    assert doubted == 1 and planned == heated + 3.0  # a high reading is the safe side: planned as read ...
    assert learnt is None  # ... but not learnt from


def test_a_real_step_in_the_readings_is_believed_after_consistent_readings() -> None:
    """A sensor that now reads 2 °C lower for good: doubted, planned conservatively, then believed."""
    guard = TempGuard()
    _planned(guard, _snapshot(0, 44.0))
    planned = []
    for k in range(1, TRUST_AFTER + 2):
        planned.append(_planned(guard, _snapshot(5 * k, 42.0)))
    for temp_c, learnt, doubted in planned[: TRUST_AFTER - 1]:
        assert doubted == 1 and learnt is None and temp_c is not None and temp_c > 43.5
    assert planned[TRUST_AFTER - 1] == (42.0, 42.0, 0)  # believed ...
    assert planned[TRUST_AFTER] == (42.0, 42.0, 0)  # ... and from then on compared with the new level
    assert guard.steps_believed == 1 and guard.distrusted_total == TRUST_AFTER - 1


def test_a_single_low_reading_does_not_become_the_reference() -> None:
    guard = TempGuard()
    _planned(guard, _snapshot(0, 44.4))
    assert _planned(guard, _snapshot(5, 43.9))[2] == 1
    assert _planned(guard, _snapshot(10, 44.38)) == (44.38, 44.38, 0)  # back to normal: trusted against 44.4
    # Low readings that disagree with each other never add up to a believed step.
    for k, temp_c in enumerate((43.9, 43.0, 43.9, 43.0, 43.9), start=3):
        assert _planned(guard, _snapshot(5 * k, temp_c))[2] == 1
    assert guard.steps_believed == 0


def test_a_new_plug_in_and_an_unplugged_connector_start_afresh() -> None:
    guard = TempGuard()
    _planned(guard, _snapshot(0, 44.4))
    guard.screen(Snapshot(time=_at(5), sessions=(), ambient_c=44.0), _model)  # unplugged: forgotten
    assert _planned(guard, _snapshot(10, 40.0)) == (40.0, 40.0, 0)
    assert _planned(guard, _snapshot(15, 35.0, plugged_in_at=_at(12))) == (35.0, 35.0, 0)  # another vehicle


def test_stale_readings_are_not_judged_but_a_doubted_one_keeps_its_verdict() -> None:
    guard = TempGuard()
    stale = ValueSource.ESTIMATED
    assert _planned(guard, _snapshot(0, 44.4, source=stale)) == (44.4, 44.4, 0)  # nothing to judge it by
    _planned(guard, _snapshot(5, 44.4))
    assert _planned(guard, _snapshot(10, 43.8, temp_at=_at(10)))[2] == 1
    planned, _, doubted = _planned(guard, _snapshot(30, 43.8, source=stale, temp_at=_at(10)))  # the same, now stale
    assert doubted == 0 and planned is not None and planned > 44.0
    assert _planned(guard, _snapshot(40, 41.0, source=stale, temp_at=_at(40))) == (41.0, 41.0, 0)  # a new stale one


@pytest.mark.parametrize("garbage", [math.nan, math.inf, -math.inf])
def test_a_non_finite_reading_is_passed_on_untouched_and_does_not_poison_the_reference(garbage: float) -> None:
    guard = TempGuard()
    _planned(guard, _snapshot(0, 44.4))
    out = guard.screen(_snapshot(5, garbage), _model)
    assert out.planning.sessions[0].battery_temp_c is garbage or math.isnan(out.planning.sessions[0].battery_temp_c or 0)
    assert not out.distrusted
    assert _planned(guard, _snapshot(10, 43.9))[2] == 1  # still judged against 44.4


def test_a_reading_from_before_the_last_one_is_not_a_new_reading() -> None:
    guard = TempGuard()
    _planned(guard, _snapshot(0, 44.4, temp_at=_at(0)))
    assert _planned(guard, _snapshot(5, 44.4, temp_at=_at(5)))[2] == 0
    # An older reading arriving late: the newest still stands, and the fit does not learn from it.
    assert _planned(guard, _snapshot(10, 40.0, temp_at=_at(3))) == (44.4, None, 0)


def test_a_battery_without_a_thermal_model_is_not_screened() -> None:
    guard = TempGuard()
    out = guard.screen(_snapshot(0, 44.4), lambda _: ThermalModel.none())
    out = guard.screen(_snapshot(5, 30.0), lambda _: ThermalModel.none())
    assert out.planning.sessions[0].battery_temp_c == 30.0 and not out.distrusted


def test_the_plausible_range_widens_with_time_and_energy() -> None:
    before = Reading(NOW, 44.0, 0.0, 30.0)
    short = plausible_range_c(MODEL, before, Reading(_at(5), 0.0, 0.0, 30.0))
    long = plausible_range_c(MODEL, before, Reading(_at(60), 0.0, 0.0, 30.0))
    charged = plausible_range_c(MODEL, before, Reading(_at(5), 0.0, 10.0, 30.0))
    assert long[0] < short[0] and short[1] == pytest.approx(44.0 + TOLERANCE_C)
    assert charged[1] == pytest.approx(44.0 + TOLERANCE_C + 3 * 0.06 * 10.0)
