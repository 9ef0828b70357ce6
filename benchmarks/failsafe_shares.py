"""Print each site's fail-safe shares (what the chargers may draw with the controller gone), per unit assumption.

    python -m benchmarks.failsafe_shares site_configs/*.yaml

For every site: the EV budget (lowest import limit of the day minus base load), the sum of the station shares, and
the smallest and largest share, with the fail-safe counted at its worst phase (docs/safety-phases.md) for the
chargers' units as the site file gives them (unknown counts as W), and as if every AC charger took A.
"""

from __future__ import annotations

import sys
from pathlib import Path

from csms_adapter.control.failsafe import FailsafeShare, compute_shares, worst_case_ev_budget_kw
from optimizer.domain import RateUnit, Site
from optimizer.site_loader import load_site


def _summary(shares: dict[str, FailsafeShare]) -> str:
    kws = [s.station_kw for s in shares.values()]
    return f"sum {sum(kws):8.2f} kW  min {min(kws):6.2f}  max {max(kws):6.2f}"


def report(site: Site) -> list[str]:
    as_given = compute_shares(site)
    all_amps = compute_shares(site, units={c.id: RateUnit.AMPS for c in site.chargers if not c.dc})
    return [
        f"{site.name}: {len(site.chargers)} chargers, EV budget {worst_case_ev_budget_kw(site):.2f} kW",
        f"  units as in the file (unknown = W): {_summary(as_given)}",
        f"  every AC charger in A:              {_summary(all_amps)}",
    ]


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    for path in argv:
        print("\n".join(report(load_site(Path(path)))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
