"""Operator inputs and the billing-period peak to and from the store, so that a restart forgets none of them.

``StoreJournal`` is the ``InputJournal`` of ``OperatorInputs``: every change becomes a queued store write (the
recorder's queue, so it is ordered with everything else and never waits on the database). ``load_operator_state``
reads it all back at start: rows that fail their checks (a corrupt value, a SoC of 7, a cap that already ended)
are logged with their reason and skipped; everything else is restored.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from csms_adapter.control.failsafe import HeldShare
from csms_adapter.control.operator_inputs import ConnectorKey, GridCap, SessionOverride, VehicleData
from csms_adapter.monitoring.operator_unavailability import ACCEPTED, SCHEDULED, OperatorSpan
from csms_adapter.store import StoreError
from csms_adapter.store.models import (
    BillingPeakRow,
    FailsafeHeldRow,
    GridCapRow,
    OperatorAvailabilityRow,
    SessionOverrideRow,
    VehicleDataRow,
)
from csms_adapter.store.operator_state import OperatorStateStore

log = logging.getLogger("depotctl.operator_journal")

Later = Callable[[Callable[[], Any]], None]


@dataclass
class OperatorState:
    """What the store held at start."""

    grid_cap: GridCap | None = None
    overrides: dict[ConnectorKey, SessionOverride] = field(default_factory=dict)
    vehicle_data: dict[ConnectorKey, VehicleData] = field(default_factory=dict)
    billing_peaks: dict[str, float] = field(default_factory=dict)  # local "YYYY-MM" → kW
    failsafe_held: dict[str, HeldShare] = field(default_factory=dict)  # charger id → the share it last accepted
    operator_spans: list[OperatorSpan] = field(default_factory=list)  # operator-requested unavailability
    problems: list[str] = field(default_factory=list)


def held_share_of(row: FailsafeHeldRow) -> HeldShare:
    if not (math.isfinite(row.station_kw) and row.station_kw >= 0):
        raise ValueError(f"station_kw {row.station_kw!r} is not a non-negative number")
    if not 1 <= row.spread <= 3:
        raise ValueError(f"spread {row.spread!r} is not 1, 2 or 3 phases")
    return HeldShare(row.station_kw, row.spread, row.accepted_at)


def _fraction(value: float | None) -> bool:
    return value is None or (math.isfinite(value) and 0.0 <= value <= 1.0)


def _finite(value: float | None, *, positive: bool = False) -> bool:
    return value is None or (math.isfinite(value) and (value > 0 if positive else True))


def grid_cap_of(row: GridCapRow) -> GridCap:
    """Raises ValueError when the row cannot be a cap."""
    if not (math.isfinite(row.limit_kw) and row.limit_kw >= 0):
        raise ValueError(f"limit_kw {row.limit_kw!r} is not a non-negative number")
    return GridCap(limit_kw=row.limit_kw, set_at=row.set_at, until=row.until, reason=row.reason or "")


def override_of(row: SessionOverrideRow) -> SessionOverride:
    if not _fraction(row.target_soc):
        raise ValueError(f"target_soc {row.target_soc!r} is not within 0..1")
    if not _finite(row.priority, positive=True):
        raise ValueError(f"priority {row.priority!r} is not a positive number")
    return SessionOverride(row.transaction_id, row.departure, row.target_soc, row.priority, row.set_at)


def vehicle_data_of(row: VehicleDataRow) -> VehicleData:
    if not _fraction(row.soc):
        raise ValueError(f"soc {row.soc!r} is not within 0..1")
    if not _finite(row.battery_temp_c) or not _finite(row.battery_kwh, positive=True):
        raise ValueError("battery_temp_c or battery_kwh is not a valid number")
    if not (math.isfinite(row.delivered_kwh) and row.delivered_kwh >= 0):
        raise ValueError(f"delivered_kwh {row.delivered_kwh!r} is not a non-negative number")
    return VehicleData(row.transaction_id, row.measured_at, row.delivered_kwh, row.soc, row.battery_temp_c,
                       row.battery_kwh, row.vehicle_id, soc_at=row.soc_at, temp_at=row.temp_at)


def operator_span_of(row: OperatorAvailabilityRow) -> OperatorSpan:
    if row.status not in (ACCEPTED, SCHEDULED):
        raise ValueError(f"status {row.status!r} is neither {ACCEPTED} nor {SCHEDULED}")
    if row.connector_id < 0:
        raise ValueError(f"connector_id {row.connector_id!r} is negative")
    if row.started_at is None and row.status == ACCEPTED:
        raise ValueError("an Accepted request without started_at")
    if row.ended_at is not None and (row.started_at is None or row.ended_at < row.started_at):
        raise ValueError("ended_at before started_at")
    return OperatorSpan(row.id, row.charger_id, row.connector_id, row.requested_at, row.status, row.started_at,
                        row.ended_at, row.reason or "")


def operator_row_of(span: OperatorSpan) -> OperatorAvailabilityRow:
    return OperatorAvailabilityRow(id=span.id, charger_id=span.charger, connector_id=span.connector,
                                   requested_at=span.requested_at, status=span.status, started_at=span.started_at,
                                   ended_at=span.ended_at, reason=span.reason)


def load_operator_state(ops: OperatorStateStore, now: datetime) -> OperatorState:
    """Everything restorable, read synchronously (at start, before the event loop is busy). A table that cannot
    be read at all is reported like a bad row: the controller starts without it."""
    state = OperatorState()

    def each(model: Any, convert: Callable[[Any], None]) -> None:
        try:
            loaded = ops.load(model)
        except StoreError as exc:
            state.problems.append(f"table {model.__tablename__}: {exc.reason}")
            return
        state.problems.extend(loaded.problems)
        for row in loaded.rows:
            try:
                convert(row)
            except ValueError as exc:
                state.problems.append(f"table {model.__tablename__} {_key(row)}: {exc}")

    def cap(row: GridCapRow) -> None:
        restored = grid_cap_of(row)
        if restored.active(now):
            state.grid_cap = restored
        else:
            log.info("stored grid cap of %.1f kW ended at %s while the controller was stopped", restored.limit_kw,
                     restored.until)

    def override(row: SessionOverrideRow) -> None:
        state.overrides[(row.charger_id, row.connector_id)] = override_of(row)

    def vehicle(row: VehicleDataRow) -> None:
        state.vehicle_data[(row.charger_id, row.connector_id)] = vehicle_data_of(row)

    def peak(row: BillingPeakRow) -> None:
        if not (math.isfinite(row.peak_kw) and row.peak_kw >= 0):
            raise ValueError(f"peak_kw {row.peak_kw!r} is not a non-negative number")
        state.billing_peaks[row.period] = row.peak_kw

    def held(row: FailsafeHeldRow) -> None:
        state.failsafe_held[row.charger_id] = held_share_of(row)

    each(GridCapRow, cap)
    each(SessionOverrideRow, override)
    each(VehicleDataRow, vehicle)
    each(BillingPeakRow, peak)
    each(FailsafeHeldRow, held)
    each(OperatorAvailabilityRow, lambda row: state.operator_spans.append(operator_span_of(row)))
    for problem in state.problems:
        log.warning("operator state not restored: %s; it is ignored (set it again through the API if it still "
                    "applies)", problem)
    return state


def _key(row: Any) -> str:
    if isinstance(row, SessionOverrideRow | VehicleDataRow):
        return f"{row.charger_id}/{row.connector_id}"
    if isinstance(row, FailsafeHeldRow):
        return f"charger {row.charger_id}"
    if isinstance(row, BillingPeakRow):
        return f"period {row.period}"
    if isinstance(row, OperatorAvailabilityRow):
        return f"{row.charger_id}/{row.connector_id} id {row.id}"
    return "row"


class StoreJournal:
    """``InputJournal`` on the store; ``later`` queues a write (``StoreRecorder._later``)."""

    def __init__(self, ops: OperatorStateStore, later: Later,
                 held: Callable[[tuple[str, FailsafeHeldRow | None]], None] | None = None) -> None:
        """``held``: where fail-safe shares held go to be written together (the recorder batches them: a boot
        storm changes a thousand); without it each is its own write."""
        self.ops = ops
        self.later = later
        self.held = held

    def grid_cap_changed(self, cap: GridCap | None) -> None:
        row = (GridCapRow(limit_kw=cap.limit_kw, set_at=cap.set_at, until=cap.until, reason=cap.reason)
               if cap is not None else None)
        self.later(lambda: self.ops.save_grid_cap(row))

    def override_changed(self, key: ConnectorKey, override: SessionOverride) -> None:
        row = SessionOverrideRow(charger_id=key[0], connector_id=key[1], transaction_id=override.transaction_id,
                                 departure=override.departure, target_soc=override.target_soc,
                                 priority=override.priority, set_at=override.set_at)
        self.later(lambda: self.ops.save_override(row))

    def vehicle_data_changed(self, key: ConnectorKey, data: VehicleData) -> None:
        row = VehicleDataRow(charger_id=key[0], connector_id=key[1], transaction_id=data.transaction_id,
                             measured_at=data.measured_at, delivered_kwh=data.delivered_kwh, soc=data.soc,
                             battery_temp_c=data.battery_temp_c, battery_kwh=data.battery_kwh,
                             vehicle_id=data.vehicle_id, soc_at=data.soc_at, temp_at=data.temp_at)
        self.later(lambda: self.ops.save_vehicle_data(row))

    def session_inputs_ended(self, key: ConnectorKey, transaction_id: str) -> None:
        self.later(lambda: self.ops.forget_session_inputs(key[0], key[1], transaction_id))

    def operator_spans_changed(self, spans: list[OperatorSpan]) -> None:
        for span in spans:
            self.later(functools.partial(self.ops.save_operator_availability, operator_row_of(span)))

    def billing_peak_changed(self, period: str, peak_kw: float, at: datetime) -> None:
        row = BillingPeakRow(period=period, peak_kw=peak_kw, updated_at=at)
        self.later(lambda: self.ops.save_billing_peak(row))

    def failsafe_held_changed(self, charger_id: str, held: HeldShare | None) -> None:
        row = None if held is None else FailsafeHeldRow(charger_id=charger_id, station_kw=held.station_kw,
                                                        spread=held.spread, accepted_at=held.accepted_at)
        if self.held is not None:
            self.held((charger_id, row))
        elif row is None:
            self.later(lambda: self.ops.forget_failsafe_held(charger_id))
        else:
            self.later(lambda: self.ops.save_failsafe_held(row))
