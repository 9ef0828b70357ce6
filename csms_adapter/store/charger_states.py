"""What each charger and connector last reported (the ``chargers`` and ``connectors`` rows), written for many
changes at once. A boot storm is thousands of small changes (booted, connected, a status per connector, and the
statuses again when the controller asks for them); one transaction each was most of the store's CPU and of the
database server's while a depot boots. Here a batch of changes is folded in order (the later value of a column
wins, ``None`` leaves it as it was, exactly as one ``Store.upsert_charger`` / ``upsert_connector`` after another)
and written in one transaction: one SELECT of the rows that exist, one INSERT of the missing ones and one UPDATE
per set of columns, each run for many rows at once.

    save_charger_states(store, [ChargerChange("cp-01", {"connected": True, "last_seen_at": t}),
                                ConnectorChange("cp-01", 1, "Available", t)])
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, and_, bindparam, insert, select, update
from sqlmodel import Session

from csms_adapter.store.models import ChargerRow, ConnectorRow
from csms_adapter.store.repository import Store

# Columns a ChargerChange may set (the rest of the row is its key).
CHARGER_COLUMNS = ("ocpp_version", "vendor", "model", "firmware", "last_boot_at", "last_seen_at", "connected")
IN_CHUNK = 500  # ids per IN (...) list: far below any database's limit on bound parameters


@dataclass(frozen=True, slots=True)
class ChargerChange:
    """Columns of one charger's row to set (``CHARGER_COLUMNS``; a None value leaves the column unchanged)."""

    charger_id: str
    columns: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ConnectorChange:
    charger_id: str
    connector_id: int
    status: str | None
    at: datetime


def fold(changes: Sequence[ChargerChange | ConnectorChange]
         ) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, int], tuple[str | None, datetime]]]:
    """The changes as the rows they leave: columns set per charger (a charger that only has connector changes is
    there too, with none: its row must exist) and (status, at) per connector. Raises ValueError for a column that
    is not in ``CHARGER_COLUMNS``."""
    chargers: dict[str, dict[str, Any]] = {}
    connectors: dict[tuple[str, int], tuple[str | None, datetime]] = {}
    for change in changes:
        if isinstance(change, ChargerChange):
            unknown = set(change.columns) - set(CHARGER_COLUMNS)
            if unknown:
                raise ValueError(f"charger {change.charger_id}: no column {', '.join(sorted(unknown))}")
            columns = chargers.setdefault(change.charger_id, {})
            columns.update((name, value) for name, value in change.columns.items() if value is not None)
        else:
            chargers.setdefault(change.charger_id, {})
            connectors[(change.charger_id, change.connector_id)] = (change.status, change.at)
    return chargers, connectors


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), IN_CHUNK):
        yield items[start:start + IN_CHUNK]


def _write_chargers(conn: Connection, site: str, chargers: dict[str, dict[str, Any]]) -> None:
    table: Table = ChargerRow.__table__  # type: ignore[attr-defined]
    ids = sorted(chargers)
    existing: set[str] = set()
    for chunk in _chunks(ids):
        existing |= set(conn.execute(select(table.c.id).where(table.c.site == site,
                                                              table.c.id.in_(chunk))).scalars())
    new = [{"site": site, "id": cid, **{name: None for name in CHARGER_COLUMNS}, "connected": False,
            **chargers[cid]} for cid in ids if cid not in existing]
    if new:
        conn.execute(insert(table), new)
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for cid in ids:
        if cid in existing and chargers[cid]:
            names = tuple(sorted(chargers[cid]))
            by_columns.setdefault(names, []).append({"b_id": cid, **{f"v_{n}": chargers[cid][n] for n in names}})
    for names, rows in by_columns.items():
        conn.execute(update(table).where(table.c.site == site, table.c.id == bindparam("b_id"))
                     .values({name: bindparam(f"v_{name}") for name in names}), rows)


def _write_connectors(conn: Connection, site: str,
                      connectors: dict[tuple[str, int], tuple[str | None, datetime]]) -> None:
    if not connectors:
        return
    table: Table = ConnectorRow.__table__  # type: ignore[attr-defined]
    existing: set[tuple[str, int]] = set()
    for chunk in _chunks(sorted({cid for cid, _ in connectors})):
        query = select(table.c.charger_id, table.c.connector_id).where(table.c.site == site,
                                                                        table.c.charger_id.in_(chunk))
        existing |= {(str(cid), int(k)) for cid, k in conn.execute(query)}
    keys = sorted(connectors)
    new = [{"site": site, "charger_id": cid, "connector_id": k, "status": connectors[(cid, k)][0],
            "updated_at": connectors[(cid, k)][1]} for cid, k in keys if (cid, k) not in existing]
    if new:
        conn.execute(insert(table), new)
    known = [{"b_charger": cid, "b_connector": k, "v_status": connectors[(cid, k)][0],
              "v_at": connectors[(cid, k)][1]} for cid, k in keys if (cid, k) in existing]
    if known:
        conn.execute(update(table).where(and_(table.c.site == site, table.c.charger_id == bindparam("b_charger"),
                                              table.c.connector_id == bindparam("b_connector")))
                     .values(status=bindparam("v_status"), updated_at=bindparam("v_at")), known)


def save_charger_states(store: Store, changes: Sequence[ChargerChange | ConnectorChange]) -> int:
    """Write ``changes`` (in order) in one transaction of ``store``'s site; returns how many were written."""
    if not changes:
        return 0
    chargers, connectors = fold(changes)

    def work(session: Session) -> int:
        # Core statements with the site in every condition: the rows are this site's by construction.
        conn = session.connection()
        _write_chargers(conn, store.site, chargers)
        _write_connectors(conn, store.site, connectors)
        return len(changes)

    return store.write("save charger and connector states", work)
