"""At most ``max_concurrent`` chargers run their set-up steps at once (a boot storm's set-up calls must not crowd
out the chargers' own messages); the others wait for a slot, in turn, and all get set up."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from live_site import make_site

from csms_adapter.control.charger_setup import ChargerSetup, Step
from csms_adapter.control.live_state import LiveState


class FakeKeeper:
    def setting_up(self, charger_id: str) -> None:
        pass

    def set_up_done(self, charger_id: str) -> None:
        pass


class HeldLink:
    """A charger whose status resync answers only when the test lets it."""

    ocpp_version = "1.6"
    connected = True

    def __init__(self, charger_id: str, started: list[str]) -> None:
        self.charger_id = charger_id
        self.started = started
        self.answer = asyncio.Event()

    async def trigger_status(self) -> None:
        self.started.append(self.charger_id)
        await self.answer.wait()


async def test_set_ups_beyond_the_limit_wait_for_a_slot_and_all_complete() -> None:
    site = make_site()
    started: list[str] = []
    ready: list[str] = []
    setup = ChargerSetup(site, LiveState(site, {}), {}, FakeKeeper(),  # type: ignore[arg-type]
                         clock=lambda: datetime.now(UTC), publish=lambda _e: None, ready=ready.append,
                         boot_wait_s=0.0, max_concurrent=1)
    links = [HeldLink("cp-a", started), HeldLink("cp-b", started)]
    runs = [asyncio.create_task(setup._run(link, "reconnect", (Step.STATUS_RESYNC,)))  # type: ignore[arg-type]
            for link in links]
    async with asyncio.timeout(5):
        while not started:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    assert started == ["cp-a"] and setup.waiting == 1  # cp-b waits: one slot only
    links[0].answer.set()
    async with asyncio.timeout(5):
        while len(started) < 2:
            await asyncio.sleep(0.01)
    assert ready == ["cp-a"] and setup.waiting == 0
    links[1].answer.set()
    async with asyncio.timeout(5):
        await asyncio.gather(*runs)
    assert ready == ["cp-a", "cp-b"] and setup.in_progress == 0


async def test_a_charger_waiting_for_a_slot_can_be_cancelled() -> None:
    site = make_site()
    started: list[str] = []
    setup = ChargerSetup(site, LiveState(site, {}), {}, FakeKeeper(),  # type: ignore[arg-type]
                         clock=lambda: datetime.now(UTC), publish=lambda _e: None, ready=lambda _c: None,
                         boot_wait_s=0.0, max_concurrent=1)
    first, second = HeldLink("cp-a", started), HeldLink("cp-b", started)
    running = asyncio.create_task(setup._run(first, "reconnect", (Step.STATUS_RESYNC,)))  # type: ignore[arg-type]
    waiting = asyncio.create_task(setup._run(second, "reconnect", (Step.STATUS_RESYNC,)))  # type: ignore[arg-type]
    await asyncio.sleep(0.1)
    assert setup.waiting == 1
    await setup.close()  # the controller stops: both end, the waiting one without ever starting
    assert running.cancelled() and waiting.cancelled()
    assert started == ["cp-a"] and setup.waiting == 0 and setup.in_progress == 0
