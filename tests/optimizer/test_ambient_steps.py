"""The ambient of each step of a plan never understates the air over that step: the warmer of the forecast's
samples around the step (optimizer.ambient.warmest_over_steps), for the site series of every plan, and a live
reading's forecast moved onto the tick's hours the same way. Garbage is refused as before."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.ambient import AmbientReading, ambient_now, warmest_over_steps
from optimizer.domain import Snapshot
from optimizer.errors import SnapshotError
from optimizer.horizon import build_horizon, site_series
from optimizer.site_loader import parse_site
from optimizer.snapshot_io import snapshot_from_json
from tests.optimizer.test_site_loader import GOOD

NOW = datetime(2026, 7, 1, 14, 30, tzinfo=UTC)
SITE = parse_site(GOOD.replace("  timezone: UTC\n", "  timezone: UTC\n  ambient: {c: 20, max_age_s: 7200}\n"),
                  "depot.yaml")


def steps_of(forecast: tuple[float, ...], span_h: float = 24.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start_h, end_h, ambient_c) of the default horizon of a plan made with ``forecast``."""
    horizon = build_horizon(NOW, 5.0, span_h, 24.0, uniform=False)
    series = site_series(SITE, Snapshot(time=NOW, ambient_c=forecast[0], ambient_forecast_c=forecast), horizon)
    return horizon.start_h, horizon.start_h + horizon.length_h, series.ambient_c


def test_rising_forecast_each_step_takes_the_warmer_sample_after_it() -> None:
    forecast = tuple(30.0 + h for h in range(30))
    _, end, ambient = steps_of(forecast)
    # The first 5 minutes may already be in the next hour's air (the change can come any time before 1 h).
    assert ambient[0] == 31.0
    # Every step plans with the sample at or after its end: the warmest the air can be by then.
    assert np.array_equal(ambient, 30.0 + np.ceil(end - 1e-9))
    assert (ambient >= 30.0 + end - 1e-9).all()  # never below the interpolated air at the step's end


def test_falling_forecast_each_step_takes_the_sample_at_or_before_its_start() -> None:
    forecast = tuple(50.0 - h for h in range(30))
    start, _, ambient = steps_of(forecast)
    assert ambient[0] == 50.0
    assert np.array_equal(ambient, 50.0 - np.floor(start + 1e-9))


def test_a_step_straddling_samples_takes_the_warmest_of_all_around_it() -> None:
    forecast = (30.0, 35.0, 31.0, 29.0)
    # [0.5, 1.5) has samples 0 and 2 around it and sample 1 inside: the warm hour in the middle counts.
    got = warmest_over_steps(forecast, np.array([0.5, 2.0, 2.5]), np.array([1.0, 1.0, 0.25]))
    assert got.tolist() == [35.0, 31.0, 31.0]
    # Steps whose ends are a rounding error off the hour (sums of 5-minute lengths) are read as on it: [1, 2)
    # has samples 1 and 2 around it, not 0 or 3.
    hot_ends = (40.0, 31.0, 32.0, 40.0)
    on_hour = warmest_over_steps(hot_ends, np.array([1.0 - 1e-12, 1.0 + 1e-12]), np.array([1.0 + 1e-12, 1.0 - 1e-12]))
    assert on_hour.tolist() == [32.0, 32.0]


def test_a_one_point_forecast_holds_for_the_whole_horizon() -> None:
    start, _, ambient = steps_of((33.0,))
    assert ambient.size == start.size and (ambient == 33.0).all()
    assert warmest_over_steps((33.0,), np.array([0.0, 40.0]), np.array([2.0, 2.0])).tolist() == [33.0, 33.0]


def test_beyond_the_forecast_the_last_sample_holds() -> None:
    got = warmest_over_steps((30.0, 32.0, 34.0), np.array([1.5, 2.0, 10.0]), np.array([1.0, 0.5, 2.0]))
    assert got.tolist() == [34.0, 34.0, 34.0]


@settings(max_examples=200, deadline=None)
@given(
    samples=st.lists(st.floats(-40.0, 60.0), min_size=1, max_size=8),
    changes=st.lists(st.floats(0.0, 1.0), min_size=8, max_size=8),
    start_h=st.floats(0.0, 9.0),
    length_h=st.floats(1e-3, 2.0),
)
def test_never_below_air_that_changes_once_between_samples(
    samples: list[float], changes: list[float], start_h: float, length_h: float
) -> None:
    """The air of hour j is sample j until ``changes[j]`` into the hour, then sample j + 1 (an hourly profile or
    the benchmark's day, at any phase): the step's value is never below the warmest air during the step."""
    last = len(samples) - 1
    end_h = start_h + length_h
    warmest = -math.inf
    for j in range(math.floor(start_h), math.ceil(end_h)):
        lo, hi = max(start_h, j), min(end_h, j + 1)
        if lo >= hi:
            continue
        change = j + changes[min(j, 7)]
        if lo < change:
            warmest = max(warmest, samples[min(j, last)])
        if hi > change:
            warmest = max(warmest, samples[min(j + 1, last)])
    got = float(warmest_over_steps(samples, np.array([start_h]), np.array([length_h]))[0])
    assert got >= warmest
    assert got <= max(samples)  # and never warmer than any sample says


def test_a_live_rising_forecast_is_moved_onto_the_ticks_hours_on_the_warm_side() -> None:
    reading = AmbientReading(30.0, NOW, (30.0, 32.0, 34.0, 36.0))
    amb = ambient_now(SITE, NOW + timedelta(minutes=40), reading)
    # Sample k is now + k h = 40 min past the reading's hour k: the warmer of the reading's samples k and k + 1.
    assert amb.ambient_c == 30.0 and amb.forecast_c == (30.0, 34.0, 36.0, 36.0)
    on_hour = ambient_now(SITE, NOW + timedelta(hours=1), reading)  # on the reading's hour: its samples as they are
    assert on_hour.forecast_c == (30.0, 34.0, 36.0)


def test_a_live_falling_forecast_is_read_as_before() -> None:
    reading = AmbientReading(40.0, NOW, (40.0, 38.0, 35.0, 30.0))
    assert ambient_now(SITE, NOW + timedelta(minutes=70), reading).forecast_c == (40.0, 35.0, 30.0)
    assert ambient_now(SITE, NOW + timedelta(minutes=190), reading).forecast_c == ()  # nothing left after now


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_forecast_sample_that_is_not_a_number_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="sample 1"):
        warmest_over_steps((30.0, bad, 31.0), np.array([0.0]), np.array([1.0]))
    with pytest.raises(SnapshotError, match=r"ambient_forecast_c\.1"):
        snapshot_from_json({"time": NOW.isoformat(), "ambient_forecast_c": [30.0, bad]}, SITE)


def test_an_empty_or_missing_forecast_means_the_ambient_now_for_every_step() -> None:
    with pytest.raises(ValueError, match="at least one sample"):
        warmest_over_steps((), np.array([0.0]), np.array([1.0]))
    for data in ({"time": NOW.isoformat(), "ambient_c": 27.0},
                 {"time": NOW.isoformat(), "ambient_c": 27.0, "ambient_forecast_c": []}):
        snapshot = snapshot_from_json(data, SITE)
        horizon = build_horizon(NOW, 5.0, 12.0, 24.0, uniform=False)
        assert (site_series(SITE, snapshot, horizon).ambient_c == 27.0).all()
    with pytest.raises(SnapshotError, match="ambient_forecast_c"):
        snapshot_from_json({"time": NOW.isoformat(), "ambient_forecast_c": ["warm"]}, SITE)
