"""What an operator or a fleet system tells the controller at run time, applied to every snapshot.

Three inputs, all set through the HTTP API and all taking effect at the next tick:

- an external grid cap (a grid operator's curtailment signal) with an optional end time; past it the cap is gone
  by itself, so a forgotten curtailment never throttles the depot for good;
- per-session overrides of departure, target SoC and priority (the operator knows the duty roster better than the
  fleet defaults, so an override beats every other source);
- vehicle data from telematics: SoC, battery temperature, battery capacity (``ValueSource.VEHICLE_DATA``). OCPP
  carries no EV battery temperature, so this is the only standard-free way to get a real one.

Session-bound inputs are keyed by connector *and transaction id*: when the vehicle leaves, its overrides and
data stop applying without anyone clearing them. Pure bookkeeping, no I/O; used from the event loop only.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from optimizer.domain import SessionState, ValueSource

log = logging.getLogger("depotctl.operator")

# A telematics temperature older than this no longer describes the battery (a charging pack warms by several
# degrees in that time); it is still passed on, marked estimated, so the thermal model can start from it.
VEHICLE_TEMP_FRESH = timedelta(minutes=15)
# SoC sources a telematics SoC may replace: it is more trustworthy than an estimate, less than a measurement.
_SOC_WEAKER = {ValueSource.ESTIMATED, ValueSource.DEFAULT, ValueSource.ROSTER, ValueSource.MODEL}


@dataclass(frozen=True, slots=True)
class GridCap:
    limit_kw: float
    set_at: datetime
    until: datetime | None = None
    reason: str = ""

    def active(self, now: datetime) -> bool:
        return self.until is None or now < self.until


@dataclass(frozen=True, slots=True)
class SessionOverride:
    transaction_id: str
    departure: datetime | None = None
    target_soc: float | None = None
    priority: float | None = None
    set_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class VehicleData:
    """What telematics reported for the vehicle in a session. ``delivered_kwh`` is the session's delivered energy
    when the SoC was read: the SoC is advanced by what was charged since, like a stale SoC measurand.

    Reports may carry only some fields, so each time-bound value keeps its own time: ``soc_at`` and ``temp_at``
    (None: ``measured_at``, the time of the report that brought it). ``measured_at`` is the newest report's."""

    transaction_id: str
    measured_at: datetime
    delivered_kwh: float
    soc: float | None = None
    battery_temp_c: float | None = None
    battery_kwh: float | None = None
    vehicle_id: str | None = None
    soc_at: datetime | None = None
    temp_at: datetime | None = None

    @property
    def soc_measured_at(self) -> datetime | None:
        return None if self.soc is None else self.soc_at or self.measured_at

    @property
    def temp_measured_at(self) -> datetime | None:
        return None if self.battery_temp_c is None else self.temp_at or self.measured_at

    def merged_into(self, old: VehicleData) -> VehicleData:
        """This report on top of ``old`` (same session): each field from the newer of the two reports that has it,
        with that report's time; a report older than ``old`` fills only what ``old`` lacks."""
        soc_new = self.soc is not None and (old.soc is None or _not_older(self.soc_measured_at, old.soc_measured_at))
        temp_new = self.battery_temp_c is not None and (
            old.battery_temp_c is None or _not_older(self.temp_measured_at, old.temp_measured_at))
        newer = self.measured_at >= old.measured_at
        return VehicleData(
            transaction_id=self.transaction_id,
            measured_at=max(self.measured_at, old.measured_at),
            delivered_kwh=self.delivered_kwh if soc_new else old.delivered_kwh,
            soc=self.soc if soc_new else old.soc,
            battery_temp_c=self.battery_temp_c if temp_new else old.battery_temp_c,
            battery_kwh=(self.battery_kwh if self.battery_kwh is not None and (newer or old.battery_kwh is None)
                         else old.battery_kwh),
            vehicle_id=(self.vehicle_id if self.vehicle_id and (newer or not old.vehicle_id) else old.vehicle_id),
            soc_at=self.soc_measured_at if soc_new else old.soc_measured_at,
            temp_at=self.temp_measured_at if temp_new else old.temp_measured_at,
        )


def _not_older(at: datetime | None, than: datetime | None) -> bool:
    return at is not None and (than is None or at >= than)


ConnectorKey = tuple[str, int]


class InputJournal(Protocol):
    """Where every change is written so that a restart restores it (the store; see ``recorder.py``). Calls must
    be cheap on the event loop."""

    def grid_cap_changed(self, cap: GridCap | None) -> None: ...

    def override_changed(self, key: ConnectorKey, override: SessionOverride) -> None: ...

    def vehicle_data_changed(self, key: ConnectorKey, data: VehicleData) -> None: ...

    def session_inputs_ended(self, key: ConnectorKey, transaction_id: str) -> None: ...


