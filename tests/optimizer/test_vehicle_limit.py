"""The vehicle-limit inference shared by the live controller and the benchmark plant."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from optimizer.vehicle_limit import PROBE_KW, Observation, VehicleLimit, infer_vehicle_limit, takes_clearly_less
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
        (HELD, 2.95, 2.95, 5, None),  # all of a command within rounding of what it was seen to take: the same
        (HELD, 2.0, 2.0, 5, HELD),  # all of a command below what it was seen to take: nothing about more
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



@pytest.mark.parametrize(
    ("previous", "before", "allowed_kw", "drawn_kw", "expected_kw"),
    [
        # Held at its own limit and drawing less than before: a taper, which goes on falling by the same share.
        (VehicleLimit(6.31, NOW), Observation(7.38, 6.51), 6.28, 6.18, 6.18 * (6.18 / 6.51) * 1.02),
        # A steady command, a draw falling by 5 % in one interval while still above 90 % of it: a taper begins.
        (None, Observation(7.38, 7.22), 7.38, 6.86, 6.86 * (6.86 / 7.22) * 1.02),
        # Full at its target a third into the interval: what it will draw next is far below this interval's mean.
        (None, Observation(11.0, 11.0), 11.0, 4.0, 4.0 * (4.0 / 11.0) * 1.02),
        # Its command was lowered and it follows it: not a fall.
        (None, Observation(22.0, 22.0), 11.0, 11.0, None),
        # Offered more than before: a draw at its onboard limit is not a fall.
        (None, Observation(7.5, 7.4), 22.0, 7.4, 7.4 * 1.02),
        # Within a meter's noise of what it drew before: not a fall, and a vehicle at 99 % of its limit is lifted.
        (None, Observation(11.0, 11.0), 11.0, 10.9, None),
        (VehicleLimit(7.55, NOW), Observation(7.55, 7.4), 7.55, 7.45, None),
        # An earlier draw the meter could not give (NaN, negative, tiny) says nothing about a fall.
        (None, Observation(11.0, math.nan), 11.0, 4.0, 4.0 * 1.02),
        (None, Observation(11.0, -3.0), 11.0, 4.0, 4.0 * 1.02),
        (None, Observation(0.3, 0.3), 0.3, 0.1, None),
    ],
)
def test_falling_draw_is_extrapolated(previous: VehicleLimit | None, before: Observation, allowed_kw: float,
                                      drawn_kw: float, expected_kw: float | None) -> None:
    got = infer_vehicle_limit(previous, allowed_kw, drawn_kw, NOW + timedelta(minutes=5), before)
    if expected_kw is None:
        assert got is None
    else:
        assert got is not None and got.limit_kw == pytest.approx(expected_kw)
        assert got.since == (previous.since if previous is not None else NOW + timedelta(minutes=5))


def test_a_taper_held_below_its_limit_keeps_its_memory_until_it_is_offered_it_again() -> None:
    # A tapering vehicle planned at 6.12 kW; the site fills and it is commanded 4 kW for three intervals, which it
    # takes (its taper is still above 4 kW). That says nothing about whether it would take more than 6.12 kW: it is
    # still planned there (lifting the memory offered it its nameplate, and a tapering vehicle left most of that unused).
    limit = VehicleLimit(6.12, NOW)
    before = Observation(11.0, 6.0)
    for minutes in (5, 10, 15):
        got = infer_vehicle_limit(limit, 4.0, 4.0, NOW + timedelta(minutes=minutes), before)
        assert got == limit
        before = Observation(4.0, 4.0)
    # Offered its limit again, it takes less: its taper went on meanwhile, and that is what it is planned at now.
    lower = infer_vehicle_limit(limit, 6.12, 5.1, NOW + timedelta(minutes=20), before)
    assert lower is not None and lower.limit_kw == pytest.approx(5.1 * 1.02) and lower.since == NOW
    # Offered its limit and taking all of it, it may want more: lifted, as before.
    assert infer_vehicle_limit(limit, 6.12, 6.12, NOW + timedelta(minutes=20), before) is None


@pytest.mark.parametrize(("allowed_kw", "drawn_kw"), [(math.nan, 0.0), (-4.0, 0.0), (0.0, 0.0), (4.1, math.nan),
                                                    (math.inf, 4.1), (4.1, -math.inf)])
def test_a_reading_or_command_that_says_nothing_keeps_the_memory(allowed_kw: float, drawn_kw: float) -> None:
    # Nothing allowed, or a value no command or meter can give: no evidence either way, so a full vehicle stays full
    # (a NaN draw used to count as 0 kW, a non-finite command lifted the memory).
    got = infer_vehicle_limit(FULL, allowed_kw, drawn_kw, NOW + timedelta(minutes=5), Observation(4.1, 0.0))
    assert got == FULL
    assert infer_vehicle_limit(HELD, allowed_kw, drawn_kw, NOW + timedelta(minutes=5), Observation(3.0, 3.0)) == HELD


@pytest.mark.parametrize(
    ("allowed_kw", "drawn_kw", "expected"),
    [
        (11.0, 0.0, True),  # nothing of it: full
        (22.0, 7.8, True),  # lifted to its nameplate in its taper
        (11.0, 9.8, True),  # under 90 %
        (11.0, 10.0, False),  # following it
        (4.1, 0.4, True),  # a probe at the minimum current, refused
        (0.3, 0.0, False),  # an offer this small says nothing
        (11.0, math.nan, False),  # a draw that is no number is no evidence
        (math.nan, 0.0, False),
    ],
)
def test_takes_clearly_less(allowed_kw: float, drawn_kw: float, expected: bool) -> None:
    assert takes_clearly_less(allowed_kw, drawn_kw) is expected
