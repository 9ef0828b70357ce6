"""The store on a real SQLite file: every table round-trips, times stay UTC-aware, WAL is on, open
sessions survive a restart, and a bad path is an error, not a crash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from csms_adapter.store import SampleRecord, Store, StoreError
from optimizer.domain import ConnectorPlan, Plan, PlanStatus, ValueSource

T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


def test_wal_mode_is_on(store: Store) -> None:
    assert store.journal_mode() == "wal"


def test_chargers_and_connectors_round_trip(store: Store) -> None:
    store.upsert_charger("cp-01", ocpp_version="1.6", vendor="V", model="M", last_boot_at=T0, connected=True)
    store.upsert_charger("cp-01", firmware="1.2")  # None values leave the rest unchanged
    store.upsert_connector("cp-01", 1, "Charging", T0)
    store.upsert_connector("cp-02", 2, "Available", T0)  # an unknown charger is created on the way
    (row, other) = store.chargers()
    assert (row.id, row.ocpp_version, row.vendor, row.model, row.firmware) == ("cp-01", "1.6", "V", "M", "1.2")
    assert row.connected and row.last_boot_at == T0 and row.last_boot_at.tzinfo is not None
    assert other.id == "cp-02"
    store.set_connected("cp-01", False, T0 + timedelta(minutes=1))
    assert not store.chargers()[0].connected
    assert [(c.connector_id, c.status) for c in store.connectors("cp-01")] == [(1, "Charging")]


def test_times_are_stored_as_utc_and_naive_times_refused(store: Store) -> None:
    local = datetime(2026, 3, 1, 8, 0, tzinfo=timezone(timedelta(hours=2)))
    store.upsert_charger("cp-01", last_boot_at=local)
    got = store.chargers()[0].last_boot_at
    assert got == local and got is not None and got.utcoffset() == timedelta(0)
    with pytest.raises(StoreError):
        store.upsert_charger("cp-02", last_boot_at=datetime(2026, 3, 1, 8, 0))


def test_sessions_open_close_and_replayed_start_is_not_duplicated(store: Store) -> None:
    first = store.open_session("cp-01", 1, "17", started_at=T0, id_tag="04A1", meter_start_wh=1000.0)
    again = store.open_session("cp-01", 1, "17", started_at=T0, id_tag="04A1", meter_start_wh=1000.0)
    assert first.id == again.id and len(store.open_sessions()) == 1
    store.open_session("cp-02", 1, "tx-abc", started_at=T0 + timedelta(minutes=1))
    closed = store.close_session("cp-01", "17", stopped_at=T0 + timedelta(hours=2), meter_stop_wh=9100.0, reason="EV")
    assert closed is not None and closed.energy_wh == 8100.0 and not closed.is_open
    assert store.close_session("cp-01", "nope", stopped_at=T0) is None
    assert [s.transaction_id for s in store.open_sessions()] == ["tx-abc"]
    row = store.session("cp-01", "17")
    assert row is not None and row.stopped_at == T0 + timedelta(hours=2) and row.stop_reason == "EV"


def test_restart_resumes_open_sessions(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'depot.db'}"
    before = Store.open(url)
    before.open_session("cp-01", 2, "42", started_at=T0, id_tag="TAG", meter_start_wh=5.0)
    before.close()
    after = Store.open(url)
    try:
        (session,) = after.open_sessions("cp-01")
        assert (session.connector_id, session.transaction_id, session.id_tag, session.started_at) == (2, "42", "TAG", T0)
    finally:
        after.close()


def test_meter_history_is_a_time_range_of_one_connector(store: Store) -> None:
    records = [
        SampleRecord("cp-01", 1, "Power.Active.Import", 1000.0 * k, "W", T0 + timedelta(minutes=k), transaction_id="1")
        for k in range(10)
    ]
    records.append(SampleRecord("cp-01", 2, "Power.Active.Import", 5.0, "W", T0))
    records.append(SampleRecord("cp-01", 1, "SoC", 40.0, "Percent", T0 + timedelta(minutes=3), source="iso15118"))
    assert store.add_samples(records) == 12
    rows = store.meter_history("cp-01", 1, T0 + timedelta(minutes=2), T0 + timedelta(minutes=5))
    assert [(r.measurand, r.value) for r in rows] == [
        ("Power.Active.Import", 2000.0),
        ("Power.Active.Import", 3000.0),
        ("SoC", 40.0),
        ("Power.Active.Import", 4000.0),
    ]
    assert rows[2].source == "iso15118" and rows[0].measured_at.tzinfo is not None
    only_soc = store.meter_history("cp-01", 1, T0, T0 + timedelta(hours=1), measurands=["SoC"])
    assert [r.value for r in only_soc] == [40.0]


def test_plans_round_trip_and_last_plan(store: Store) -> None:
    def plan(at: datetime, limit_kw: float) -> Plan:
        connector = ConnectorPlan(
            charger_id="cp-01",
            connector_id=1,
            limit_kw=limit_kw,
            limit_a=limit_kw * 1000 / 690,
            phases=3,
            schedule_kw=(limit_kw,),
            energy_needed_kwh=30.0,
            energy_planned_kwh=25.0,
            expected_soc_at_departure=0.8,
            expected_max_temp_c=None,
            departure=at + timedelta(hours=8),
            soc_source=ValueSource.MEASURED,
        )
        return Plan(
            status=PlanStatus.OPTIMAL,
            strategy="lp",
            time=at,
            step_s=900,
            schedule_step_s=(900,),
            connectors=(connector,),
            solve_ms=12.5,
            objective=-3.0,
            binding=("site_import_limit",),
        )

    store.record_plan(plan(T0, 7.0))
    store.record_plan(plan(T0 + timedelta(minutes=1), 11.0))
    last = store.last_plan()
    assert last is not None and last.time == T0 + timedelta(minutes=1)
    assert (last.status, last.strategy, last.solve_ms, last.objective) == ("optimal", "lp", 12.5, -3.0)
    assert last.total_limit_kw == 11.0 and last.binding == ["site_import_limit"] and last.limits == {"cp-01/1": 11.0}
    assert (last.energy_needed_kwh, last.energy_planned_kwh, last.connectors) == (30.0, 25.0, 1)


def test_commands_of_a_connector_newest_first(store: Store) -> None:
    payload = {"connectorId": 1, "csChargingProfiles": {"chargingProfileId": 1}}
    store.record_command("cp-01", 1, "SetChargingProfile", payload, sent_at=T0, answer="Accepted", latency_ms=40.0)
    store.record_command("cp-01", 1, "SetChargingProfile", payload, sent_at=T0 + timedelta(seconds=60), error="Timeout")
    store.record_command("cp-01", 2, "SetChargingProfile", payload, sent_at=T0)
    rows = store.commands("cp-01", 1)
    assert [(r.answer, r.error) for r in rows] == [(None, "Timeout"), ("Accepted", None)]
    assert rows[1].payload == payload and rows[1].latency_ms == 40.0 and rows[1].sent_at == T0
    assert len(store.commands("cp-01")) == 3


def test_bad_database_path_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as info:
        Store.open(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'depot.db'}")
    assert "cannot open database" in str(info.value)


def test_url_password_never_in_errors() -> None:
    with pytest.raises(StoreError) as info:
        Store.open("postgresql+nosuchdriver://depot:s3cret@127.0.0.1:1/depot")
    assert "s3cret" not in str(info.value)


async def test_run_moves_calls_off_the_loop(store: Store) -> None:
    await store.run(store.upsert_charger, "cp-09", ocpp_version="2.0.1")
    assert [c.id for c in await store.run(store.chargers)] == ["cp-09"]
