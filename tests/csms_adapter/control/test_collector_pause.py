"""The garbage collector is held off while a dispatch burst is in flight and comes back after it, however the
burst ends; a collector that was off stays off."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from live_site import make_site

from csms_adapter.control.collector_pause import collections_paused
from csms_adapter.control.dispatch import Dispatcher, Outcome
from csms_adapter.control.live_state import LiveState
from csms_adapter.errors import ChargerTimeout
from csms_adapter.protocol import events as ev
from csms_adapter.protocol.link import Capabilities
from optimizer.domain import ConnectorPlan, Plan, PlanStatus, RateUnit, ValueSource

T0 = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    gc.enable()
    yield
    gc.enable()


def test_pauses_overlap_and_the_collector_returns_when_the_last_ends() -> None:
    first, second = collections_paused(), collections_paused()
    first.__enter__()
    second.__enter__()
    assert not gc.isenabled()
    first.__exit__(None, None, None)  # the first to begin ends first: the second still holds the collector off
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_the_collector_returns_after_an_exception() -> None:
    with pytest.raises(RuntimeError), collections_paused():
        assert not gc.isenabled()
        raise RuntimeError("a call failed")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with collections_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


class WatchingLink:
    """Accepts profiles after a short wait and notes whether the collector was on at each call; may time out."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.collector_on: list[bool] = []
        self.fail = fail

    @property
    def connected(self) -> bool:
        return True

    async def set_tx_limit(self, connector_id: int, limit: float, unit: RateUnit, phases: int, valid_s: float,
                           transaction_id: str, now: datetime) -> None:
        self.collector_on.append(gc.isenabled())
        await asyncio.sleep(0.01)
        if self.fail is not None:
            raise self.fail

    async def set_live_station_max(self, limit: float, unit: RateUnit, phases: int, valid_s: float,
                                   now: datetime) -> None:
        self.collector_on.append(gc.isenabled())
        await asyncio.sleep(0.01)


def one_session_plan() -> Plan:
    cp = ConnectorPlan(charger_id="cp-a", connector_id=1, limit_kw=7.0, limit_a=10.1, phases=3, schedule_kw=(7.0,),
                       energy_needed_kwh=10, energy_planned_kwh=10, expected_soc_at_departure=0.8,
                       expected_max_temp_c=None, departure=T0, soc_source=ValueSource.ESTIMATED)
    return Plan(status=PlanStatus.OPTIMAL, strategy="test", time=T0, step_s=900, schedule_step_s=(900,),
                connectors=(cp,))


@pytest.mark.parametrize("fail", [None, ChargerTimeout("cp-a", "SetChargingProfile", "no answer")])
async def test_a_dispatch_runs_with_the_collector_paused_and_gives_it_back(fail: Exception | None) -> None:
    site = make_site()
    live = LiveState(site, {})
    live.apply(ev.ChargerConnected("cp-a", "1.6", T0))
    live.charger("cp-a").set_up = True
    live.apply(ev.TransactionStarted("cp-a", 1, "7", None, 0.0, T0))
    link = WatchingLink(fail)
    dispatcher = Dispatcher(site, live, {"cp-a": link}, {"cp-a": Capabilities()})  # type: ignore[dict-item]
    report = await dispatcher.dispatch(one_session_plan(), T0)
    assert report.count(Outcome.TIMEOUT if fail else Outcome.ACCEPTED) == 1
    assert link.collector_on == [False, False]  # the live station max and the TxProfile
    assert gc.isenabled()
    # The load benchmark's comparison switch: the same dispatch with the collector left running.
    dispatcher.pause_collector = False
    await dispatcher.dispatch(one_session_plan(), T0 + timedelta(seconds=600))
    assert link.collector_on[2:] == [True, True]


async def test_a_cancelled_dispatch_gives_the_collector_back() -> None:
    site = make_site()
    live = LiveState(site, {})
    live.apply(ev.ChargerConnected("cp-a", "1.6", T0))
    live.charger("cp-a").set_up = True
    live.apply(ev.TransactionStarted("cp-a", 1, "7", None, 0.0, T0))
    started = asyncio.Event()

    class HangingLink(WatchingLink):
        async def set_live_station_max(self, limit: float, unit: RateUnit, phases: int, valid_s: float,
                                       now: datetime) -> None:
            started.set()
            await asyncio.sleep(60)

    dispatcher = Dispatcher(site, live, {"cp-a": HangingLink()}, {"cp-a": Capabilities()})  # type: ignore[dict-item]
    task = asyncio.create_task(dispatcher.dispatch(one_session_plan(), T0))
    await asyncio.wait_for(started.wait(), 5)
    assert not gc.isenabled()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert gc.isenabled()
