"""The Monitor: condition monitoring wired to the controller and the store (docs/monitoring.md).

The controller owns one (``controller.monitor``): it feeds it every event it publishes (``observe``), asks it
whether a meter sample may reach the live state (``sample_ok``), and tells it after each tick which connectors
ignore their limit or refused their profile (``control_findings``). A supervised task lets time pass every
second (debounces and hysteresis run out, silent chargers become offline). The HTTP API, metrics and webhooks
read the Monitor and subscribe to ``listeners``, which hear ``opened`` after the debounce and ``resolved`` once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from csms_adapter.monitoring import rules
from csms_adapter.monitoring.availability import availability
from csms_adapter.monitoring.history import anomaly_record, event_record
from csms_adapter.monitoring.incidents import RESTORED, ConditionKey, IncidentTracker, Report, TrackerSettings
from csms_adapter.monitoring.meter_integrity import MeterIntegrity, MeterLimits
from csms_adapter.monitoring.model import AvailabilityRow, EventRecord, Incident, IncidentChange, IncidentKind, Severity
from csms_adapter.monitoring.operator_unavailability import OperatorAvailability
from csms_adapter.protocol import events as ev
from csms_adapter.tasks import cancel_and_wait
from optimizer.domain import MonitoringSettings

log = logging.getLogger("depotctl.monitor")

Clock = Callable[[], datetime]
Listener = Callable[[IncidentChange], None]

RECENT_EVENTS_PER_CHARGER = 200  # kept in memory for chargers' history when no store is attached
OFFLINE_NOT_CONNECTED = "not_connected"  # configured but not connected since the controller started
OFFLINE_DISCONNECTED = "disconnected"
OFFLINE_SILENT = "silent"  # connected, but no message past offline_after_s
PRUNE_EVERY = timedelta(hours=1)
_SERVICE_KINDS = (IncidentKind.FAULT, IncidentKind.UNAVAILABLE)


@runtime_checkable
class History(Protocol):
    """Where the Monitor keeps events and incidents (implemented on the store by ``control.recorder``). The
    ``add_event``/``save_incident`` calls happen on the event loop and must not block."""

    def add_event(self, record: EventRecord) -> None: ...

    def save_incident(self, incident: Incident) -> None: ...

    async def read_events(self, charger: str, since: datetime | None, until: datetime | None,
                          limit: int) -> list[EventRecord]: ...

    async def load_incidents(self, since: datetime) -> list[Incident]: ...

    def prune(self, before: datetime) -> None:
        """Forget events and resolved incidents older than ``before`` (off the loop)."""
        ...


@dataclass(frozen=True, slots=True)
class ControlFinding:
    """What the control side saw on one connector this tick (None: nothing to say about that kind)."""

    charger: str
    connector: int
    ignoring_limit: bool
    rejected_reason: str | None
    draw_kw: float | None = None
    limit_kw: float | None = None


class Monitor:
    def __init__(self, settings: MonitoringSettings, *, clock: Clock, chargers: Sequence[str] = (),
                 connectors: Mapping[str, int] | None = None, meter_limits: Mapping[str, MeterLimits] | None = None,
                 history: History | None = None, new_id: Callable[[], str] | None = None,
                 evaluate_every_s: float = 1.0) -> None:
        """``chargers``: the site's chargers (an unknown one that connects is watched too); ``connectors`` their
        connector counts (availability rows); ``meter_limits`` their nameplates (meter integrity)."""
        self.settings = settings
        self.clock = clock
        self.chargers = tuple(chargers)
        self.connectors: dict[str, int] = dict(connectors or {c: 1 for c in self.chargers})
        self.history = history
        self.listeners: list[Listener] = []  # called on opened/resolved after debounce; must not block
        self.evaluate_every_s = evaluate_every_s
        self._meter_limits = dict(meter_limits or {})
        self.meter = MeterIntegrity(self._meter_limits.get)
        self.tracker = IncidentTracker(
            TrackerSettings(settings.debounce_for, settings.clear_after_s, settings.quiet_resolve_s),
            new_id or (lambda: uuid.uuid4().hex[:16]))
        self._connected: dict[str, bool] = {}
        self._last_seen: dict[str, datetime] = {}
        self._recent: dict[str, deque[EventRecord]] = {}
        self._task: asyncio.Task[object] | None = None
        self._started_at: datetime | None = None
        self._awaiting: set[str] = set()
        self._offline_keys: dict[str, ConditionKey] = {}
        self.flagged_samples = 0
        # The operator's availability requests (the controller records them; restored from the store at start).
        self.operator = OperatorAvailability()
        # When a charger last sent anything at all (heartbeats included); set by the controller from its links.
        self.last_traffic: Callable[[str], datetime | None] = lambda charger: None
        # Raised whenever a connector's fault or unavailability starts or ends: the controller compares it around
        # an event to bring the next tick forward.
        self.service_changes = 0

    # ------------------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Restore kept incidents, mark chargers not yet connected as (pending) offline, start the clock task."""
        now = self.clock()
        self._started_at = now
        if self.history is not None:
            since = now - timedelta(days=self.settings.retention_days)
            try:
                self.tracker.restore(await self.history.load_incidents(since), now)
            except Exception as exc:  # a broken store must not stop monitoring or control
                log.warning("could not read kept incidents (%s); starting without them", exc)
        # Chargers get offline_after_s to connect after a (re)start before they count as offline; one that had an
        # open offline incident keeps it.
        self._awaiting = {c for c in self.chargers if not self._connected.get(c, False)
                          and not self.tracker.is_active(ConditionKey(c, None, IncidentKind.OFFLINE))}
        self._task = asyncio.get_running_loop().create_task(self._run(), name="monitor")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])
            self._task = None

    async def _run(self) -> object:
        pruned_at: datetime | None = None
        while True:
            await asyncio.sleep(self.evaluate_every_s)
            now = self.clock()
            try:
                self.evaluate(now)
                if pruned_at is None or now - pruned_at >= PRUNE_EVERY:
                    pruned_at = now
                    self.prune(now)
            except Exception:  # keep watching: one bad evaluation must not end monitoring
                log.exception("monitor evaluation failed")

    # ------------------------------------------------------------------------------ inputs

    def observe(self, event: ev.Event) -> None:
        """Take one event from the protocol edge (cheap; on the event loop). Meter samples go to ``sample_ok``."""
        charger = event.charger_id
        now = self.clock()
        if not isinstance(event, ev.ChargerDisconnected):
            self._last_seen[charger] = now
            if self._connected.get(charger, False):
                self._apply_clear(self._offline_key(charger), now)
        record = event_record(event)
        if record is not None:
            self._keep(record)
        match event:
            case ev.ChargerConnected():
                self._connected[charger] = True
                self._apply_clear(ConditionKey(charger, None, IncidentKind.OFFLINE), now)
            case ev.ChargerDisconnected():
                self._connected[charger] = False
                why = event.reason or "connection closed"
                self._apply(ConditionKey(charger, None, IncidentKind.OFFLINE),
                            Report(Severity.CRITICAL, "connection", OFFLINE_DISCONNECTED, info=why),
                            now)
            case ev.StatusChanged():
                self._findings(charger, rules.status_findings(event), now)
            case ev.DeviceEvent():
                self._findings(charger, rules.device_event_findings(event), now)
            case ev.SecurityEventReported():
                self._apply(ConditionKey(charger, None, IncidentKind.SECURITY_EVENT, event.type),
                            Report(rules.security_severity(event.type), "SecurityEventNotification", event.type,
                                   info=event.tech_info, point=True), now)
            case ev.FirmwareStatusReported():
                self._findings(charger, rules.firmware_findings(event), now)
            case ev.DiagnosticsStatusReported():
                self._findings(charger, rules.upload_findings(event), now)
            case _:
                pass

    def sample_ok(self, sample: ev.MeterSample) -> bool:
        """True when ``sample`` is believable and may reach the live state; a flagged one is recorded as a
        ``meter_anomaly`` event and incident (the raw sample is still stored by the caller)."""
        verdict = self.meter.check(sample)
        connector = sample.connector_id or None
        register = sample.quantity is ev.Quantity.ENERGY_KWH
        # One incident per problem: the register, or an impossible value of one quantity.
        key = ConditionKey(sample.charger_id, connector, IncidentKind.METER_ANOMALY,
                           "register" if register else sample.quantity.value)
        now = self.clock()
        self._last_seen[sample.charger_id] = now
        if verdict.ok:
            # A register is believed again only once it is consistent with its reference (``recovered``); any
            # believable value of another quantity ends that quantity's problem.
            if (verdict.recovered or not register) and self.tracker.is_active(key):
                self._apply_clear(key, now)
            restored = ConditionKey(sample.charger_id, connector, IncidentKind.METER_ANOMALY, RESTORED)
            if self.tracker.is_active(restored):
                self._apply_clear(restored, now)  # kept from the last run: its meter reads believably now
            return True
        assert verdict.code is not None
        self.flagged_samples += 1
        self._keep(anomaly_record(sample, verdict.code, verdict.detail))
        self._apply(key, Report(Severity.WARNING, "meter", verdict.code, info=verdict.detail), now)
        return False

    def control_findings(self, findings: Iterable[ControlFinding], now: datetime) -> None:
        """After a tick: connectors that ignore their limit or refused their profile; every controlled connector
        not listed is compliant (its incidents of these kinds clear)."""
        seen: set[tuple[str, int]] = set()
        for finding in findings:
            seen.add((finding.charger, finding.connector))
            ignore_key = ConditionKey(finding.charger, finding.connector, IncidentKind.IGNORES_LIMIT)
            if finding.ignoring_limit:
                info = None
                if finding.draw_kw is not None and finding.limit_kw is not None:
                    info = f"draws {finding.draw_kw:.1f} kW against a limit of {finding.limit_kw:.1f} kW"
                self._report_once(ignore_key, Report(Severity.CRITICAL, "dispatch", "limit_exceeded", info=info), now)
            else:
                self._apply_clear(ignore_key, now)
            reject_key = ConditionKey(finding.charger, finding.connector, IncidentKind.PROFILE_REJECTED)
            if finding.rejected_reason is not None:
                self._report_once(reject_key, Report(Severity.WARNING, "dispatch", "profile_rejected",
                                                     info=finding.rejected_reason), now)
            else:
                self._apply_clear(reject_key, now)
        for key in [k for k in self._control_keys() if k.connector is not None and (k.charger, k.connector) not in seen]:
            self._apply_clear(key, now)

    def failsafe_result(self, charger: str, accepted: bool, now: datetime) -> None:
        """Whether the charger took (and, where it can tell, holds) its fail-safe profiles: a refusal is a
        charger-wide ``profile_rejected`` incident, since the site's limits then rest on the controller alone."""
        key = ConditionKey(charger, None, IncidentKind.PROFILE_REJECTED)
        if accepted:
            self._apply_clear(key, now)
        else:
            self._report_once(key, Report(Severity.CRITICAL, "failsafe", "failsafe_rejected",
                                          info="fail-safe profiles refused or not in force: budgeted at its maximum"),
                              now)

    def evaluate(self, now: datetime) -> None:
        """Let time pass: silent chargers go offline; debounce, hysteresis and quiet periods run out."""
        silent_after = timedelta(seconds=self.settings.offline_after_s)
        if self._awaiting and self._started_at is not None and now - self._started_at >= silent_after:
            for charger in sorted(self._awaiting - {c for c, up in self._connected.items() if up}):
                self._apply(ConditionKey(charger, None, IncidentKind.OFFLINE),
                            Report(Severity.CRITICAL, "connection", OFFLINE_NOT_CONNECTED,
                                   info="not connected since the controller started"), self._started_at)
            self._awaiting.clear()
        for charger, connected in self._connected.items():
            if not connected:
                continue
            seen, traffic = self._last_seen.get(charger), self.last_traffic(charger)
            if seen is None or (traffic is not None and traffic > seen):
                seen = traffic
            if seen is None:
                continue
            key = self._offline_key(charger)
            if now - seen <= silent_after:
                if self.tracker.is_active(key):
                    self._apply_clear(key, now)  # it spoke again (a heartbeat publishes no event)
            elif not self.tracker.is_active(key):
                self._apply(key, Report(Severity.CRITICAL, "connection", OFFLINE_SILENT,
                                        info=f"no message for {(now - seen).total_seconds():.0f} s"), seen + silent_after)
        self._emit(self.tracker.advance(now))

    def prune(self, now: datetime) -> None:
        """Forget what is older than the retention: resolved incidents and ended operator requests here, events and
        incidents in the store (the operator's requests stay stored: they are few)."""
        before = now - timedelta(days=self.settings.retention_days)
        self.tracker.prune(before)
        self.operator.forget_ended_before(before)
        if self.history is not None:
            self.history.prune(before)

    # ------------------------------------------------------------------------------ reads

    def incidents(self, open: bool | None = None, charger: str | None = None,
                  since: datetime | None = None) -> list[Incident]:
        """Incidents newest first; ``open`` True/False keeps open/resolved ones; ``since`` keeps those still open
        or resolved at or after it."""
        rows = [i for i in self.tracker.incidents()
                if (open is None or i.is_open == open) and (charger is None or i.charger == charger)
                and (since is None or i.resolved_at is None or i.resolved_at >= since)]
        return sorted(rows, key=lambda i: i.opened_at, reverse=True)

    def open_incident(self, charger: str, connector: int | None, kind: IncidentKind) -> Incident | None:
        """The open incident of this kind on exactly this charger/connector (None: the charger as a whole)."""
        for incident in self.tracker.open_incidents():
            if incident.charger == charger and incident.connector == connector and incident.kind is kind:
                return incident
        return None

    async def events(self, charger: str, since: datetime | None = None, until: datetime | None = None,
                     limit: int = 500) -> list[EventRecord]:
        """The raw history of one charger, newest first, at most ``limit`` records; from the store when one is
        attached, else the last few hundred kept in memory."""
        if self.history is not None:
            return await self.history.read_events(charger, since, until, limit)
        rows = [r for r in self._recent.get(charger, ())
                if (since is None or r.time >= since) and (until is None or r.time < until)]
        return sorted(rows, key=lambda r: r.time, reverse=True)[:limit]

    def availability(self, since: datetime, until: datetime) -> list[AvailabilityRow]:
        """Per charger (``connector`` None) and per connector over [since, until); raises ValueError on an
        empty window."""
        connectors = dict(self.connectors)
        for charger in self._connected:
            connectors.setdefault(charger, 1)
        return availability(self.tracker.incidents(), connectors, since, until, self.operator.in_window(since, until))

    def counts_open(self) -> dict[tuple[IncidentKind, Severity], int]:
        counts: dict[tuple[IncidentKind, Severity], int] = {}
        for incident in self.tracker.open_incidents():
            key = (incident.kind, incident.severity)
            counts[key] = counts.get(key, 0) + 1
        return counts

    def totals(self) -> dict[IncidentKind, int]:
        """Incidents opened (announced to listeners) per kind since the start: a counter."""
        return dict(self.tracker.opened_total)

    def charger_up(self, charger: str) -> bool:
        """Connected, and neither the charger as a whole nor every one of its connectors is faulted."""
        if not self._connected.get(charger, False):
            return False
        faulted = {i.connector for i in self.tracker.open_incidents()
                   if i.charger == charger and i.kind is IncidentKind.FAULT and i.severity is Severity.CRITICAL}
        if None in faulted:
            return False
        count = self.connectors.get(charger, 1)
        return not all(c in faulted for c in range(1, count + 1))

    def connector_out_of_service(self, charger: str, connector: int) -> str | None:
        """Why a connector must leave the plan (a critical fault or an unrequested Unavailable of it or of its
        whole charger), or None. Known at once, without waiting for the debounce: control acts on the condition,
        alerts wait for it to last. A connector the operator took out of service is out too."""
        if self.operator.inoperative(charger, connector):
            return "inoperative (operator)"
        for key in (ConditionKey(charger, connector, IncidentKind.FAULT), ConditionKey(charger, None, IncidentKind.FAULT),
                    ConditionKey(charger, connector, IncidentKind.UNAVAILABLE),
                    ConditionKey(charger, None, IncidentKind.UNAVAILABLE)):
            incident = self.tracker.current(key)
            if incident is not None and (key.kind is IncidentKind.UNAVAILABLE or incident.severity is Severity.CRITICAL):
                return f"{key.kind.value}: {incident.code or ''}".strip()
        return None

    # ------------------------------------------------------------------------------ internals

    def _offline_key(self, charger: str) -> ConditionKey:
        key = self._offline_keys.get(charger)
        if key is None:
            key = self._offline_keys[charger] = ConditionKey(charger, None, IncidentKind.OFFLINE)
        return key

    def _findings(self, charger: str, findings: Iterable[rules.Finding], now: datetime) -> None:
        for f in findings:
            if f.active and f.kind is IncidentKind.UNAVAILABLE and self.operator.asked_unavailable(charger, f.connector):
                continue  # the operator asked for it: not a problem of the charger
            key = ConditionKey(charger, f.connector, f.kind)
            if f.active:
                self._apply(key, Report(f.severity, f.source, f.code, f.vendor_code, f.info), now)
            else:
                self._apply_clear(key, now)

    def _report_once(self, key: ConditionKey, report: Report, now: datetime) -> None:
        """A state seen every tick: report it when it starts, not as a new occurrence each tick."""
        if not self.tracker.is_active(key) or self.tracker.is_clearing(key):
            self._apply(key, report, now)

    def _control_keys(self) -> list[ConditionKey]:
        kinds = (IncidentKind.IGNORES_LIMIT, IncidentKind.PROFILE_REJECTED)
        return [k for k in self.tracker.active_keys() if k.kind in kinds]

    def _apply(self, key: ConditionKey, report: Report, now: datetime) -> None:
        if key.kind in _SERVICE_KINDS and self.tracker.current(key) is None:
            self.service_changes += 1
        self._emit(self.tracker.report(key, report, now))

    def _apply_clear(self, key: ConditionKey, now: datetime) -> None:
        if key.kind in _SERVICE_KINDS and self.tracker.current(key) is not None:
            self.service_changes += 1
        if self.tracker.is_active(key):
            self._emit(self.tracker.clear(key, now))

    def _emit(self, changes: list[IncidentChange]) -> None:
        for change in changes:
            if self.history is not None:
                self.history.save_incident(change.incident)
            if change.event == "repeated":
                continue
            log.info("incident %s id=%s charger=%s connector=%s kind=%s code=%s", change.event, change.incident.id,
                     change.incident.charger, change.incident.connector, change.incident.kind.value,
                     change.incident.code)
            for listener in list(self.listeners):
                try:
                    listener(change)
                except Exception:  # a broken subscriber must not stop the others or monitoring
                    log.exception("incident listener failed")

    def _keep(self, record: EventRecord) -> None:
        if self.history is not None:
            self.history.add_event(record)
            return
        recent = self._recent.get(record.charger)
        if recent is None:
            recent = self._recent[record.charger] = deque(maxlen=RECENT_EVENTS_PER_CHARGER)
        recent.append(record)
