"""The rate limit on ticks brought forward for stopped vehicles (csms_adapter.control.stop_ticks), on a real event loop
with a site clock running 100 times faster than the wall: the assertions compare site-clock times, which hold on a
loaded machine (the loop may fire late, never early)."""

from __future__ import annotations

import asyncio
import itertools
import logging
from datetime import datetime, timedelta

import pytest
from polling import eventually
from test_live_state import T0

from csms_adapter.control.stop_ticks import StopTicks, min_gap_s
from csms_adapter.control.vehicle_stops import VehicleStop

SPEED = 100.0
GAP_S = 60.0  # site seconds: 0.6 s of wall time


class Depot:
    """A site clock at SPEED and a control loop that only records when ticks were asked for and when they ran."""

    def __init__(self, confirm_s: float = 0.0) -> None:
        self.t0 = asyncio.get_running_loop().time()
        self.started: datetime | None = None
        self.requests: list[tuple[datetime, str]] = []
        self.stops: list[datetime] = []
        self.ticks = StopTicks(self.request, lambda: self.started, self.now, min_gap_s=GAP_S, confirm_s=confirm_s,
                               real_per_site_s=1.0 / SPEED)

    def now(self) -> datetime:
        return T0 + timedelta(seconds=(asyncio.get_running_loop().time() - self.t0) * SPEED)

    def request(self, reason: str) -> None:
        self.requests.append((self.now(), reason))

    def tick(self) -> None:
        self.started = self.now()

    def stop(self, charger_id: str, connector_id: int = 1) -> None:
        self.stops.append(self.now())
        self.ticks.stopped(VehicleStop(charger_id, connector_id, self.now(), "meter"))


@pytest.mark.parametrize(("interval_s", "meter_interval_s", "gap_s"), [
    (300, 10, 60.0),  # a fifth of the interval
    (10, 1, 5.0),  # at least 5 s
    (60, 15, 30.0),  # at least the two meter intervals the memory waits before judging a draw
])
def test_the_gap_is_a_fifth_of_the_interval_at_least_5_s_and_two_meter_intervals(
        interval_s: float, meter_interval_s: float, gap_s: float) -> None:
    assert min_gap_s(interval_s, meter_interval_s) == gap_s


async def test_a_stop_long_after_the_last_tick_asks_for_one_at_once(caplog: pytest.LogCaptureFixture) -> None:
    depot = Depot()
    depot.tick()
    await asyncio.sleep(GAP_S / SPEED * 1.2)
    with caplog.at_level(logging.INFO, logger="depotctl.control"):
        depot.stop("cp-a", 2)
    assert len(depot.requests) == 1 and "cp-a/2" in depot.requests[0][1]
    assert [r.getMessage() for r in caplog.records] == ["tick brought forward: vehicle stopped drawing at cp-a/2"]
    assert depot.ticks.waiting == ()


async def test_stops_soon_after_a_tick_wait_for_the_gap_and_share_one_tick(caplog: pytest.LogCaptureFixture) -> None:
    depot = Depot()
    depot.tick()
    ticked_at = depot.started
    assert ticked_at is not None
    with caplog.at_level(logging.INFO, logger="depotctl.control"):
        depot.stop("cp-b")
        await asyncio.sleep(0.1)
        depot.stop("cp-a", 2)
        depot.stop("cp-b")  # the same connector again: one entry
        assert depot.requests == [] and depot.ticks.waiting == ("cp-a/2", "cp-b/1")
        await eventually(lambda: len(depot.requests) == 1)
    asked_at, reason = depot.requests[0]
    assert asked_at - ticked_at >= timedelta(seconds=GAP_S)  # never earlier than the gap after the last tick
    assert "cp-a/2, cp-b/1" in reason
    assert [r.getMessage() for r in caplog.records] == [
        "tick brought forward: vehicle stopped drawing at cp-a/2, cp-b/1"]
    assert depot.ticks.brought_forward == 1


async def test_one_early_tick_per_gap_however_many_vehicles_stop() -> None:
    depot = Depot()
    depot.tick()
    for k in range(12):  # a vehicle stops every 15 site seconds over three minutes; each requested tick runs
        depot.stop(f"cp-{k}")
        if depot.requests and (depot.started is None or depot.started < depot.requests[-1][0]):
            depot.tick()
        await asyncio.sleep(15.0 / SPEED)
    await eventually(lambda: depot.ticks.waiting == ())
    asked = [at for at, _ in depot.requests]
    span_s = (asked[-1] - T0).total_seconds() if asked else 0.0  # 180 s on a quiet machine, longer on a busy one
    assert 1 <= len(asked) <= span_s / GAP_S  # one per gap at most, the first a gap after the tick at T0
    assert all(later - earlier >= timedelta(seconds=GAP_S) for earlier, later in itertools.pairwise(asked))


async def test_the_tick_waits_a_meter_interval_after_the_first_stop_so_the_next_reading_confirms_it() -> None:
    depot = Depot(confirm_s=10.0)
    depot.tick()
    await asyncio.sleep(GAP_S / SPEED * 1.2)
    depot.stop("cp-a")
    assert depot.requests == [] and depot.ticks.waiting == ("cp-a/1",)
    await eventually(lambda: depot.requests)
    assert depot.requests[0][0] - depot.stops[0] >= timedelta(seconds=10.0)
    # Soon after a tick, the gap decides: confirmed well before it passes.
    depot.tick()
    ticked_at = depot.started
    assert ticked_at is not None
    depot.stop("cp-b")
    await eventually(lambda: len(depot.requests) == 2)
    assert depot.requests[1][0] - ticked_at >= timedelta(seconds=GAP_S)


async def test_a_tick_that_started_after_the_stop_needs_no_early_one() -> None:
    depot = Depot()
    depot.tick()
    depot.stop("cp-a")
    await asyncio.sleep(0.05)
    depot.tick()  # a periodic tick (or one for a plug-in) planned with the stop
    await asyncio.sleep(GAP_S / SPEED * 2.5)
    assert depot.requests == [] and depot.ticks.waiting == ()


async def test_a_second_stop_before_the_asked_tick_ran_asks_nothing_more() -> None:
    depot = Depot()
    depot.stop("cp-a")  # no tick yet: asked at once
    depot.stop("cp-b")  # the tick asked for has not started: it will see this stop too
    assert len(depot.requests) == 1
    depot.tick()
    await asyncio.sleep(GAP_S / SPEED * 1.5)
    assert len(depot.requests) == 1 and depot.ticks.waiting == ()


async def test_closed_it_asks_for_nothing() -> None:
    depot = Depot()
    depot.tick()
    depot.stop("cp-a")
    depot.ticks.close()
    depot.stop("cp-b")
    await asyncio.sleep(GAP_S / SPEED * 1.5)
    assert depot.requests == [] and depot.ticks.waiting == ()
