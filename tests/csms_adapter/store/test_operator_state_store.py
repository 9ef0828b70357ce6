"""Operator state in the store, row by row: what is written reads back equal, and each kind of garbage in a row
(a value of the wrong type, a SoC outside 0..1, a negative cap, a date that is no date) is reported with its table,
row and field while every other row is restored."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from live_site import make_site
from store_writes import count_writes

from csms_adapter.control.billing_peak import BillingPeak
from csms_adapter.control.failsafe import HeldShare
from csms_adapter.control.operator_inputs import GridCap, SessionOverride, VehicleData
from csms_adapter.control.operator_journal import StoreJournal, load_operator_state
from csms_adapter.store import Store
from csms_adapter.store.operator_state import OperatorStateStore

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def ops(tmp_path: Path) -> OperatorStateStore:
    store = Store.open(f"sqlite:///{tmp_path / 'depot.db'}")
    yield OperatorStateStore(store)  # type: ignore[misc]
    store.close()


def journal(ops: OperatorStateStore) -> StoreJournal:
    return StoreJournal(ops, lambda work: work())  # writes at once instead of through the recorder's queue


def test_what_is_journaled_reads_back(ops: OperatorStateStore) -> None:
    j = journal(ops)
    cap = GridCap(42.5, NOW, NOW + timedelta(hours=3), "DSO")
    override = SessionOverride("17", NOW + timedelta(hours=8), 0.7, 2.0, NOW)
    data = VehicleData("tx-9", NOW, 3.5, 0.4, 21.0, 64.0, "van-01", temp_at=NOW - timedelta(minutes=40))
    j.grid_cap_changed(cap)
    j.override_changed(("cp-a", 1), override)
    j.vehicle_data_changed(("cp-b", 1), data)
    j.billing_peak_changed("2026-03", 55.0, NOW)
    j.billing_peak_changed("2026-03", 61.0, NOW)  # replaced, not added
    state = load_operator_state(ops, NOW)
    assert state.problems == []
    assert state.grid_cap == cap
    assert state.overrides == {("cp-a", 1): override}
    assert state.vehicle_data == {("cp-b", 1): data}
    assert state.billing_peaks == {"2026-03": 61.0}
    j.session_inputs_ended(("cp-a", 1), "16")  # another (older) transaction: the override stays
    assert load_operator_state(ops, NOW).overrides == {("cp-a", 1): override}
    j.session_inputs_ended(("cp-a", 1), "17")
    j.grid_cap_changed(None)
    state = load_operator_state(ops, NOW)
    assert state.overrides == {} and state.grid_cap is None


def test_an_ended_cap_is_not_restored(ops: OperatorStateStore) -> None:
    journal(ops).grid_cap_changed(GridCap(30.0, NOW - timedelta(hours=5), NOW - timedelta(hours=1), "old"))
    assert load_operator_state(ops, NOW).grid_cap is None


@pytest.mark.parametrize(("sql", "problem"), [
    ("UPDATE vehicle_data SET soc = 'lots'", "table vehicle_data row 1: soc"),
    ("UPDATE vehicle_data SET soc = 7", "table vehicle_data cp-b/1: soc 7.0 is not within 0..1"),
    ("UPDATE vehicle_data SET measured_at = 'yesterday-ish'", "table vehicle_data row 1: measured_at"),
    ("UPDATE vehicle_data SET temp_at = 'warm'", "table vehicle_data row 1: temp_at"),
    ("UPDATE session_overrides SET priority = -1", "table session_overrides cp-a/1: priority"),
    ("UPDATE grid_cap SET limit_kw = -5", "table grid_cap row: limit_kw -5.0"),
    ("UPDATE billing_peaks SET peak_kw = 'x'", "table billing_peaks row 1: peak_kw"),
    ("UPDATE failsafe_held SET spread = 7", "table failsafe_held charger cp-a: spread 7 is not 1, 2 or 3"),
    ("UPDATE failsafe_held SET station_kw = -3", "table failsafe_held charger cp-a: station_kw -3.0"),
    ("UPDATE failsafe_held SET station_kw = 'lots'", "table failsafe_held row 1: station_kw"),
])
def test_a_corrupt_row_is_reported_and_the_rest_restored(ops: OperatorStateStore, sql: str, problem: str,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    j = journal(ops)
    j.grid_cap_changed(GridCap(42.5, NOW, None, ""))
    j.override_changed(("cp-a", 1), SessionOverride("17", None, 0.7, 2.0, NOW))
    j.vehicle_data_changed(("cp-b", 1), VehicleData("tx-9", NOW, 3.5, 0.4, None, None, None))
    j.billing_peak_changed("2026-03", 55.0, NOW)
    j.failsafe_held_changed("cp-a", HeldShare(7.4, 3, NOW))
    with ops.store.engine.begin() as conn:
        conn.exec_driver_sql(sql)
    with caplog.at_level(logging.WARNING):
        state = load_operator_state(ops, NOW)
    assert len(state.problems) == 1 and state.problems[0].startswith(problem), state.problems
    assert "operator state not restored" in caplog.text
    restored = sum([state.grid_cap is not None, len(state.overrides), len(state.vehicle_data),
                    len(state.billing_peaks), len(state.failsafe_held)])
    assert restored == 4  # everything but the bad row


def test_the_failsafe_share_held_reads_back_and_is_forgotten_when_unknown(ops: OperatorStateStore) -> None:
    j = journal(ops)
    j.failsafe_held_changed("cp-a", HeldShare(7.4, 3, NOW))
    j.failsafe_held_changed("cp-b", HeldShare(3.7, 1, NOW))
    j.failsafe_held_changed("cp-a", HeldShare(5.5, 3, NOW + timedelta(minutes=1)))  # replaced, not added
    assert load_operator_state(ops, NOW).failsafe_held == {
        "cp-a": HeldShare(5.5, 3, NOW + timedelta(minutes=1)), "cp-b": HeldShare(3.7, 1, NOW)}
    j.failsafe_held_changed("cp-b", None)  # a later fail-safe call failed: what it holds is not known
    assert set(load_operator_state(ops, NOW).failsafe_held) == {"cp-a"}


def test_the_failsafe_share_held_is_per_site(tmp_path: Path) -> None:
    """Two depots in one database may both have a "cp-a": each restores only its own."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    north, south = Store.open(url, site="north"), Store.open(url, site="south")
    try:
        journal(OperatorStateStore(north)).failsafe_held_changed("cp-a", HeldShare(7.4, 3, NOW))
        journal(OperatorStateStore(south)).failsafe_held_changed("cp-a", HeldShare(2.0, 1, NOW))
        journal(OperatorStateStore(south)).failsafe_held_changed("cp-a", None)
        assert load_operator_state(OperatorStateStore(north), NOW).failsafe_held == {"cp-a": HeldShare(7.4, 3, NOW)}
        assert load_operator_state(OperatorStateStore(south), NOW).failsafe_held == {}
    finally:
        north.close()
        south.close()


