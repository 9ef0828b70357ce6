"""Storage of the site controller (docs/architecture.md): SQLModel tables on SQLite (WAL) or PostgreSQL.

API (all times timezone-aware UTC; naive datetimes are refused with ValueError)::

    store = Store.open(site.storage.url)        # "sqlite:///depot.db"; raises StoreError, never crashes
    ...
    store.close()

    # chargers and connectors
    store.upsert_charger("cp-01", ocpp_version="1.6", vendor=..., model=..., firmware=...,
                         last_boot_at=now, connected=True, last_seen_at=now)      # None = unchanged
    store.set_connected("cp-01", False, now)
    store.upsert_connector("cp-01", 1, "Charging", now)
    store.chargers() -> list[ChargerRow];  store.connectors("cp-01") -> list[ConnectorRow]

    # sessions (transactions; ids are text: 1.6 ints become "17")
    store.open_session("cp-01", 1, "17", started_at=t, id_tag="04A1", meter_start_wh=1200.0)
        # idempotent per (charger, transaction id): a replayed start returns the existing row
    store.close_session("cp-01", "17", stopped_at=t, meter_stop_wh=9100.0, reason="EVDisconnected")
    store.open_sessions(charger_id=None) -> list[SessionRow]     # resume after a restart
    store.session("cp-01", "17") -> SessionRow | None
    store.max_numeric_transaction_id() -> int | None   # largest int32 id ever stored: seeds 1.6 ids

    # meter samples: batched through SampleWriter on the event loop
    writer = SampleWriter(store, batch_size=500, flush_interval_s=1.0, max_buffer=200_000, retry_s=5)
    await writer.start()
    writer.add(SampleRecord("cp-01", 1, "Power.Active.Import", 7400.0, "W", measured_at=t,
                            source="measured", phase=None, location="Outlet", transaction_id="17"))
    writer.stats  # written, transactions, dropped, failures, last_error;  writer.healthy, writer.pending
    await writer.stop()                                   # flushes what is buffered, stops its thread
    store.add_samples([...]) -> int                       # direct, one transaction (tests, tools)
    store.meter_history("cp-01", 1, start, end, measurands=None) -> list[MeterSampleRow]  # [start, end)

    # plans and commands
    store.record_plan(plan: optimizer.domain.Plan) -> PlanRow   # status, objective, solve/build ms,
        # totals, reason, binding, per-connector limit_kw under limits["cp-01/1"]
    store.last_plan() -> PlanRow | None
    store.record_command("cp-01", 1, "SetChargingProfile", wire_payload_dict, sent_at=t,
                         answer="Accepted", error=None, latency_ms=42.0) -> CommandRow
    store.record_commands([CommandEntry("cp-01", 1, "SetChargingProfile", payload, sent_at=t, ...), ...]) -> int
        # many in one transaction (one executemany): what the controller uses for a tick's profile calls
    store.commands("cp-01", connector_id=1, limit=100) -> list[CommandRow]   # newest first

Every Store method is a short synchronous transaction returning detached rows. From async code use
``await store.run(store.method, *args)`` (one dedicated thread; the event loop never waits on the
database). Database failures raise ``StoreError`` (a ``DepotError``) with the password-free URL;
``SampleWriter`` never raises for them: it logs, counts and retries.
"""

from csms_adapter.store.engine import StoreError, make_engine
from csms_adapter.store.models import (
    ChargerRow,
    CommandRow,
    ConnectorRow,
    MeterSampleRow,
    PlanRow,
    SessionRow,
    ThermalFitRow,
)
from csms_adapter.store.repository import CommandEntry, SampleRecord, Store
from csms_adapter.store.sample_writer import SampleWriter, WriterStats

__all__ = [
    "ChargerRow",
    "CommandEntry",
    "CommandRow",
    "ConnectorRow",
    "MeterSampleRow",
    "PlanRow",
    "SampleRecord",
    "SampleWriter",
    "SessionRow",
    "Store",
    "StoreError",
    "ThermalFitRow",
    "WriterStats",
    "make_engine",
]
