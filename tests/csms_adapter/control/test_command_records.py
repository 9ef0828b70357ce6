"""The profile calls of a tick reach the store together: one transaction for the whole burst (a commit per call kept
the store thread on the GIL beside the event loop for seconds at a thousand chargers), every call kept, nothing but
sent calls recorded, and a write that fails only costs that batch."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import event

from csms_adapter.control.dispatch import STATION_MAX, CommandRecord, Outcome
from csms_adapter.control.recorder import StoreRecorder
from optimizer.domain import RateUnit

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def record(charger: str, connector: int, outcome: Outcome, reason: str = "") -> CommandRecord:
    return CommandRecord(T0, charger, connector, "17" if connector else None, 16.0, RateUnit.AMPS, 3, 11.04, outcome,
                         reason, 40.0, STATION_MAX if connector == 0 else "TxProfile")


async def test_a_ticks_calls_are_written_in_one_transaction(tmp_path: Path) -> None:
    recorder = StoreRecorder.open(f"sqlite:///{tmp_path / 'depot.db'}", site="depot")
    commits: list[int] = []
    event.listen(recorder.store.engine, "commit", lambda _conn: commits.append(1))
    await recorder.start()
    commits.clear()
    for k in range(200):
        recorder.record_command(record(f"cp-{k:03d}", 1, Outcome.ACCEPTED))
        recorder.record_command(record(f"cp-{k:03d}", 0, Outcome.ACCEPTED))
    recorder.record_command(record("cp-000", 2, Outcome.UNCHANGED))  # a decision not to send: not a command
    recorder.record_command(record("cp-001", 2, Outcome.TIMEOUT, "no answer within 10 s"))
    await recorder.close()
    assert len(commits) == 1
    store = StoreRecorder.open(f"sqlite:///{tmp_path / 'depot.db'}", site="depot").store
    rows = store.commands("cp-001", limit=10)
    assert sorted((r.connector_id, r.answer, r.error) for r in rows) == [
        (0, "Accepted", None), (1, "Accepted", None), (2, None, "no answer within 10 s")]
    assert {r.payload["purpose"] for r in rows} == {STATION_MAX, "TxProfile"}
    assert len(store.commands("cp-000", limit=10)) == 2
    assert len(store.commands("cp-199", limit=10)) == 2
    store.close()


async def test_records_before_the_start_are_written_once_it_starts(tmp_path: Path) -> None:
    recorder = StoreRecorder.open(f"sqlite:///{tmp_path / 'depot.db'}")
    recorder.record_command(record("cp-a", 1, Outcome.REJECTED, "status Rejected"))
    await recorder.start()
    await recorder.close()
    store = StoreRecorder.open(f"sqlite:///{tmp_path / 'depot.db'}").store
    [row] = store.commands("cp-a")
    assert (row.answer, row.error, row.latency_ms) == ("rejected", "status Rejected", 40.0)
    store.close()


async def test_a_failed_batch_is_counted_and_the_next_one_is_written(tmp_path: Path) -> None:
    recorder = StoreRecorder.open(f"sqlite:///{tmp_path / 'depot.db'}")
    await recorder.start()
    naive = CommandRecord(datetime(2026, 1, 5, 8, 0), "cp-a", 1, "17", 16.0, RateUnit.AMPS, 3, 11.04,
                          Outcome.ACCEPTED)  # the store refuses naive times: this batch fails as a whole
    recorder.record_command(naive)
    await recorder._queue.join()  # type: ignore[union-attr]
    recorder.record_command(record("cp-b", 1, Outcome.ACCEPTED))
    await recorder.close()
    assert recorder.failures == 1
    store = StoreRecorder.open(f"sqlite:///{tmp_path / 'depot.db'}").store
    assert store.commands("cp-a") == [] and len(store.commands("cp-b")) == 1
    store.close()
