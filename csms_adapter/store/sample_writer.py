"""``SampleWriter``: batched meter-sample writes, so a thousand chargers make a few transactions a
second, not a thousand.

``add()`` is called on the event loop and never blocks: it appends to a bounded in-memory buffer. A
flusher task hands a batch to a one-thread executor every ``batch_size`` samples or ``flush_interval_s``
seconds, whichever comes first. When the database fails, the batch goes back to the front of the buffer,
the failure is logged and counted (``stats``), and the write is retried after ``retry_s``; if the
buffer overflows meanwhile the *oldest* samples are dropped and counted. Nothing here raises into
the caller because of the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from csms_adapter.store.engine import StoreError
from csms_adapter.store.repository import SampleRecord, Store
from csms_adapter.tasks import cancel_and_wait

log = logging.getLogger(__name__)


@dataclass(slots=True)
class WriterStats:
    written: int = 0
    transactions: int = 0
    dropped: int = 0
    failures: int = 0
    last_error: str | None = None
    last_flush_ms: float = 0.0


class SampleWriter:
    def __init__(
        self,
        store: Store,
        *,
        batch_size: int = 500,
        flush_interval_s: float = 1.0,
        max_buffer: int = 200_000,
        max_batch: int = 5_000,
        retry_s: float = 5.0,
    ) -> None:
        if batch_size < 1 or max_buffer < batch_size:
            raise ValueError("need 1 <= batch_size <= max_buffer")
        self.store = store
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_buffer = max_buffer
        self.max_batch = max(max_batch, batch_size)
        self.retry_s = retry_s
        self.stats = WriterStats()
        self._buffer: deque[SampleRecord] = deque()
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sample-writer")
        self._healthy = True
        # Held for a whole flush: stop() must not cancel the flusher between taking a batch off the buffer and
        # putting it back or counting it (the batch would be lost and the stats wrong).
        self._flush_lock = asyncio.Lock()

    @property
    def pending(self) -> int:
        return len(self._buffer)

    @property
    def healthy(self) -> bool:
        """False while the last write failed (the buffer is holding samples for a retry)."""
        return self._healthy

    def add(self, record: SampleRecord) -> None:
        """Buffer one sample (never blocks, never raises because of the database)."""
        if len(self._buffer) >= self.max_buffer:
            self._buffer.popleft()
            self.stats.dropped += 1
        self._buffer.append(record)
        if len(self._buffer) >= self.batch_size:
            self._full.set()

    def add_many(self, records: Iterable[SampleRecord]) -> None:
        for record in records:
            self.add(record)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="sample-writer")

    async def stop(self, *, flush: bool = True) -> None:
        """Stop the flusher; with ``flush`` write what is buffered (one attempt). Shuts the thread."""
        if self._task is not None:
            async with self._flush_lock:
                await cancel_and_wait([self._task])
            self._task = None
        if flush:
            while self._buffer and await self.flush():
                pass
        self._executor.shutdown(wait=True)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.flush_interval_s):
                    await self._full.wait()
            self._full.clear()
            while self._buffer:
                if not await self.flush():
                    await asyncio.sleep(self.retry_s)
                    break
                if len(self._buffer) < self.batch_size:
                    break  # a partial batch waits for the interval

    async def flush(self) -> bool:
        """Write one batch now; True on success (or nothing to write), False if the DB failed."""
        async with self._flush_lock:
            return await self._flush()

    async def _flush(self) -> bool:
        if not self._buffer:
            return True
        batch = [self._buffer.popleft() for _ in range(min(self.max_batch, len(self._buffer)))]
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self.store.add_samples, batch)
        except StoreError as exc:
            # put the batch back in order; the oldest are shed if the buffer would overflow
            self._buffer.extendleft(reversed(batch))
            while len(self._buffer) > self.max_buffer:
                self._buffer.popleft()
                self.stats.dropped += 1
            self.stats.failures += 1
            self.stats.last_error = exc.reason
            if self._healthy:
                log.warning("sample writes failing, buffering %d samples: %s; check the database", self.pending, exc)
            self._healthy = False
            return False
        self.stats.written += len(batch)
        self.stats.transactions += 1
        self.stats.last_flush_ms = (time.perf_counter() - started) * 1000.0
        if not self._healthy:
            log.warning("sample writes recovered; %d samples pending", self.pending)
        self._healthy = True
        return True
