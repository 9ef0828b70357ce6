"""The vehicle-limit inference shared by the live controller and the benchmark plant."""

from __future__ import annotations

from datetime import timedelta

import pytest

from optimizer.vehicle_limit import PROBE_KW, VehicleLimit, infer_vehicle_limit
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

