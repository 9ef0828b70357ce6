"""The site's highest power so far in the demand-charge billing period, for ``Snapshot.peak_so_far_kw``.

A demand charge bills the highest power of the period (a calendar month, in the site's time zone); power up to a
peak already reached costs nothing more. Without it the LP prices the peak from 0 at every tick and holds back
vehicles near their departure to keep a peak that has long been paid for (the benchmark's bus depot left 14 kWh
undelivered that way). The peak is the highest tick sample of measured EV power plus the base load. The
controller stores it whenever it rises and restores it at start (``restore``), so a restart within the billing
period does not price the peak from 0 again.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime

from optimizer.domain import Site


class BillingPeak:
    def __init__(self, site: Site) -> None:
        self._base_load = site.base_load
        self._tz = zoneinfo.ZoneInfo(site.timezone)
        self._period: tuple[int, int] | None = None
        self.peak_kw = 0.0

    def _period_at(self, now: datetime) -> tuple[int, int]:
        local = now.astimezone(self._tz)
        return local.year, local.month

    def period_of(self, now: datetime) -> str:
        """The billing period ``now`` falls in, as stored: local "YYYY-MM"."""
        year, month = self._period_at(now)
        return f"{year:04d}-{month:02d}"

    def restore(self, now: datetime, peak_kw: float) -> None:
        """Take back the peak stored for the period ``now`` falls in (kept if this run already saw more)."""
        period = self._period_at(now)
        if period != self._period:
            self._period, self.peak_kw = period, 0.0
        self.peak_kw = max(self.peak_kw, peak_kw)

    def observe(self, now: datetime, ev_kw: float, base_load_kw: float | None) -> float:
        """Record the EV power measured at ``now`` plus the base load (None: the site's profile); the peak of the
        billing period ``now`` falls in."""
        local = now.astimezone(self._tz)
        site_kw = ev_kw + (base_load_kw if base_load_kw is not None else self._base_load.at_hour(local.hour))
        period = (local.year, local.month)
        if period != self._period:
            self._period, self.peak_kw = period, 0.0
        self.peak_kw = max(self.peak_kw, site_kw)
        return self.peak_kw
