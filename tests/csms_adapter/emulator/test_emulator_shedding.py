"""Emulated stations in runs faster than real time drop a queued periodic reading once a newer one of the same
transaction is taken, so that transaction messages never wait behind readings the host could not send in time;
readings taken while offline are kept, as a charger keeps them for the CSMS. The clock is driven by the test."""

from __future__ import annotations

import asyncio

from test_emulator_metering import T0, DrivenClock, readings, vehicle

from csms_adapter.emulator.events import MeterReading, StatusChange, TransactionStarted
from csms_adapter.emulator.station import EmulatedCharger
from csms_adapter.tasks import cancel_and_wait
from optimizer.domain import Charger


def station(clock: DrivenClock, *, shed: bool) -> EmulatedCharger:
    charger = Charger(id="cp-shed", connectors=2, phases=3, phase_rotation=(), max_current_a=32.0,
                      min_current_a=6.0, max_power_kw=22.0, rate_unit=None, dc=False, efficiency=1.0, auth=None,
                      voltage_v=230.0)
    # Nothing listens on port 9 and no sender runs: what is queued stays queued.
    return EmulatedCharger(charger, "ws://127.0.0.1:9/ocpp", clock, version="1.6", meter_interval_s=10.0,
                           shed_superseded_readings=shed)


async def metered(charger: EmulatedCharger, clock: DrivenClock, *, online: bool) -> None:
    if online:
        charger.online.set()  # as if connected, with every message still waiting for its answer
    meter = asyncio.create_task(charger._meter_loop())
    try:
        await charger.plug_in(1, vehicle("A"))  # at 0 s
        await clock.run_for(5.0)
        await charger.plug_in(2, vehicle("B"))  # at 5 s
        await clock.run_for(40.0)  # to 45 s
    finally:
        await cancel_and_wait([meter])


async def test_only_the_newest_reading_of_each_transaction_waits_while_online() -> None:
    clock = DrivenClock()
    charger = station(clock, shed=True)
    await metered(charger, clock, online=True)
    assert readings(charger, 1) == [40.0] and readings(charger, 2) == [45.0]
    assert charger.superseded == 3 + 3  # 10, 20, 30 s and 15, 25, 35 s
    kinds = [type(event) for event, _ in charger._outbox]
    assert kinds.count(TransactionStarted) == 2 and StatusChange in kinds  # transaction messages are never shed
    assert charger.oldest_queued_at == T0  # the first plug-in's status, still waiting


async def test_without_shedding_every_reading_waits() -> None:
    clock = DrivenClock()
    charger = station(clock, shed=False)
    await metered(charger, clock, online=True)
    assert readings(charger, 1) == [10.0, 20.0, 30.0, 40.0] and charger.superseded == 0


async def test_readings_taken_offline_are_kept_for_the_csms() -> None:
    clock = DrivenClock()
    charger = station(clock, shed=True)
    await metered(charger, clock, online=False)
    assert readings(charger, 1) == [10.0, 20.0, 30.0, 40.0] and charger.superseded == 0
    assert all(event.offline for event, _ in charger._outbox if isinstance(event, MeterReading))
    # The first plug-in's status change carries no offline flag; after it, only what waits for the connection.
    assert charger.oldest_queued_at == T0
    charger._outbox.popleft()
    assert [type(e) for e, _ in charger._outbox][:1] == [TransactionStarted]
    assert charger.oldest_queued_at is not None and charger.oldest_queued_at > T0  # the second plug-in's status
