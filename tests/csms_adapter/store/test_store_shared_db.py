"""Many depots in one database: PostgreSQL as a real server started by the test, migrations that upgrade a
database in place, site-scoped rows, sample retention, and the fleet view reading two live controllers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlmodel import SQLModel

from csms_adapter.fleet.app import charger_json, site_json
from csms_adapter.fleet.reader import FleetReader
from csms_adapter.monitoring.model import EventRecord, Incident, IncidentKind, Severity
from csms_adapter.store import SampleRecord, Store, StoreError, migrate
from csms_adapter.store.models import SiteRow
from csms_adapter.store.monitoring_repo import MonitoringRepository
from csms_adapter.store.retention import RetentionPolicy, apply_retention

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def test_the_migrations_build_exactly_the_models(db_url: str) -> None:
    store = Store.open(db_url, site="north")
    try:
        assert migrate.current_revision(store.engine) == migrate.head_revision()
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)
        assert diff == [], f"models and migrations differ: add a migration for {diff}"
    finally:
        store.close()


def test_two_sites_share_a_database_and_never_see_each_others_rows(db_url: str) -> None:
    north, south = Store.open(db_url, site="north"), Store.open(db_url, site="south")
    try:
        for store, vendor in ((north, "A"), (south, "B")):
            store.upsert_charger("cp-01", vendor=vendor, connected=True, last_seen_at=T0)
            store.upsert_connector("cp-01", 1, "Charging", T0)
            store.open_session("cp-01", 1, "17", started_at=T0)
        north.add_samples([SampleRecord("cp-01", 1, "Power.Active.Import", 7.4, "kW", T0)])
        assert [(c.id, c.vendor) for c in north.chargers()] == [("cp-01", "A")]
        assert [(c.id, c.vendor) for c in south.chargers()] == [("cp-01", "B")]
        assert len(north.meter_history("cp-01", 1, T0, T0 + timedelta(minutes=1))) == 1
        assert south.meter_history("cp-01", 1, T0, T0 + timedelta(minutes=1)) == []
        north.close_session("cp-01", "17", stopped_at=T0 + timedelta(hours=1))
        assert north.open_sessions() == [] and len(south.open_sessions()) == 1
        assert south.max_numeric_transaction_id() == 17
    finally:
        north.close()
        south.close()


def test_a_database_from_before_migrations_is_upgraded_in_place(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:  # the 0.1 schema, as its create_all made it, with a row in every key table
        config = migrate._config(conn)
        command.upgrade(config, migrate.BASELINE)
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("INSERT INTO chargers (id, vendor, connected) VALUES ('cp-9', 'old', 0)"))
        conn.execute(text("INSERT INTO connectors (charger_id, connector_id, status) VALUES ('cp-9', 1, 'Available')"))
        conn.execute(text("INSERT INTO sessions (charger_id, connector_id, transaction_id, is_open) "
                          "VALUES ('cp-9', 1, '41', 1)"))
    engine.dispose()
    store = Store.open(url, site="depot")
    try:
        assert migrate.current_revision(store.engine) == migrate.head_revision()
        assert [(c.site, c.id, c.vendor) for c in store.chargers()] == [("depot", "cp-9", "old")]
        assert [(s.site, s.transaction_id) for s in store.open_sessions()] == [("depot", "41")]
        assert [c.status for c in store.connectors("cp-9")] == ["Available"]
    finally:
        store.close()
    again = Store.open(url, site="other")  # the rows were claimed once: a second site does not take them
    try:
        assert again.chargers() == []
    finally:
        again.close()


def test_a_database_that_cannot_be_migrated_gives_a_store_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'future.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('9999')"))
    engine.dispose()
    with pytest.raises(StoreError) as caught:
        Store.open(url, site="x")
    assert "9999" in str(caught.value)


def test_retention_folds_old_samples_into_minutes_of_this_site_only(db_url: str) -> None:
    a, b = Store.open(db_url, site="a"), Store.open(db_url, site="b")
    try:
        samples = [SampleRecord("cp", 1, "Power.Active.Import", float(i), "kW", T0 + timedelta(seconds=10 * i))
                   for i in range(30)]  # 5 minutes of 6 samples
        a.add_samples(samples)
        b.add_samples(samples)
        result = apply_retention(a, RetentionPolicy(raw_days=1, aggregate_days=30), T0 + timedelta(days=2))
        assert (result.aggregated_samples, result.minutes_written) == (30, 5)
        assert a.meter_history("cp", 1, T0, T0 + timedelta(hours=1)) == []
        assert len(b.meter_history("cp", 1, T0, T0 + timedelta(hours=1))) == 30
        minutes = a.minute_history("cp", 1, T0, T0 + timedelta(hours=1))
        assert [(m.mean, m.minimum, m.maximum, m.last, m.count) for m in minutes[:1]] == [(2.5, 0.0, 5.0, 5.0, 6)]
        # Recent samples stay raw; minutes past aggregate_days go.
        assert apply_retention(a, RetentionPolicy(raw_days=10, aggregate_days=30), T0 + timedelta(days=2)
                               ).aggregated_samples == 0
        assert apply_retention(a, RetentionPolicy(raw_days=1, aggregate_days=1), T0 + timedelta(days=3)
                               ).minutes_deleted == 5
    finally:
        a.close()
        b.close()


# ------------------------------------------------------------------------------------------ fleet view

SITE_TEMPLATE = """
site:
  name: {name}
  timezone: UTC
  grid: {{import_limit_kw: {limit}}}
  base_load: {{kw: 3}}
