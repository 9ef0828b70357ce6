"""Ambient temperature: the site-file key (value or 24-hour profile), a live reading with its age, and garbage
refused naming the key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from optimizer.ambient import AmbientReading, AmbientSource, ambient_now
from optimizer.site_loader import parse_site
from tests.optimizer.test_site_loader import GOOD, problems_of

NOW = datetime(2026, 7, 1, 14, 30, tzinfo=UTC)


def test_site_file_value_is_used_without_a_reading() -> None:
    site = parse_site(GOOD.replace("  timezone: UTC\n", "  timezone: UTC\n  ambient: {c: 31}\n"), "depot.yaml")
    amb = ambient_now(site, NOW, None)
    assert amb.ambient_c == 31 and amb.forecast_c == () and amb.source == AmbientSource.SITE_FILE and amb.age_s is None


def test_profile_gives_an_hourly_forecast_in_local_time() -> None:
    profile = [float(h) for h in range(24)]
    text = GOOD.replace("  timezone: UTC\n", f"  timezone: Europe/Stockholm\n  ambient: {{profile_c: {profile}}}\n")
    site = parse_site(text, "depot.yaml")
    amb = ambient_now(site, NOW, None)
    assert amb.ambient_c == 16.0  # 14:30 UTC is 16:30 in Stockholm in summer
    assert amb.forecast_c[:3] == (16.0, 17.0, 18.0) and len(amb.forecast_c) == 48


def test_fresh_reading_wins_then_ages_out() -> None:
    site = parse_site(GOOD.replace("  timezone: UTC\n", "  timezone: UTC\n  ambient: {c: 20, max_age_s: 600}\n"),
                      "depot.yaml")
    reading = AmbientReading(35.0, NOW)
    fresh = ambient_now(site, NOW + timedelta(seconds=300), reading)
    assert fresh.ambient_c == 35.0 and fresh.source == AmbientSource.MEASURED and fresh.age_s == 300
    stale = ambient_now(site, NOW + timedelta(seconds=601), reading)
    assert stale.ambient_c == 20.0 and stale.source == AmbientSource.SITE_FILE
    future = ambient_now(site, NOW - timedelta(seconds=1), reading)  # a reading from the future is not trusted
    assert future.source == AmbientSource.SITE_FILE


@pytest.mark.parametrize(
    ("ambient", "key", "reason"),
    [
        ("{c: hot}", "site.ambient.c", "valid number"),
        ("{c: 90}", "site.ambient.c", "less than 70"),
        ("{c: .nan}", "site.ambient.c", "finite"),
        ("{profile_c: [20, 21]}", "site.ambient", "24 hourly values"),
        ("{c: 20, profile_c: [20]}", "site.ambient", "either c or profile_c"),
        ("{c: 20, max_age_s: 0}", "site.ambient.max_age_s", "greater than 0"),
        ("{celsius: 20}", "site.ambient.celsius", "unknown key"),
    ],
)
def test_garbage_ambient_key_is_refused_naming_it(ambient: str, key: str, reason: str) -> None:
    found = problems_of(GOOD.replace("  timezone: UTC\n", f"  timezone: UTC\n  ambient: {ambient}\n"))
    assert any(f": {key}: " in p and reason in p for p in found), found


@pytest.mark.parametrize(
    ("objective", "key"),
    [("{stress_high_soc: -1}", "control.objective.stress_high_soc"),
     ("{stress_temperature: 5}", "control.objective.stress_temperature"),
     ("{stress_temperature: lots}", "control.objective.stress_temperature")],
)
def test_garbage_stress_weight_is_refused_naming_it(objective: str, key: str) -> None:
    found = problems_of(GOOD + f"control:\n  objective: {objective}\n")
    assert any(f": {key}: " in p for p in found), found


def test_a_reading_with_a_forecast_drops_the_hours_already_past() -> None:
    site = parse_site(GOOD.replace("  timezone: UTC\n", "  timezone: UTC\n  ambient: {c: 20, max_age_s: 7200}\n"),
                      "depot.yaml")
    reading = AmbientReading(40.0, NOW, (40.0, 38.0, 35.0, 30.0))
    assert ambient_now(site, NOW, reading).forecast_c == (40.0, 38.0, 35.0, 30.0)
    later = ambient_now(site, NOW + timedelta(minutes=70), reading)
    assert later.ambient_c == 40.0 and later.forecast_c == (40.0, 35.0, 30.0)
