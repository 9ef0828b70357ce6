"""Charger, connector and device-model rows written many at once (boot storms) leave exactly the rows that one
write after another leaves, on SQLite and on a real PostgreSQL server; each site's rows only; a bad change is an
error that writes nothing of its batch and loses nothing stored; the recorder writes a burst in one transaction."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from store_writes import count_writes

from csms_adapter.control.recorder import StoreRecorder
from csms_adapter.protocol import events as ev
from csms_adapter.store import Store, StoreError
from csms_adapter.store.charger_states import ChargerChange, ConnectorChange, fold, save_charger_states
from csms_adapter.store.monitoring_repo import DeviceReport, MonitoringRepository

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# A boot storm's worth of changes in the order a controller sees them: boots, connections, statuses (twice: the
# boot's and the triggered resync), a disconnect and a reconnect, a charger known only through its connector.
CHANGES: list[ChargerChange | ConnectorChange] = [
    ChargerChange("cp-01", {"ocpp_version": "1.6", "connected": True, "last_seen_at": at(0)}),
    ChargerChange("cp-01", {"ocpp_version": "1.6", "vendor": "V", "model": "M", "firmware": None,
                            "last_boot_at": at(0.1)}),
    ConnectorChange("cp-01", 1, "Available", at(0.2)),
    ConnectorChange("cp-01", 2, "Available", at(0.2)),
    ChargerChange("cp-02", {"ocpp_version": "2.0.1", "connected": True, "last_seen_at": at(0.3)}),
    ConnectorChange("cp-02", 1, "Occupied", at(0.4)),
    ConnectorChange("cp-01", 1, "Preparing", at(0.5)),
    ChargerChange("cp-02", {"connected": False, "last_seen_at": at(1)}),
    ConnectorChange("cp-03", 1, None, at(1.1)),
    ChargerChange("cp-02", {"ocpp_version": "2.0.1", "connected": True, "last_seen_at": at(2)}),
    ChargerChange("cp-01", {"firmware": "2.0"}),
]


def one_by_one(store: Store, changes: list[ChargerChange | ConnectorChange]) -> None:
    """The writes the recorder made before, one transaction per change."""
    for change in changes:
        if isinstance(change, ChargerChange):
            store.upsert_charger(change.charger_id, **change.columns)
        else:
            store.upsert_connector(change.charger_id, change.connector_id, change.status, change.at)


def rows(store: Store) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    chargers = [(r.id, r.ocpp_version, r.vendor, r.model, r.firmware, r.last_boot_at, r.last_seen_at, r.connected)
                for r in store.chargers()]
    connectors = [(r.charger_id, r.connector_id, r.status, r.updated_at)
                  for cid in sorted(c[0] for c in chargers) for r in store.connectors(cid)]
    return chargers, connectors


def test_a_batch_leaves_the_rows_that_one_write_after_another_leaves(db_url: str) -> None:
    batched, sequential = Store.open(db_url, site="depot-a"), Store.open(db_url, site="depot-b")
    try:
        # Rows already there are updated (cp-01), others inserted; split so that both happen in one batch.
        one_by_one(batched, CHANGES[:3])
        one_by_one(sequential, CHANGES[:3])
        assert save_charger_states(batched, CHANGES[3:]) == len(CHANGES) - 3
        one_by_one(sequential, CHANGES[3:])
        assert rows(batched) == rows(sequential)
        chargers, connectors = rows(batched)
        assert [c[0] for c in chargers] == ["cp-01", "cp-02", "cp-03"]
        assert chargers[0][1:5] == ("1.6", "V", "M", "2.0") and chargers[0][5] == at(0.1)
        assert chargers[1][6:] == (at(2), True)
        assert ("cp-01", 1, "Preparing", at(0.5)) in connectors and ("cp-03", 1, None, at(1.1)) in connectors
    finally:
        batched.close()
        sequential.close()


def test_each_site_writes_only_its_own_rows_of_a_shared_charger_id(db_url: str) -> None:
    a, b = Store.open(db_url, site="depot-a"), Store.open(db_url, site="depot-b")
    try:
        save_charger_states(a, [ChargerChange("cp-01", {"vendor": "A", "connected": True}),
                                ConnectorChange("cp-01", 1, "Charging", at(0))])
        save_charger_states(b, [ChargerChange("cp-01", {"vendor": "B"}), ConnectorChange("cp-01", 1, "Faulted", at(1))])
        save_charger_states(a, [ChargerChange("cp-01", {"connected": False}), ConnectorChange("cp-01", 1, "Finishing",
                                                                                              at(2))])
        assert [(r.vendor, r.connected) for r in a.chargers()] == [("A", False)]
        assert [(r.vendor, r.connected) for r in b.chargers()] == [("B", False)]
        assert [r.status for r in a.connectors("cp-01")] == ["Finishing"]
        assert [r.status for r in b.connectors("cp-01")] == ["Faulted"]
    finally:
        a.close()
        b.close()


def test_a_bad_change_writes_nothing_of_its_batch_and_loses_nothing_stored(db_url: str) -> None:
    store = Store.open(db_url, site="depot-a")
    try:
        save_charger_states(store, CHANGES)
        before = rows(store)
        naive = datetime(2026, 3, 2, 7, 0)  # no time zone: refused, never guessed
        with pytest.raises(StoreError):
            save_charger_states(store, [ConnectorChange("cp-09", 1, "Available", at(5)),
                                        ChargerChange("cp-01", {"last_seen_at": naive})])
        with pytest.raises(ValueError, match="no column password"):
            save_charger_states(store, [ChargerChange("cp-01", {"password": "x"})])
        assert rows(store) == before
        assert save_charger_states(store, []) == 0
    finally:
        store.close()


def test_folding_keeps_the_last_value_of_each_column_and_of_each_connector() -> None:
    chargers, connectors = fold(CHANGES)
    assert chargers["cp-01"] == {"ocpp_version": "1.6", "connected": True, "last_seen_at": at(0), "vendor": "V",
                                 "model": "M", "last_boot_at": at(0.1), "firmware": "2.0"}
    assert chargers["cp-03"] == {}  # known only through its connector: its row must exist
    assert connectors[("cp-01", 1)] == ("Preparing", at(0.5))


def variable(component: str, name: str, value: str | None, *, evse: int | None = None) -> ev.DeviceVariable:
    return ev.DeviceVariable(component=component, variable=name, value=value, attribute_type="Actual",
                             mutability="ReadOnly", component_instance=None, variable_instance=None,
                             evse_id=evse, connector_id=1 if evse is not None else None)


def test_device_reports_of_many_chargers_are_one_upsert_the_latest_report_winning(db_url: str) -> None:
    store, other = Store.open(db_url, site="depot-a"), Store.open(db_url, site="depot-b")
    try:
        repo, other_repo = MonitoringRepository(store), MonitoringRepository(other)
        other_repo.save_device_variables("cp-01", [variable("MonitoringCtrlr", "Enabled", "false")], at(0))
        repo.save_device_variables("cp-01", [variable("MonitoringCtrlr", "Enabled", "false")], at(0))
        written = repo.save_device_reports([
            DeviceReport("cp-01", (variable("MonitoringCtrlr", "Enabled", "true"),
                                   variable("Connector", "Problem", "false", evse=1)), at(1)),
            DeviceReport("cp-02", tuple(variable("Ctrlr", f"V{i}", str(i)) for i in range(600)), at(1)),
            DeviceReport("cp-01", (variable("Connector", "Problem", "true", evse=1),), at(2))])
        assert written == 602  # cp-01's two attributes (one reported twice) and cp-02's 600
        got = {(r.component, r.variable, r.evse_id): (r.value, r.reported_at) for r in repo.device_variables("cp-01")}
        assert got == {("MonitoringCtrlr", "Enabled", -1): ("true", at(1)), ("Connector", "Problem", 1): ("true", at(2))}
        assert len(repo.device_variables("cp-02")) == 600
        assert [(r.value, r.reported_at) for r in other_repo.device_variables("cp-01")] == [("false", at(0))]
        assert repo.save_device_reports([DeviceReport("cp-03", (), at(3))]) == 0
    finally:
        store.close()
        other.close()


async def test_the_recorder_writes_a_boot_storm_of_statuses_in_one_transaction(tmp_path: Path) -> None:
    recorder = StoreRecorder.open(f"sqlite:///{tmp_path / 'depot.db'}", site="depot-a")
    writes = count_writes(recorder.store)
    await recorder.start()
    try:
        # As the link publishes them: all within one turn of the event loop.
        for k in range(200):
            recorder.record_event(ev.ChargerConnected(f"cp-{k:03d}", "1.6", at(0), False))
            recorder.record_event(ev.ChargerBooted(f"cp-{k:03d}", "1.6", "V", "M", None, at(0.1)))
            for connector in (1, 2):
                recorder.record_event(ev.StatusChanged(f"cp-{k:03d}", connector, ev.PlugState.AVAILABLE, "Available",
                                                       at(0.2)))
        await asyncio.sleep(0)
    finally:
        await recorder.close()
    assert writes.count("save charger and connector states") == 1
    store = Store.open(f"sqlite:///{tmp_path / 'depot.db'}", site="depot-a")
    try:
        chargers, connectors = rows(store)
        assert len(chargers) == 200 and all(c[2] == "V" and c[7] for c in chargers)
        assert len(connectors) == 400 and {c[2] for c in connectors} == {"Available"}
    finally:
        store.close()
