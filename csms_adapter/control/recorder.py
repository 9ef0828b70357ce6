"""The controller's side of storage: turns events, ticks and commands into ``csms_adapter.store`` writes.

Meter samples go through the store's batching ``SampleWriter``; every other write goes, in event order, through
one queue drained by a task that runs the store's short transactions on its thread, so the event loop never waits
on the database and a failing database never stops control (failures are logged, control goes on).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from csms_adapter.control.connector_state import Session
from csms_adapter.control.control_loop import TickResult
from csms_adapter.control.dispatch import CommandRecord, Outcome
from csms_adapter.control.operator_journal import OperatorState, StoreJournal, load_operator_state
from csms_adapter.monitoring import EventRecord, Incident
from csms_adapter.protocol import events as ev
from csms_adapter.store import CommandEntry, SampleRecord, SampleWriter, Store, StoreError
from csms_adapter.store.charger_states import ChargerChange, ConnectorChange, save_charger_states
from csms_adapter.store.models import FailsafeHeldRow, ThermalFitRow
from csms_adapter.store.monitoring_repo import DeviceReport, MonitoringRepository
from csms_adapter.store.operator_state import OperatorStateStore
from csms_adapter.store.repository import INT32_MAX
from csms_adapter.store.retention import RetentionPolicy, apply_retention
from csms_adapter.tasks import cancel_and_wait
from optimizer.domain import ThermalModel
from optimizer.thermal_calibration import VehicleFit
from optimizer.thermal_fit import FitSettings, ThermalFit

log = logging.getLogger("depotctl.recorder")

_UNIT = {
    ev.Quantity.POWER_KW: "kW",
    ev.Quantity.POWER_OFFERED_KW: "kW",
    ev.Quantity.CURRENT_A: "A",
    ev.Quantity.CURRENT_OFFERED_A: "A",
    ev.Quantity.ENERGY_KWH: "kWh",
    ev.Quantity.SOC: "fraction",
    ev.Quantity.TEMPERATURE_C: "Celsius",
    ev.Quantity.VOLTAGE_V: "V",
}
_SENT = {Outcome.ACCEPTED, Outcome.REJECTED, Outcome.TIMEOUT, Outcome.ERROR}
MAX_PENDING_WRITES = 100_000
RETENTION_EVERY_S = 3600.0
T = TypeVar("T")


class WriteBatch(Generic[T]):
    """Records gathered on the event loop and written together on the store's thread: ``add`` queues one write
    when none is pending and the recorder is running, and that write takes everything buffered by the time it runs
    (a burst of a thousand status notifications, or a tick's thousand profile calls, is one transaction)."""

    def __init__(self, write: Callable[[list[T]], object], later: Callable[[Callable[[], None]], None],
                 running: Callable[[], bool]) -> None:
        self._items: deque[T] = deque(maxlen=MAX_PENDING_WRITES)
        self._queued = False
        self._write = write
        self._later = later
        self._running = running

    def add(self, item: T) -> None:
        self._items.append(item)
        if self._running():
            self.flush()

    def flush(self) -> None:
        """Queue a write of what is buffered, unless one is pending already or nothing is."""
        if self._items and not self._queued:
            self._queued = True
            self._later(self._run)

    def _run(self) -> None:
        # Runs on the store thread. The flag is lowered before the buffer is taken, so a record added meanwhile
        # queues another write instead of waiting for the next burst; popleft is safe against the loop appending.
        self._queued = False
        batch: list[T] = []
        while self._items:
            batch.append(self._items.popleft())
        self._write(batch)


class StoreRecorder:
    """Implements ``controller.Recorder`` and the Monitor's ``History`` on a ``Store``.

    Monitoring events are batched: ``add_event`` appends to a buffer and, when none is pending, queues one write
    that takes everything buffered by the time it runs (a burst of a thousand status notifications is one
    transaction)."""

    def __init__(self, store: Store, writer: SampleWriter | None = None, *,
                 retention: RetentionPolicy | None = None, retention_every_s: float = RETENTION_EVERY_S) -> None:
        self.store = store
        self.writer = writer or SampleWriter(store)
        self.retention = retention
        self.retention_every_s = retention_every_s
        self._queue: asyncio.Queue[Callable[[], Any]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._retention_task: asyncio.Task[None] | None = None
        self._tx_seed: int | None = None
        self.failures = 0
        self.monitoring = MonitoringRepository(store)
        running = self._running
        ops = OperatorStateStore(store)
        # The fail-safe shares chargers hold, a thousand of them changed in a boot storm: the latest per charger.
        self._held = WriteBatch[tuple[str, FailsafeHeldRow | None]](
            lambda batch: ops.save_failsafe_held_many(dict(batch)), self._later, running)
        self.journal = StoreJournal(ops, self._later, held=self._held.add)
        self._events = WriteBatch[EventRecord](self.monitoring.add_events, self._later, running)
        # Incidents are written with whatever else changed meanwhile: the latest state of each id wins.
        self._incidents = WriteBatch[Incident](
            lambda batch: self.monitoring.save_incidents({i.id: i for i in batch}.values()), self._later, running)
        # A tick's profile calls are recorded together: one transaction for all of them, written off the loop.
        self._commands = WriteBatch[CommandEntry](self.store.record_commands, self._later, running)
        # What chargers and connectors report (boot, connection, status) and their 2.0.1 device reports: a boot
        # storm of a thousand chargers is a few transactions, not thousands (csms_adapter.store.charger_states).
        self._states = WriteBatch[ChargerChange | ConnectorChange](
            lambda batch: save_charger_states(self.store, batch), self._later, running)
        self._reports = WriteBatch[DeviceReport](self.monitoring.save_device_reports, self._later, running)
        self.fit_settings = FitSettings()

    @classmethod
    def open(cls, url: str, *, site: str = "", retention: RetentionPolicy | None = None) -> StoreRecorder:
        """Raises StoreError when the database cannot be opened. ``site`` scopes every row (many depots may
        share one database); ``retention`` None keeps raw samples for ever."""
        return cls(Store.open(url, site=site), retention=retention)

    async def _retain(self, policy: RetentionPolicy) -> None:
        """Fold old raw samples into minutes, at start and then every ``retention_every_s`` (wall clock)."""
        while True:
            try:
                result = await self.store.run(apply_retention, self.store, policy, datetime.now(UTC))
                if result.aggregated_samples or result.minutes_deleted:
                    log.info("retention: %d samples folded into %d minutes, %d old minutes deleted",
                             result.aggregated_samples, result.minutes_written, result.minutes_deleted)
            except StoreError as exc:
                log.warning("retention pass failed (%s); raw samples are kept until the next pass", exc)
            await asyncio.sleep(self.retention_every_s)

    async def start(self) -> None:
        try:
            # 1.6 transaction ids must never repeat, across restarts too (a charger may still hold an old one):
            # continue above every id ever stored, open or closed.
            stored = await self.store.run(self.store.max_numeric_transaction_id)
        except StoreError as exc:
            stored = None
            log.warning("could not read past transaction ids (%s); 1.6 ids continue from the clock", exc)
        if stored is not None:
            self._tx_seed = max(self._tx_seed or 0, stored + 1)
        self._queue = asyncio.Queue(MAX_PENDING_WRITES)
        self._task = asyncio.get_running_loop().create_task(self._drain(), name="store-recorder")
        if self.retention is not None:
            self._retention_task = asyncio.get_running_loop().create_task(self._retain(self.retention),
                                                                          name="store-retention")
        for batch in (self._events, self._incidents, self._commands, self._states, self._reports, self._held):
            batch.flush()  # what was recorded before the start
        await self.writer.start()

    async def _drain(self) -> None:
        assert self._queue is not None
        while True:
            work = await self._queue.get()
            try:
                await self.store.run(work)
            except StoreError as exc:
                self.failures += 1
                log.warning("store write failed (%s); control continues without it: check the database", exc)
            finally:
                self._queue.task_done()

    @property
    def backlog(self) -> int:
        """Writes waiting for the store: meter samples buffered plus other writes queued."""
        return self.writer.pending + (self._queue.qsize() if self._queue is not None else 0)

    def _running(self) -> bool:
        return self._queue is not None

    def _later(self, work: Callable[[], Any]) -> None:
        if self._queue is None:
            return
        try:
            self._queue.put_nowait(work)
        except asyncio.QueueFull:
            self.failures += 1
            log.warning("store is %d writes behind; dropping one", MAX_PENDING_WRITES)

    async def close(self) -> None:
        if self._retention_task is not None:
            await cancel_and_wait([self._retention_task])
        if self._queue is not None and self._task is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await self._queue.join()
            await cancel_and_wait([self._task])
        await self.writer.stop()
        self.store.close()

    # ------------------------------------------------------------------------------ Recorder

    def record_event(self, event: ev.Event) -> None:
        s = self.store
        match event:
            case ev.MeterSample():
                self.writer.add(SampleRecord(
                    event.charger_id, event.connector_id, event.measurand, event.value, _UNIT[event.quantity],
                    event.time, event.source.value, event.phase, event.location, event.transaction_id))
            case ev.ChargerBooted():
                self._states.add(ChargerChange(event.charger_id, {
                    "ocpp_version": event.ocpp_version, "vendor": event.vendor, "model": event.model,
                    "firmware": event.firmware, "last_boot_at": event.time}))
            case ev.ChargerConnected():
                self._states.add(ChargerChange(event.charger_id, {
                    "ocpp_version": event.ocpp_version, "connected": True, "last_seen_at": event.time}))
            case ev.ChargerDisconnected():
                self._states.add(ChargerChange(event.charger_id, {"connected": False, "last_seen_at": event.time}))
            case ev.StatusChanged():
                self._states.add(ConnectorChange(event.charger_id, event.connector_id, event.raw_status, event.time))
            case ev.TransactionStarted():
                meter_wh = event.energy_register_kwh * 1000.0 if event.energy_register_kwh is not None else None
                self._later(lambda: s.open_session(event.charger_id, event.connector_id, event.transaction_id,
                                                   started_at=event.time, id_tag=event.id_tag,
                                                   meter_start_wh=meter_wh))
            case ev.TransactionStopped():
                stop_wh = event.energy_register_kwh * 1000.0 if event.energy_register_kwh is not None else None
                self._later(lambda: s.close_session(event.charger_id, event.transaction_id, stopped_at=event.time,
                                                    meter_stop_wh=stop_wh, reason=event.reason))
            case ev.DeviceReported():
                self._reports.add(DeviceReport(event.charger_id, event.variables, event.time))
            case _:
                pass  # needs, authorisations and rejected values are logged, not stored

    # ------------------------------------------------------------------------------ Monitor history

    def add_event(self, record: EventRecord) -> None:
        self._events.add(record)

    def save_incident(self, incident: Incident) -> None:
        self._incidents.add(incident)

    async def read_events(self, charger: str, since: datetime | None, until: datetime | None,
                          limit: int) -> list[EventRecord]:
        return await self.store.run(self.monitoring.events, charger, since, until, limit)

    async def load_incidents(self, since: datetime) -> list[Incident]:
        return await self.store.run(self.monitoring.incidents, since)

    def prune(self, before: datetime) -> None:
        self._later(lambda: self.monitoring.prune(before))

    def record_tick(self, result: TickResult) -> None:
        plan = result.plan
        if plan is not None:
            self._later(lambda: self.store.record_plan(plan))
        if result.thermal_fits:
            rows = [fit_row(f, self.fit_settings) for f in result.thermal_fits]
            self._later(lambda: self.store.save_thermal_fits(rows))

    def thermal_fits(self) -> list[VehicleFit]:
        """The stored thermal fits (read once at start-up, before the event loop is busy)."""
        return [fit_of_row(row) for row in self.store.thermal_fits()]

    def record_command(self, record: CommandRecord) -> None:
        if record.outcome not in _SENT:
            return  # a decision not to send (deadband, offline) is not a command
        payload = {"purpose": record.purpose, "limit": record.limit, "unit": record.unit.value,
                   "phases": record.phases, "limit_kw": record.limit_kw, "transaction_id": record.transaction_id}
        accepted = record.outcome is Outcome.ACCEPTED
        self._commands.add(CommandEntry(
            record.charger_id, record.connector_id, "SetChargingProfile", payload, record.time,
            answer="Accepted" if accepted else (record.outcome.value if record.outcome is Outcome.REJECTED else None),
            error=None if accepted else record.reason, latency_ms=record.duration_ms))

    def operator_state(self, now: datetime) -> OperatorState:
        """Grid cap, session overrides, vehicle data and billing peaks to restore (read once at start-up)."""
        return load_operator_state(self.journal.ops, now)

    def billing_peak_changed(self, period: str, peak_kw: float, at: datetime) -> None:
        self.journal.billing_peak_changed(period, peak_kw, at)

    def close_stale_session(self, charger_id: str, transaction_id: str, stopped_at: datetime, reason: str) -> None:
        """Close a session the controller found ended while it was away (no StopTransaction ever came)."""
        self._later(lambda: self.store.close_session(charger_id, transaction_id, stopped_at=stopped_at,
                                                     reason=reason))

    def open_sessions(self) -> list[tuple[str, int, Session]]:
        """Open sessions to resume, oldest first (read once at start-up, before the event loop is busy)."""
        out = []
        for row in self.store.open_sessions():
            start_kwh = row.meter_start_wh / 1000.0 if row.meter_start_wh is not None else None
            started = row.started_at or datetime.now(UTC)
            out.append((row.charger_id, row.connector_id,
                        Session(row.transaction_id, row.id_tag, started, start_kwh, start_kwh)))
            if row.transaction_id.isdigit():
                self._tx_seed = max(self._tx_seed or 0, int(row.transaction_id) + 1)
        return out

    def accepted_chargers(self) -> set[str]:
        """Chargers that booted before: a reconnect from them without BootNotification is normal."""
        return {row.id for row in self.store.chargers() if row.last_boot_at is not None}

    def next_transaction_id(self) -> int:
        # Above every stored id (seeded in ``start``), and never below the clock in seconds (int32-safe): the
        # clock floor covers the starts that were still queued for the store when the last run died.
        now_seed = int(datetime.now(UTC).timestamp()) % 2_000_000_000
        self._tx_seed = max(self._tx_seed or 0, now_seed)
        tx = self._tx_seed
        self._tx_seed = tx + 1 if tx < INT32_MAX else 1  # wrap rather than send an id a charger cannot hold
        return tx


def fit_row(f: VehicleFit, settings: FitSettings) -> ThermalFitRow:
    fit, cfg = f.fit, f.configured
    in_use = fit.is_trusted(cfg, settings)  # a vehicle's own fit, or a pool's, that planning may use
    return ThermalFitRow(
        key=f.key, configured_max_temp_c=cfg.max_temp_c, configured_heating_c_per_kwh=cfg.heating_c_per_kwh,
        configured_cooling_per_h=cfg.cooling_per_h, heating_c_per_kwh=fit.heating_c_per_kwh,
        cooling_per_h=fit.cooling_per_h, cov_aa=fit.cov_aa, cov_ab=fit.cov_ab, cov_bb=fit.cov_bb, samples=fit.samples,
        heated_kwh=fit.heated_kwh, residual_var=fit.residual_var, score_fit=fit.score_fit,
        score_configured=fit.score_configured, score_weight=fit.score_weight, confidence=fit.confidence(settings),
        in_use=in_use, updated_at=f.updated_at)


def fit_of_row(row: ThermalFitRow) -> VehicleFit:
    configured = ThermalModel(row.configured_max_temp_c, row.configured_heating_c_per_kwh, row.configured_cooling_per_h)
    fit = ThermalFit(row.heating_c_per_kwh, row.cooling_per_h, row.cov_aa, row.cov_ab, row.cov_bb, row.samples,
                     row.heated_kwh, row.residual_var, row.score_fit, row.score_configured, row.score_weight)
    return VehicleFit(row.key, configured, fit, row.updated_at)
