"""The vehicle-limit inference shared by the live controller and the benchmark plant."""

from __future__ import annotations

from datetime import timedelta

import pytest

from optimizer.vehicle_limit import FALLING_HEADROOM, PROBE_KW, VehicleLimit, infer_vehicle_limit
from tests.optimizer.helpers import NOW

HELD = VehicleLimit(3.06, NOW)
FULL = VehicleLimit(0.0, NOW)


@pytest.mark.parametrize(
    ("previous", "allowed_kw", "drawn_kw", "minutes", "expected"),
    [
        (None, 11.0, 10.5, 1, None),  # follows its limit
        (None, 11.0, 3.0, 1, VehicleLimit(3.06, NOW + timedelta(minutes=1))),  # clearly under it
        (None, 0.3, 0.0, 1, None),  # a limit this small says nothing
        (HELD, 3.0, 2.9, 5, HELD),  # planned at what it takes, takes it: nothing new
        (HELD, 0.0, 0.0, 5, HELD),  # planned at 0 (the site is full, or it is full): still remembered
        (HELD, 3.0, 2.95, 5, None),  # ≥ 98 % of what it is allowed: it may want more
        (HELD, 11.0, 2.0, 5, VehicleLimit(2.04, NOW)),  # offered more, took less: lower, same re-probe clock
        (HELD, None, None, 5, HELD),  # no command old enough to judge
        (FULL, 0.0, 0.0, 29, FULL),
        (FULL, 0.0, 0.0, 31, VehicleLimit(PROBE_KW, NOW + timedelta(minutes=31))),  # re-probe: offered 2 kW
        (HELD, 0.0, 0.0, 31, VehicleLimit(3.06, NOW + timedelta(minutes=31))),  # never less than it had
        (VehicleLimit(PROBE_KW, NOW), 4.1, 0.0, 1, VehicleLimit(0.0, NOW)),  # commanded its minimum, took 0
    ],
)
def test_inference(previous: VehicleLimit | None, allowed_kw: float | None, drawn_kw: float | None, minutes: int,
                   expected: VehicleLimit | None) -> None:
    got = infer_vehicle_limit(previous, allowed_kw, drawn_kw, NOW + timedelta(minutes=minutes))
    if expected is None:
        assert got is None
    else:
        assert got is not None and got.since == expected.since
        assert got.limit_kw == pytest.approx(expected.limit_kw)



def _follow(previous: VehicleLimit | None, allowed_kw: float, drawn_kw: float, minute: int) -> VehicleLimit | None:
    return infer_vehicle_limit(previous, allowed_kw, drawn_kw, NOW + timedelta(minutes=minute))


def test_a_tapering_vehicle_is_planned_where_its_draw_will_be_not_where_it_was() -> None:
    # A taper above the knee: 22 kW offered, the vehicle draws 19.3, then 16.6 (it falls by 0.86 per look).
    first = _follow(None, 22.0, 19.3, 5)
    assert first is not None and first.limit_kw == pytest.approx(19.3 * 1.02)
    second = _follow(first, first.limit_kw, 16.6, 10)
    assert second is not None
    # carried one look further down (16.6 × 0.86), with a little headroom: not 16.9 kW for a 14.3 kW draw
    assert second.limit_kw == pytest.approx(16.6 * (16.6 / 19.3) * FALLING_HEADROOM)
    assert second.limit_kw < 16.6


def test_a_fall_caused_by_a_lower_offer_is_not_carried_forward() -> None:
    held = VehicleLimit(11.2, NOW, 11.0)
    got = _follow(held, 6.0, 2.0, 5)  # offered less than it drew before: the offer, not the vehicle, fell
    assert got is not None and got.limit_kw == pytest.approx(2.0 * 1.02)


def test_a_steady_onboard_limit_stays_remembered_when_the_vehicle_takes_all_of_it() -> None:
    # 7.0 kW onboard charger: planned at 7.14, commanded 7.1 after rounding, draws 7.0 (98.6 %) every look.
    memory = VehicleLimit(7.14, NOW, 7.0)
    for minute in (5, 10, 15, 20):
        got = _follow(memory, 7.1, 7.0, minute)
        assert got is not None and got.limit_kw == pytest.approx(7.14)
        memory = got


def test_a_vehicle_that_takes_its_headroom_or_more_than_a_steep_prediction_is_lifted() -> None:
    memory = VehicleLimit(7.14, NOW, 7.0)
    assert _follow(memory, 7.14, 7.14, 5) is None  # took the headroom: it wants more
    predicted_too_steep = VehicleLimit(8.0, NOW, 10.0)
    assert _follow(predicted_too_steep, 8.0, 8.0, 5) is None  # took all of an offer below its last draw


def test_taking_all_of_an_offer_below_the_memory_says_nothing() -> None:
    memory = VehicleLimit(11.2, NOW, 11.0)
    assert _follow(memory, 5.0, 5.0, 5) == memory  # a congested site gave it 5 kW; its 11 kW limit stands
