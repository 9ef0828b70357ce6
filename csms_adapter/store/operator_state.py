"""Operator state that survives a restart: the external grid cap, session overrides, vehicle data, the
billing-period peak and the fail-safe share each charger holds (tables in ``models.py``).

Writes are short transactions like every other ``Store`` write. Reads go row by row through the raw driver and
validate each row on its own, so that one corrupt row (a hand-edited database, a half-written value) is reported
and skipped while every other row is restored: ``load`` returns the good rows and a reason for each bad one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import ValidationError
from sqlalchemy import delete, insert, text
from sqlmodel import Session, SQLModel

from csms_adapter.store.models import (
    BillingPeakRow,
    FailsafeHeldRow,
    GridCapRow,
    OperatorAvailabilityRow,
    SessionOverrideRow,
    VehicleDataRow,
)
from csms_adapter.store.repository import Store

R = TypeVar("R", bound=SQLModel)
_DATETIME_FIELDS = {
    GridCapRow: ("set_at", "until"),
    SessionOverrideRow: ("departure", "set_at"),
    VehicleDataRow: ("measured_at", "soc_at", "temp_at"),
    BillingPeakRow: ("updated_at",),
    FailsafeHeldRow: ("accepted_at",),
    OperatorAvailabilityRow: ("requested_at", "started_at", "ended_at"),
}


@dataclass(frozen=True, slots=True)
class Loaded(Generic[R]):
    """The rows of one table that could be read back, and one line per row that could not."""

    rows: list[R]
    problems: list[str]


def _aware(value: Any) -> Any:
    # SQLite keeps naive UTC (``UTCDateTime``); the row is validated first, so a datetime here is well-formed.
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


class OperatorStateStore:
    """Reads and writes the operator-state tables of ``store``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # ---------------------------------------------------------------------------- writes

    def _put(self, what: str, row: SQLModel) -> None:
        # Every operator-state table is site-scoped.
        row.site = self.store.site

        def work(session: Session) -> None:
            session.merge(row)

        self.store.write(what, work)

    def save_grid_cap(self, row: GridCapRow | None) -> None:
        """Replace the stored cap; None deletes it."""
        if row is None:
            self.store.write("clear grid cap", lambda s: s.execute(delete(GridCapRow)))
        else:
            self._put("save grid cap", row)

    def save_override(self, row: SessionOverrideRow) -> None:
        self._put("save session override", row)

    def save_vehicle_data(self, row: VehicleDataRow) -> None:
        self._put("save vehicle data", row)

    def forget_session_inputs(self, charger_id: str, connector_id: int, transaction_id: str) -> None:
        """Drop the override and vehicle data of a session that ended (a newer session's rows stay)."""

        def work(session: Session) -> None:
            for table in (SessionOverrideRow, VehicleDataRow):
                session.execute(delete(table).where(
                    table.charger_id == charger_id,  # type: ignore[arg-type]
                    table.connector_id == connector_id,  # type: ignore[arg-type]
                    table.transaction_id == transaction_id))  # type: ignore[arg-type]

        self.store.write("forget session inputs", work)

    def save_billing_peak(self, row: BillingPeakRow) -> None:
        self._put("save billing peak", row)

    def save_failsafe_held(self, row: FailsafeHeldRow) -> None:
        self._put("save fail-safe share held", row)

    def save_failsafe_held_many(self, changes: Mapping[str, FailsafeHeldRow | None]) -> int:
        """What many chargers now hold (None: no longer known), in one transaction: a boot storm sends a thousand
        fail-safe shares within a minute. Returns how many chargers were written."""
        site = self.store.site
        table = FailsafeHeldRow.__table__  # type: ignore[attr-defined]
        ids = sorted(changes)
        rows = [{"site": site, "charger_id": cid, "station_kw": row.station_kw, "spread": row.spread,
                 "accepted_at": row.accepted_at} for cid in ids if (row := changes[cid]) is not None]

        def work(session: Session) -> None:
            conn = session.connection()  # Core statements, the site in every condition
            for start in range(0, len(ids), 500):
                conn.execute(delete(table).where(table.c.site == site, table.c.charger_id.in_(ids[start:start + 500])))
            if rows:
                conn.execute(insert(table), rows)

        if ids:
            self.store.write("save fail-safe shares held", work)
        return len(ids)

    def forget_failsafe_held(self, charger_id: str) -> None:
        """What the charger holds is no longer known (a fail-safe call failed or was refused)."""
        def work(session: Session) -> None:
            session.execute(delete(FailsafeHeldRow).where(
                FailsafeHeldRow.charger_id == charger_id))  # type: ignore[arg-type]

        self.store.write("forget fail-safe share held", work)
    def save_operator_availability(self, row: OperatorAvailabilityRow) -> None:
        """Insert or rewrite one span of operator-requested unavailability (by id)."""
        self._put("save operator availability", row)

    # ---------------------------------------------------------------------------- reads

    def load(self, model: type[R], key: Callable[[R], object] | None = None) -> Loaded[R]:
        """Every row of ``model``'s table that validates (datetimes aware UTC), and why each other row does not.
        Raises ``StoreError`` only when the table cannot be read at all."""
        table = model.__tablename__

        def work(session: Session) -> Loaded[R]:
            # The table name is ours; raw rows (no type processing) so that each is validated on its own.
            result = session.connection().execute(text(f'SELECT * FROM "{table}" WHERE site = :site'),
                                                  {"site": self.store.site})
            names = list(result.keys())
            rows: list[R] = []
            problems: list[str] = []
            for number, raw in enumerate(result, start=1):
                values = dict(zip(names, raw, strict=True))
                try:
                    row = model.model_validate(values)
                except ValidationError as exc:
                    first = exc.errors()[0]
                    field = ".".join(str(p) for p in first["loc"])
                    problems.append(f"table {table} row {number}: {field}: {first['msg']}")
                    continue
                for name in _DATETIME_FIELDS.get(model, ()):
                    setattr(row, name, _aware(getattr(row, name)))
                rows.append(row)
            return Loaded(rows, problems)

        return self.store.read(f"read {table}", work)