class OperatorInputs:
    def __init__(self) -> None:
        self.grid_cap: GridCap | None = None
        self.overrides: dict[ConnectorKey, SessionOverride] = {}
        self.vehicle_data: dict[ConnectorKey, VehicleData] = {}
        self.journal: InputJournal | None = None

    def restore(self, cap: GridCap | None, overrides: dict[ConnectorKey, SessionOverride],
                vehicle_data: dict[ConnectorKey, VehicleData]) -> None:
        """Take back what the journal held before a restart (not journaled again)."""
        self.grid_cap = cap
        self.overrides.update(overrides)
        self.vehicle_data.update(vehicle_data)

    # ------------------------------------------------------------------------------ grid cap

    def set_grid_cap(self, cap: GridCap | None) -> None:
        self.grid_cap = cap
        if self.journal is not None:
            self.journal.grid_cap_changed(cap)

    def grid_cap_kw(self, now: datetime) -> float | None:
        """The cap in force at ``now`` (kW, EV plus base load), or None."""
        cap = self.grid_cap
        if cap is None or not cap.active(now):
            return None
        return cap.limit_kw

    def expire(self, now: datetime) -> None:
        """Drop a cap whose end has passed (once, with a log line); reads already treat it as gone."""
        cap = self.grid_cap
        if cap is not None and not cap.active(now):
            log.info("external grid cap of %.1f kW expired at %s", cap.limit_kw, cap.until)
            self.set_grid_cap(None)  # through the journal: the stored cap goes too

    def grid_cap_until(self, now: datetime) -> datetime | None:
        """When the cap in force at ``now`` ends (None: no cap, or no end time)."""
        cap = self.grid_cap
        return cap.until if cap is not None and cap.active(now) else None

    # ------------------------------------------------------------------------------ sessions

    def set_override(self, key: ConnectorKey, override: SessionOverride) -> None:
        self.overrides[key] = override
        if self.journal is not None:
            self.journal.override_changed(key, override)

    def set_vehicle_data(self, key: ConnectorKey, data: VehicleData) -> None:
        old = self.vehicle_data.get(key)
        if old is not None and old.transaction_id == data.transaction_id:
            data = data.merged_into(old)  # a partial report keeps the other fields, each with its own time
        self.vehicle_data[key] = data
        if self.journal is not None:
            self.journal.vehicle_data_changed(key, data)

    def override_for(self, key: ConnectorKey, transaction_id: str) -> SessionOverride | None:
        override = self.overrides.get(key)
        return override if override is not None and override.transaction_id == transaction_id else None

    def vehicle_data_for(self, key: ConnectorKey, transaction_id: str) -> VehicleData | None:
        data = self.vehicle_data.get(key)
        return data if data is not None and data.transaction_id == transaction_id else None

    def forget_ended(self, open_sessions: dict[ConnectorKey, str]) -> None:
        """Drop inputs of sessions that are no longer open (``open_sessions``: connector -> transaction id)."""
        ended: set[tuple[ConnectorKey, str]] = set()
        for table in (self.overrides, self.vehicle_data):
            for key in [k for k, v in table.items() if open_sessions.get(k) != v.transaction_id]:
                ended.add((key, table.pop(key).transaction_id))
        if self.journal is not None:
            for key, transaction_id in sorted(ended):
                self.journal.session_inputs_ended(key, transaction_id)

    def apply_session(self, state: SessionState, transaction_id: str, now: datetime) -> SessionState:
        """``state`` with this session's vehicle data and overrides applied (a new value; ``state`` unchanged)."""
        key = (state.charger_id, state.connector_id)
        changes: dict[str, object] = {}
        data = self.vehicle_data_for(key, transaction_id)
        if data is not None:
            capacity = state.battery_kwh or data.battery_kwh
            if data.battery_kwh is not None and state.battery_kwh is None:
                changes["battery_kwh"] = data.battery_kwh
            if data.vehicle_id is not None and state.vehicle_id is None:
                changes["vehicle_id"] = data.vehicle_id
            if data.soc is not None and (state.soc is None or state.soc_source in _SOC_WEAKER):
                soc = data.soc
                if capacity:
                    soc = min(1.0, soc + max(0.0, state.energy_delivered_kwh - data.delivered_kwh) / capacity)
                changes["soc"] = soc
                changes["soc_source"] = ValueSource.VEHICLE_DATA
                # An energy request from the EV itself (ISO 15118) still beats this SoC in the optimizer.
            measured_fresh = state.battery_temp_c is not None and state.temp_source is ValueSource.MEASURED
            if data.battery_temp_c is not None and not measured_fresh:
                changes["battery_temp_c"] = data.battery_temp_c
                temp_at = data.temp_measured_at or data.measured_at
                fresh = now - temp_at <= VEHICLE_TEMP_FRESH
                changes["temp_source"] = ValueSource.VEHICLE_DATA if fresh else ValueSource.ESTIMATED
                changes["temp_at"] = temp_at
        override = self.override_for(key, transaction_id)
        if override is not None:
            if override.departure is not None:
                changes["departure"] = override.departure
            if override.target_soc is not None:
                changes["target_soc"] = override.target_soc
                if changes.get("soc", state.soc) is not None:
                    # The optimizer prefers an energy need over SoC and target; with a known SoC the operator's
                    # target must decide the need, so the EV's own request is set aside.
                    changes["energy_needed_kwh"] = None
            if override.priority is not None:
                changes["priority"] = override.priority
        return dataclasses.replace(state, **changes) if changes else state  # type: ignore[arg-type]
