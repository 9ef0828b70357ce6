"""Sampled meter readings of an emulated station come every interval from the start of each transaction (OCPP 1.6
MeterValueSampleInterval), not from the station's start: a fleet started at once must not meter in lockstep.
The clock is driven by the test, so the figures do not depend on how busy the machine is."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from csms_adapter.emulator.clock import EmulatorClock
from csms_adapter.emulator.events import MeterReading
from csms_adapter.emulator.metering import MeterSchedule
from csms_adapter.emulator.plant import EVSpec
from csms_adapter.emulator.station import EmulatedCharger
from csms_adapter.tasks import cancel_and_wait
from optimizer.battery import Battery
from optimizer.domain import Charger

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


class DrivenClock(EmulatorClock):
    """Emulated time that moves only when the test says so; sleepers wake in order of their wake-up time."""

    def __init__(self) -> None:
        self.t_s = 0.0
        super().__init__(speed=1.0, start=T0, monotonic=lambda: self.t_s)

    async def sleep(self, emulated_s: float) -> None:
        wake_s = self.t_s + max(0.0, emulated_s)
        while self.t_s < wake_s - 1e-9:
            await asyncio.sleep(0)

    async def settle(self) -> None:
        for _ in range(5):  # let every woken task run to its next sleep
            await asyncio.sleep(0)

    async def run_for(self, seconds: float, step_s: float = 0.25) -> None:
        end_s = self.t_s + seconds
        while self.t_s < end_s - 1e-9:
            self.t_s = min(end_s, self.t_s + step_s)
            await self.settle()


def station(clock: EmulatorClock, connectors: int = 2) -> EmulatedCharger:
    charger = Charger(id="cp-meter", connectors=connectors, phases=3, phase_rotation=(), max_current_a=32.0,
                      min_current_a=6.0, max_power_kw=22.0, rate_unit=None, dc=False, efficiency=1.0, auth=None,
                      voltage_v=230.0)
    # Nothing listens on port 9: the station stays offline and keeps what it meters in its queue.
    return EmulatedCharger(charger, "ws://127.0.0.1:9/ocpp", clock, version="1.6", meter_interval_s=10.0)


def vehicle(tag: str) -> EVSpec:
    return EVSpec(tag, Battery(60.0, 22.0, knee_soc=0.8), soc=0.2)


def readings(charger: EmulatedCharger, connector_id: int) -> list[float]:
    """Emulated seconds since T0 of the sampled (not triggered) readings queued for ``connector_id``."""
    return [(event.sample.at - T0).total_seconds() for event, _ in charger._outbox
            if isinstance(event, MeterReading) and event.connector_id == connector_id and not event.triggered]


async def test_each_transaction_is_metered_every_interval_from_its_own_start() -> None:
    clock = DrivenClock()
    charger = station(clock)
    meter = asyncio.create_task(charger._meter_loop())
    try:
        await clock.run_for(3.0)
        await charger.plug_in(1, vehicle("A"))  # at 3 s
        await clock.run_for(4.0)
        await charger.plug_in(2, vehicle("B"))  # at 7 s
        await clock.run_for(36.0)  # to 43 s
        first, second = readings(charger, 1), readings(charger, 2)
        assert first == [13.0, 23.0, 33.0, 43.0]
        assert second == [17.0, 27.0, 37.0]
        await charger.unplug(1)  # at 43 s: its readings stop, the other transaction keeps its own phase
        await clock.run_for(10.0)
        assert readings(charger, 1) == first
        assert readings(charger, 2) == [17.0, 27.0, 37.0, 47.0]
    finally:
        await cancel_and_wait([meter])


async def test_stations_started_together_do_not_meter_in_lockstep() -> None:
    clock = DrivenClock()
    fleet = [station(clock, connectors=1) for _ in range(3)]
    meters = [asyncio.create_task(c._meter_loop()) for c in fleet]
    try:
        for k, charger in enumerate(fleet):
            await charger.plug_in(1, vehicle(f"V{k}"))  # vehicles arriving 2.5 s apart
            await clock.run_for(2.5)
        await clock.run_for(20.0)
        phases = {reading % 10.0 for charger in fleet for reading in readings(charger, 1)}
        assert phases == {0.0, 2.5, 5.0}
    finally:
        await cancel_and_wait(meters)


async def test_a_late_wake_up_takes_one_reading_not_a_burst_and_keeps_the_phase() -> None:
    clock = DrivenClock()
    charger = station(clock, connectors=1)
    meter = asyncio.create_task(charger._meter_loop())
    try:
        await charger.plug_in(1, vehicle("A"))  # at 0 s
        await clock.run_for(10.0)
        clock.t_s += 35.0  # the loop is held up for 35 s (an emulator process starved of CPU)
        await clock.settle()
        await clock.run_for(10.0)
        assert readings(charger, 1) == [10.0, 45.0, 50.0]  # 45: the late one; then back on the 10 s grid
    finally:
        await cancel_and_wait([meter])


async def test_interval_zero_sends_no_sampled_readings() -> None:
    clock = DrivenClock()
    charger = station(clock, connectors=1)
    charger.meter_interval_s = 0.0  # 1.6: no sampled data
    meter = asyncio.create_task(charger._meter_loop())
    try:
        await charger.plug_in(1, vehicle("A"))
        await clock.run_for(130.0, step_s=1.0)
        assert readings(charger, 1) == []
        assert charger.connectors[1].plant.updated_at >= T0 + timedelta(seconds=120)  # physics kept moving
    finally:
        await cancel_and_wait([meter])


def test_the_schedule_counts_each_transaction_from_its_start_and_forgets_ended_ones() -> None:
    schedule = MeterSchedule()
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    step = timedelta(seconds=10)
    running = {(1, "a"): t0, (2, "b"): t0 + timedelta(seconds=4)}
    assert schedule.due_now(running, t0 + timedelta(seconds=5), step) == []
    assert schedule.next_at(t0 + timedelta(seconds=5), step) == t0 + step  # the first of the two
    assert schedule.due_now(running, t0 + step, step) == [(1, "a")]
    assert schedule.due_now(running, t0 + timedelta(seconds=14), step) == [(2, "b")]
    # Held up for 35 s: each is taken once, late, and next due on its own grid after now.
    late = t0 + timedelta(seconds=49)
    assert schedule.due_now(running, late, step) == [(1, "a"), (2, "b")]
    assert schedule.next_at(late, step) == t0 + timedelta(seconds=50)
    # Transaction b ended: it is no longer due; with nothing running, look again an interval later.
    assert schedule.due_now({(1, "a"): t0}, t0 + timedelta(seconds=49.5), step) == []
    assert schedule.due_now({}, t0 + timedelta(seconds=60), step) == []
    assert schedule.next_at(t0 + timedelta(seconds=60), step) == t0 + timedelta(seconds=70)