chargers:
  - {{id: cp-1, phases: 3, max_current_a: 16}}
  - {{id: cp-2, phases: 3, max_current_a: 16}}
control: {{interval_s: 60, step_min: 15, horizon_h: 8}}
ocpp: {{listen: "127.0.0.1:{port}", meter_interval_s: 10}}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _process(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", "from csms_adapter.cli.main import main; main()", *args],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_fleet_view_reads_two_controllers_writing_to_one_postgresql(pg_url: str, tmp_path: Path) -> None:
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    sites = {"north-depot": 40, "south-depot": 25}
    with contextlib.ExitStack() as stack:
        for name, limit in sites.items():
            path = tmp_path / f"{name}.yaml"
            path.write_text(SITE_TEMPLATE.format(name=name, limit=limit, port=_free_port()), encoding="utf-8")
            stack.enter_context(_process(["run", str(path), "--simulate", "2", "--speed", "30", "--no-http",
                                          "--db", pg_url], tmp_path / f"{name}.log"))
        fleet_port = _free_port()
        fleet = stack.enter_context(_process(["fleet", "--db", pg_url, "--listen", f"127.0.0.1:{fleet_port}"],
                                             tmp_path / "fleet.log"))
        base = f"http://127.0.0.1:{fleet_port}"
        deadline = time.monotonic() + 180
        seen: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            assert fleet.poll() is None, (tmp_path / "fleet.log").read_text()
            with contextlib.suppress(httpx.HTTPError):
                seen = httpx.get(f"{base}/api/sites", timeout=5).json()
                if (len(seen) == 2 and all(s["chargers_online"] == 2 and s["sessions"] >= 1 and s["power_kw"]
                                           for s in seen)):
                    break
            time.sleep(1.0)
        logs = {p.name: p.read_text()[-2000:] for p in tmp_path.glob("*.log")}
        assert [s["site"] for s in seen] == sorted(sites), logs
        for row in seen:
            assert row["chargers_configured"] == 2
            assert row["chargers_online"] == 2, logs
            assert row["limit_kw"] == sites[str(row["site"])]
            assert 0 < float(row["power_kw"]) <= sites[str(row["site"])] + 1e-6  # type: ignore[arg-type]
            assert row["open_incidents"] == 0 and row["last_seen"]
        detail = httpx.get(f"{base}/api/sites/south-depot", timeout=5).json()
        assert {c["id"] for c in detail["chargers"]} == {"cp-1", "cp-2"}
        assert all(c["online"] for c in detail["chargers"])
        assert httpx.get(f"{base}/api/sites/nowhere", timeout=5).status_code == 404
        assert "fleet" in httpx.get(f"{base}/", timeout=5).text


# ------------------------------------------------------------------------------- monitoring in a shared database

def _incident(site: str, charger: str, opened: datetime, resolved: datetime | None, kind: str = "fault") -> Incident:
    return Incident(f"{site}-{charger}-{opened:%H%M}", charger, 1, IncidentKind(kind), "GroundFailure", None, None,
                    Severity.CRITICAL, opened, resolved, 1, "StatusNotification")


def test_each_site_reads_and_prunes_only_its_own_incidents_and_events(db_url: str) -> None:
    north, south = Store.open(db_url, site="north"), Store.open(db_url, site="south")
    try:
        for store in (north, south):
            repo = MonitoringRepository(store)
            repo.save_incidents([_incident(store.site, "cp-01", T0, None)])
            repo.add_events([EventRecord(T0, "cp-01", 1, "status", "Faulted", "GroundFailure", None, None, {})])
        north_repo, south_repo = MonitoringRepository(north), MonitoringRepository(south)
        assert [i.id for i in north_repo.incidents(T0)] == ["north-cp-01-0600"]
        assert len(north_repo.events("cp-01")) == 1
        north_repo.prune(T0 + timedelta(days=1))  # north's retention never deletes south's history
        assert north_repo.events("cp-01") == [] and len(south_repo.events("cp-01")) == 1
        assert [i.id for i in south_repo.incidents(T0)] == ["south-cp-01-0600"]
    finally:
        north.close()
        south.close()


def test_the_fleet_view_gives_each_site_and_charger_its_availability(db_url: str) -> None:
    now = T0 + timedelta(hours=24)
    north, south = Store.open(db_url, site="north"), Store.open(db_url, site="south")
    try:
        for store in (north, south):
            store.report_site(SiteRow(site=store.site, chargers_configured=2, limit_kw=40.0, power_kw=10.0,
                                      last_seen_at=now))
            for charger in ("cp-01", "cp-02"):
                store.upsert_charger(charger, connected=True, last_seen_at=now)
                store.upsert_connector(charger, 1, "Available", now)
        # north/cp-01 faulted for 6 of the last 24 h, then an open fault for the last hour: 17/24 available.
        MonitoringRepository(north).save_incidents([
            _incident("north", "cp-01", T0 + timedelta(hours=2), T0 + timedelta(hours=8)),
            _incident("north", "cp-01", now - timedelta(hours=1), None),
            _incident("north", "cp-02", T0 - timedelta(days=3), T0 - timedelta(days=2)),  # before the window
        ])
        reader = FleetReader.open(db_url, clock=lambda: now)
        try:
            summaries = {s.site: s for s in reader.sites()}
            assert summaries["north"].availability_ratio == pytest.approx((17 / 24 + 1.0) / 2)
            assert summaries["north"].open_incidents == 1
            assert summaries["south"].availability_ratio == pytest.approx(1.0)
            found = reader.site("north")
            assert found is not None
            ratios = {c.id: c.availability_ratio for c in found[1]}
            assert ratios == {"cp-01": pytest.approx(17 / 24), "cp-02": pytest.approx(1.0)}
            body = site_json(summaries["north"])
            assert body["availability_ratio"] == pytest.approx((17 / 24 + 1.0) / 2)
            assert charger_json(found[1][0])["availability_ratio"] == pytest.approx(17 / 24)
        finally:
            reader.close()
    finally:
        north.close()
        south.close()


def test_the_fleet_view_without_monitoring_tables_reports_no_availability(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = Store.open(url, site="north")
    store.report_site(SiteRow(site="north", chargers_configured=1, last_seen_at=T0))
    store.close()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE incidents"))
    engine.dispose()
    reader = FleetReader.open(url, clock=lambda: T0)
    try:
        [summary] = reader.sites()
        assert summary.availability_ratio is None and summary.open_incidents == 0
    finally:
        reader.close()