def test_billing_peak_is_restored_for_its_own_period_only() -> None:
    peak = BillingPeak(make_site())
    peak.restore(NOW, 40.0)
    assert peak.period_of(NOW) == "2026-03" and peak.peak_kw == 40.0
    assert peak.observe(NOW, 10.0, 5.0) == 40.0  # 15 kW now does not lower the month's peak
    assert peak.observe(NOW + timedelta(days=31), 10.0, 5.0) == 15.0  # April starts from 0


def batched_journal(ops: OperatorStateStore, pending: list[tuple[str, object]]) -> StoreJournal:
    """A journal whose fail-safe shares go to ``pending``, written together as the recorder writes a batch."""
    return StoreJournal(ops, lambda work: work(), held=pending.append)


def test_fail_safe_shares_held_written_together_leave_the_latest_per_charger(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    north, south = Store.open(url, site="north"), Store.open(url, site="south")
    try:
        north_ops, south_ops = OperatorStateStore(north), OperatorStateStore(south)
        journal(south_ops).failsafe_held_changed("cp-a", HeldShare(2.0, 1, NOW))
        journal(north_ops).failsafe_held_changed("cp-b", HeldShare(1.0, 1, NOW))
        pending: list[tuple[str, object]] = []
        j = batched_journal(north_ops, pending)
        for k in range(300):  # a boot storm: every charger's share, and cp-a's twice
            j.failsafe_held_changed(f"cp-{k:03d}", HeldShare(3.7, 1, NOW))
        j.failsafe_held_changed("cp-a", HeldShare(7.4, 3, NOW))
        j.failsafe_held_changed("cp-a", HeldShare(5.5, 3, NOW + timedelta(minutes=1)))
        j.failsafe_held_changed("cp-b", None)  # refused later: no longer known
        assert load_operator_state(north_ops, NOW).failsafe_held == {"cp-b": HeldShare(1.0, 1, NOW)}  # not yet
        assert north_ops.save_failsafe_held_many(dict(pending)) == 302  # type: ignore[arg-type]
        held = load_operator_state(north_ops, NOW).failsafe_held
        assert len(held) == 301 and "cp-b" not in held
        assert held["cp-a"] == HeldShare(5.5, 3, NOW + timedelta(minutes=1))
        assert load_operator_state(south_ops, NOW).failsafe_held == {"cp-a": HeldShare(2.0, 1, NOW)}
        assert north_ops.save_failsafe_held_many({}) == 0
    finally:
        north.close()
        south.close()


async def test_the_recorder_writes_a_boot_storm_of_fail_safe_shares_in_one_transaction(tmp_path: Path) -> None:
    from csms_adapter.control.recorder import StoreRecorder

    recorder = StoreRecorder.open(f"sqlite:///{tmp_path / 'depot.db'}", site="north")
    writes = count_writes(recorder.store)
    await recorder.start()
    try:
        for k in range(200):
            recorder.journal.failsafe_held_changed(f"cp-{k:03d}", HeldShare(3.7, 1, NOW))
    finally:
        await recorder.close()
    assert writes.count("save fail-safe shares held") == 1
    assert "save fail-safe share held" not in writes
    store = Store.open(f"sqlite:///{tmp_path / 'depot.db'}", site="north")
    try:
        assert len(load_operator_state(OperatorStateStore(store), NOW).failsafe_held) == 200
    finally:
        store.close()
