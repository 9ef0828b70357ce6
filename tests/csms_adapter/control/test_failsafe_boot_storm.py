"""A boot storm recomputes the fail-safe shares a few times, not once per charger (each recompute is O(chargers) on
the event loop), and never lets a share go out that counts its charger as landing more spread out than it can."""

from __future__ import annotations

import asyncio

from live_site import ENV, SITE_YAML

from csms_adapter.control.controller import Controller
from csms_adapter.control.failsafe import compute_shares
from csms_adapter.control.failsafe_keeper import REBALANCE_DELAY_S
from csms_adapter.protocol.link import Capabilities
from optimizer.domain import RateUnit
from optimizer.site_loader import parse_site

AMPS_ONLY = Capabilities(rate_units=frozenset({RateUnit.AMPS}))
WATTS_ONLY = Capabilities(rate_units=frozenset({RateUnit.WATTS}))


async def test_units_that_spread_shares_are_folded_into_one_later_recompute() -> None:
    site = parse_site(SITE_YAML, "test-site.yaml")  # rate_unit unset: each share counted as landing on one phase
    controller = Controller(site, env=ENV)
    keeper = controller.failsafe
    cautious = dict(keeper.shares)
    for charger_id in ("cp-a", "cp-b"):
        controller.capabilities[charger_id] = AMPS_ONLY
        keeper.unit_known(charger_id)
    assert keeper.recomputes == 0 and keeper.folding
    assert keeper.shares == cautious  # meanwhile the more cautious shares stay in force
    await asyncio.sleep(REBALANCE_DELAY_S + 0.2)
    assert keeper.recomputes == 1 and not keeper.folding
    expected = compute_shares(site, units={"cp-a": RateUnit.AMPS, "cp-b": RateUnit.AMPS})
    assert keeper.shares == expected
    assert expected["cp-a"].station_kw > cautious["cp-a"].station_kw  # the fold did raise them
    keeper.close()


async def test_a_unit_that_lets_a_share_land_on_one_phase_is_counted_at_once() -> None:
    site = parse_site(SITE_YAML, "test-site.yaml")
    controller = Controller(site, env=ENV)
    keeper = controller.failsafe
    controller.capabilities["cp-a"] = AMPS_ONLY
    keeper.unit_known("cp-a")
    await asyncio.sleep(REBALANCE_DELAY_S + 0.2)
    assert keeper.recomputes == 1
    spread = keeper.shares["cp-a"].station_kw
    # It reconnects saying it now takes W only (say, after a firmware update): its share may land on one phase.
    controller.capabilities["cp-a"] = WATTS_ONLY
    keeper.unit_known("cp-a")
    # Its own share is sent next in its set-up: it must already count that, not wait for the fold.
    assert keeper.recomputes == 2
    assert keeper.shares == compute_shares(site, units={"cp-a": RateUnit.WATTS})
    assert keeper.shares["cp-a"].station_kw < spread
    keeper.close()


async def test_close_drops_a_waiting_rebalance() -> None:
    controller = Controller(parse_site(SITE_YAML, "test-site.yaml"), env=ENV)
    controller.capabilities["cp-a"] = AMPS_ONLY
    controller.failsafe.unit_known("cp-a")
    controller.failsafe.close()
    await asyncio.sleep(REBALANCE_DELAY_S + 0.2)
    assert controller.failsafe.recomputes == 0
