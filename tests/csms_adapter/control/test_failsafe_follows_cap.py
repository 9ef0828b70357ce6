"""The fail-safe fits the lowest limit in force: an external import cap below the day's lowest limit lowers every
connected charger's station max at once (over real websockets), and lifting the cap gives the shares back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fake_chargers import Recorder, charger
from live_site import ENV, PASSWORD_A, make_site

from csms_adapter.control.controller import Controller
from csms_adapter.control.failsafe import compute_shares
from csms_adapter.control.operator_inputs import GridCap


async def tick_until(controller: Controller, done: Callable[[], bool]) -> None:
    """Tick until ``done``: a tick already running when we ask may have taken its snapshot before our change."""
    async with asyncio.timeout(10):
        while not done():
            await controller.loop.tick()
            await asyncio.sleep(0.05)


def station_limits_a(rec: Recorder) -> list[float]:
    out = []
    for call in rec.of("SetChargingProfile"):
        profile: dict[str, Any] = call["cs_charging_profiles"]
        if profile["charging_profile_purpose"] == "ChargePointMaxProfile" and profile["stack_level"] == 0:
            out.append(float(profile["charging_schedule"]["charging_schedule_period"][0]["limit"]))
    return out


async def test_a_lower_cap_lowers_the_station_max_and_lifting_it_restores_it() -> None:
    site = make_site()
    rec = Recorder()
    async with Controller(site, env=ENV, debounce_real_s=0.05) as controller, \
            charger(controller.url, "cp-a", PASSWORD_A, "1.6", rec) as cp:
        assert (await cp.boot()).status == "Accepted"
        await rec.wait_for(lambda: len(station_limits_a(rec)) >= 1)
        (base_a,) = station_limits_a(rec)
        async with asyncio.timeout(10):
            while not controller.live.charger("cp-a").failsafe_accepted:
                await asyncio.sleep(0.01)

        controller.live.inputs.set_grid_cap(GridCap(limit_kw=9.0, set_at=controller.clock(), reason="DSO"))
        await tick_until(controller, lambda: len(station_limits_a(rec)) >= 2)
        lowered_a = station_limits_a(rec)[1]
        capped = compute_shares(site, cap_kw=9.0)["cp-a"].station_kw
        assert lowered_a < base_a
        assert lowered_a * 230 * 3 / 1000 <= capped + 1e-6  # in A per phase: within the capped share
        async with asyncio.timeout(10):  # booked once the charger confirmed it (no further message to wait on)
            while controller.live.failsafe_kw["cp-a"] != controller.shares["cp-a"].station_kw:
                await asyncio.sleep(0.01)
        assert controller.live.failsafe_kw["cp-a"] <= capped

        await controller.loop.tick()  # the same cap again: nothing re-sent
        assert len(station_limits_a(rec)) == 2
        controller.live.inputs.set_grid_cap(None)
        await tick_until(controller, lambda: len(station_limits_a(rec)) >= 3)
        assert station_limits_a(rec)[2] == base_a
