"""SampleWriter: batching, a non-blocking add, and a database outage reported and retried."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import SQLModel

from csms_adapter.store import MeterSampleRow, SampleRecord, SampleWriter, Store
from csms_adapter.tasks import cancel_and_wait

T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


def sample(k: int) -> SampleRecord:
    return SampleRecord("cp-01", 1, "Power.Active.Import", float(k), "W", T0 + timedelta(seconds=k))


async def test_many_samples_make_few_transactions(store: Store) -> None:
    writer = SampleWriter(store, batch_size=500, flush_interval_s=0.05)
    await writer.start()
    writer.add_many(sample(k) for k in range(2_000))
    async with asyncio.timeout(5):
        while writer.stats.written < 2_000:
            await asyncio.sleep(0.01)
    await writer.stop()
    assert writer.stats.written == 2_000
    assert writer.stats.transactions <= 5
    rows = store.meter_history("cp-01", 1, T0, T0 + timedelta(hours=1))
    assert [r.value for r in rows] == [float(k) for k in range(2_000)]  # order kept


async def test_partial_batch_is_flushed_after_the_interval_and_on_stop(store: Store) -> None:
    writer = SampleWriter(store, batch_size=1_000, flush_interval_s=0.05)
    await writer.start()
    writer.add_many(sample(k) for k in range(10))
    async with asyncio.timeout(5):
        while writer.stats.written < 10:
            await asyncio.sleep(0.01)
    writer.add(sample(10))
    await writer.stop()  # flushes the rest
    assert writer.stats.written == 11 and writer.pending == 0


async def test_database_outage_is_reported_buffered_and_retried(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    raw = sqlite3.connect(tmp_path / "depot.db")
    raw.execute("DROP TABLE meter_samples")  # the database "goes away" under the writer
    raw.commit()
    raw.close()
    writer = SampleWriter(store, batch_size=10, flush_interval_s=0.02, retry_s=0.05, max_buffer=50)
    await writer.start()
    with caplog.at_level(logging.WARNING):
        writer.add_many(sample(k) for k in range(80))  # more than the buffer holds
        async with asyncio.timeout(5):
            while writer.stats.failures < 2:
                await asyncio.sleep(0.01)
    assert not writer.healthy and writer.stats.last_error is not None
    assert writer.stats.dropped == 30 and writer.pending == 50  # oldest shed, newest kept
    assert "sample writes failing" in caplog.text
    SQLModel.metadata.create_all(store.engine, tables=[MeterSampleRow.__table__])  # type: ignore[attr-defined]
    async with asyncio.timeout(5):
        while writer.pending:
            await asyncio.sleep(0.01)
    await writer.stop()
    assert writer.healthy and writer.stats.written == 50
    rows = store.meter_history("cp-01", 1, T0, T0 + timedelta(hours=1))
    assert [r.value for r in rows] == [float(k) for k in range(30, 80)]


class StuckStore(Store):
    """A database that hangs: every write waits until ``release`` is set, and notes the thread it ran on."""

    release: threading.Event
    threads: set[int]

    @classmethod
    def open_stuck(cls, url: str) -> StuckStore:
        from csms_adapter.store import make_engine

        stuck = cls(make_engine(url), url)
        stuck.release, stuck.threads = threading.Event(), set()
        return stuck

    def add_samples(self, records: Any) -> int:
        self.threads.add(threading.get_ident())
        if not self.release.wait(timeout=60):
            raise AssertionError("never released")
        return super().add_samples(records)


async def test_add_does_not_block_the_loop(tmp_path: Path) -> None:
    """No wall-clock budget: while the database hangs on a write, the loop still runs other tasks and every add
    returns; a writer that wrote (or waited) on the loop would stall the ticker and never finish adding."""
    store = StuckStore.open_stuck(f"sqlite:///{tmp_path / 'depot.db'}")
    writer = SampleWriter(store, batch_size=100, flush_interval_s=0.01)
    await writer.start()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticking = asyncio.create_task(ticker())
    try:
        writer.add(sample(0))
        async with asyncio.timeout(10):
            while not store.threads:  # the first flush is now stuck in the database
                await asyncio.sleep(0.01)
        before = ticks
        for k in range(1, 20_000):
            writer.add(sample(k))
            if k % 1000 == 0:
                await asyncio.sleep(0)  # other tasks get their turn, as between charger messages
        assert ticks > before  # the loop kept running while the database was stuck
        assert not store.release.is_set() and writer.pending >= 19_000 - writer.max_batch
        assert threading.get_ident() not in store.threads  # never written on the loop's thread
    finally:
        store.release.set()
        await cancel_and_wait([ticking])
    await writer.stop()
    store.close()
    assert writer.stats.written == 20_000
