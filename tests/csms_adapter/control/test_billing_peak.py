"""The billing-period peak the live controller hands the LP (``Snapshot.peak_so_far_kw``)."""

from __future__ import annotations

from datetime import UTC, datetime

from csms_adapter.control.billing_peak import BillingPeak
from tests.optimizer.helpers import site_section, site_with

AMSTERDAM = site_section(timezone="Europe/Amsterdam", base_load={"profile_kw": [float(h) for h in range(24)]})


def test_the_peak_holds_within_a_month_of_site_time_and_starts_again_with_the_next() -> None:
    site = site_with(site=AMSTERDAM)
    peak = BillingPeak(site)
    assert peak.observe(datetime(2026, 11, 30, 12, 0, tzinfo=UTC), 40.0, 5.0) == 45.0
    assert peak.observe(datetime(2026, 11, 30, 13, 0, tzinfo=UTC), 10.0, 5.0) == 45.0  # lower: the peak stands
    # 23:30 UTC on 30 November is already 1 December in Amsterdam: a new billing period
    assert peak.observe(datetime(2026, 11, 30, 23, 30, tzinfo=UTC), 12.0, 3.0) == 15.0


def test_without_a_measured_base_load_the_sites_profile_is_added() -> None:
    site = site_with(site=AMSTERDAM)
    at_noon = datetime(2026, 11, 30, 11, 0, tzinfo=UTC)  # 12:00 in Amsterdam
    assert BillingPeak(site).observe(at_noon, 20.0, None) == 32.0  # the profile's 12 kW at local noon
