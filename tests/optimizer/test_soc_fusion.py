"""The SoC fitted to many readings against the energy register (optimizer.soc_fusion)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optimizer.soc_fusion import MAX_READINGS, SocLine, SocTrack

LINE = SocLine(battery_kwh=60.0, efficiency=0.95, resolution=0.01)


def charged(true_soc0: float, readings: int, kwh_per_reading: float, sigma: float, seed: int,
            line: SocLine = LINE, true_slope: float | None = None) -> tuple[SocTrack, float, float]:
    """A track of ``readings`` noisy readings of a vehicle charging ``kwh_per_reading`` between two; returns the
    track, the register's last figure and the true SoC then."""
    rng = np.random.default_rng(seed)
    slope = line.slope_per_kwh if true_slope is None else true_slope
    track = SocTrack()
    delivered = 0.0
    for _ in range(readings):
        track = track.add(true_soc0 + slope * delivered + float(rng.normal(0.0, sigma)), delivered, line)
        delivered += kwh_per_reading
    delivered -= kwh_per_reading
    return track, delivered, true_soc0 + slope * delivered


def test_twenty_noisy_readings_fitted_are_twice_as_close_as_one() -> None:
    sigma = 0.002  # 0.12 kWh of a 60 kWh battery: more than the 0.1 kWh a met session may miss
    errors = []
    for seed in range(200):
        track, delivered, truth = charged(0.4, 20, 0.6, sigma, seed)
        fitted = track.estimate(delivered, LINE)
        assert fitted is not None and fitted.readings == 20
        errors.append(fitted.soc - truth)
    rms = math.sqrt(sum(e * e for e in errors) / len(errors))
    assert rms < sigma / 2  # a line free in slope is 2/√n of a reading at its end
    assert abs(sum(errors) / len(errors)) < sigma / 10  # no bias
    # The error it reports covers what it makes (it assumes a whole percent's rounding, more than this noise).
    track, delivered, truth = charged(0.4, 20, 0.6, sigma, 7)
    fitted = track.estimate(delivered, LINE)
    assert fitted is not None and rms <= fitted.error <= sigma


def test_the_slope_is_learnt_when_the_roster_capacity_is_wrong() -> None:
    # The battery is really 66 kWh; the roster says 60. Over 30 readings the line's slope follows the readings.
    true_slope = 0.95 / 66.0
    track, delivered, truth = charged(0.2, 30, 1.5, 0.001, 3, true_slope=true_slope)
    fitted = track.estimate(delivered, LINE)
    naive = 0.2 + LINE.slope_per_kwh * delivered  # the first reading advanced with the roster capacity
    assert fitted is not None
    assert abs(fitted.soc - truth) < abs(naive - truth) / 3


def test_a_whole_percent_repeated_at_rest_counts_once() -> None:
    track = SocTrack()
    for _ in range(30):
        track = track.add(0.47, 12.0, LINE)
    fitted = track.estimate(12.0, LINE)
    assert fitted is not None and fitted.readings == 1
    assert fitted.soc == pytest.approx(0.47) and fitted.error >= 0.01 / math.sqrt(12.0)


def test_a_jump_restarts_the_line_at_the_new_reading() -> None:
    track, delivered, _ = charged(0.3, 10, 1.0, 0.0, 0)
    # The BMS recalibrated: 6 points above the line.
    jumped = track.add(0.3 + LINE.slope_per_kwh * (delivered + 1.0) + 0.06, delivered + 1.0, LINE)
    assert len(jumped.readings) == 1
    fitted = jumped.estimate(delivered + 1.0, LINE)
    assert fitted is not None and fitted.soc == pytest.approx(0.3 + LINE.slope_per_kwh * (delivered + 1.0) + 0.06)


def test_a_register_going_backwards_restarts_and_garbage_is_ignored() -> None:
    track, delivered, _ = charged(0.3, 5, 1.0, 0.0, 0)
    assert len(track.add(0.4, delivered - 2.0, LINE).readings) == 1
    assert track.add(math.nan, delivered + 1.0, LINE) is track
    assert track.add(0.4, math.inf, LINE) is track
    assert track.add(7.0, delivered + 1.0, LINE).readings[-1].soc <= 1.0


def test_the_track_is_bounded_and_keeps_only_a_window_of_soc() -> None:
    track, _, _ = charged(0.0, 3 * MAX_READINGS, 0.1, 0.0, 0)
    assert len(track.readings) == MAX_READINGS
    wide, _, _ = charged(0.0, 40, 3.0, 0.0, 0)  # 40 readings over ~1.8 of a battery's SoC: only the last quarter
    span = wide.readings[-1].delivered_kwh - wide.readings[0].delivered_kwh
    assert span * LINE.slope_per_kwh <= 0.25 + 1e-9


def test_a_reading_repaired_with_the_register_of_its_moment() -> None:
    track = SocTrack().add(0.5, 10.0, LINE)
    assert track.repaired(10.4, LINE).readings[-1].delivered_kwh == 10.4
    assert SocTrack().repaired(3.0, LINE).readings == ()
    assert track.estimate(10.0, LINE) is not None
    assert SocTrack().estimate(10.0, LINE) is None


def test_the_fit_is_used_only_when_it_rests_on_more_than_one_distinct_reading() -> None:
    at_rest = SocTrack()
    for _ in range(5):
        at_rest = at_rest.add(0.47, 12.0, LINE)
    assert at_rest.estimate(12.0, LINE) is not None and at_rest.fitted(12.0, LINE) is None
    track, delivered, _ = charged(0.3, 4, 1.0, 0.0, 0)
    assert track.fitted(delivered, LINE) == track.estimate(delivered, LINE)
