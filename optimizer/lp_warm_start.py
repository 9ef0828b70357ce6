"""A warm start for the next tick's LP from the last tick's optimal basis (docs/lp.md, "Warm start across ticks").

Consecutive ticks solve almost the same LP: the same vehicles, a minute further on. Its rows and columns are not
the same by position (a taper window starts a step later, a vehicle arrives), so each row and column gets a key
that names what it is: family, connector (or circuit) and step. The last basis is carried over key by key; a row
or column without a counterpart starts as a slack (rows) or at a bound (columns), and the basis is patched to the
right number of basic variables. HiGHS repairs a singular start itself.

A start only decides where the simplex begins: the solve still ends at an optimum of the new LP, within the same
tolerances. What it changes is which optimum, where there are several (the first step's split of the site's
capacity between vehicles that need the same is often free): the one nearest the last tick's plan, so that plans
also change less from tick to tick.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from optimizer.lp_model import LinearProgram

# HiGHS basis statuses (HighsBasisStatus): a nonbasic variable sits at its lower or upper bound, or at zero (free).
LOWER, BASIC, UPPER, ZERO = 0, 1, 2, 3
StatusArray = NDArray[np.int8]
KeyArray = NDArray[np.int64]

# Below this share of the new LP's columns found in the last one (mostly p[i, t]: the share of vehicles known), start
# cold. 1,000 live-like sessions arriving 250 per tick: with 750 of 1,000 known the solve took 2,347 iterations warm
# against 5,275 cold, 500 of 750: 1,480 against 3,587, but 250 of 500: 2,248 against 1,926.
MIN_KNOWN_COLUMNS = 0.6

# key = ((family << ENTITY_BITS) | entity) << STEP_BITS | step
STEP_BITS = 16
ENTITY_BITS = 28


@dataclass(frozen=True, slots=True)
class Basis:
    """Statuses of every column and row (HiGHS codes above)."""

    columns: StatusArray
    rows: StatusArray


@dataclass(slots=True)
class _Names:
    """Small integers for family, connector and circuit names; stable for the life of one ``WarmStart``."""

    ids: dict[str, int] = field(default_factory=dict)

    def of(self, name: str) -> int:
        found = self.ids.get(name)
        if found is None:
            found = self.ids[name] = len(self.ids)
        return found

    def many(self, names: tuple[str, ...] | list[str]) -> NDArray[np.int64]:
        return np.fromiter((self.of(n) for n in names), dtype=np.int64, count=len(names))


@dataclass(slots=True)
class WarmStart:
    """Remembers the keys and basis of the last solved LP and maps that basis onto the next one."""

    _names: _Names = field(default_factory=_Names)
    _keys: tuple[KeyArray, KeyArray] | None = None  # (columns, rows), sorted
    _basis: Basis | None = None  # in the sorted order of ``_keys``
    _latest: tuple[LinearProgram, tuple[KeyArray, KeyArray] | None] | None = None  # the keys last worked out

    def forget(self) -> None:
        self._keys = None
        self._basis = None

    def remember(self, lp: LinearProgram, basis: Basis | None) -> None:
        """Keep ``basis`` (an optimal basis of ``lp``) for the next LP; None forgets."""
        keys = self._lp_keys(lp) if basis is not None else None
        self._latest = None  # do not hold the LP
        if basis is None or keys is None or basis.columns.size != keys[0].size or basis.rows.size != keys[1].size:
            self.forget()
            return
        col_order, row_order = np.argsort(keys[0]), np.argsort(keys[1])
        self._keys = (keys[0][col_order], keys[1][row_order])
        self._basis = Basis(basis.columns[col_order], basis.rows[row_order])

    def basis_for(self, lp: LinearProgram) -> Basis | None:
        """A starting basis for ``lp`` from the remembered one, or None (nothing remembered, or keys unusable)."""
        if self._keys is None or self._basis is None:
            return None
        keys = self._lp_keys(lp)
        if keys is None:
            return None
        columns, col_matched = _carry(keys[0], self._keys[0], self._basis.columns, LOWER)
        if np.count_nonzero(col_matched) < MIN_KNOWN_COLUMNS * col_matched.size:
            return None
        rows, row_matched = _carry(keys[1], self._keys[1], self._basis.rows, BASIC)
        _fit_bounds(columns, lp.col_lb, lp.col_ub)
        _fit_bounds(rows, lp.row_lb, lp.row_ub)
        _fix_count(columns, rows, col_matched, row_matched, lp)
        _fit_bounds(columns, lp.col_lb, lp.col_ub)
        _fit_bounds(rows, lp.row_lb, lp.row_ub)
        return Basis(columns, rows)

    # ------------------------------------------------------------------------------------------------ keys

    def _key(self, family: str, entity: NDArray[np.int64], step: NDArray[np.int64]) -> KeyArray:
        code = np.int64(self._names.of(family))
        return ((code << ENTITY_BITS) | entity) << STEP_BITS | step

    def _lp_keys(self, lp: LinearProgram) -> tuple[KeyArray, KeyArray] | None:
        """Keys of every column and row of ``lp``; None when they do not name each one once."""
        if self._latest is not None and self._latest[0] is lp:  # basis_for, then remember: the same LP
            return self._latest[1]
        keys = self._work_out_keys(lp)
        self._latest = (lp, keys)
        return keys

    def _work_out_keys(self, lp: LinearProgram) -> tuple[KeyArray, KeyArray] | None:
        labels = next((g.labels for g in lp.groups if g.kind == "departure_energy"), None)
        if labels is None or len(labels) != lp.sessions:
            return None
        session = self._names.many(labels)
        n, steps = lp.sessions, lp.steps
        cols = [self._key("p", np.repeat(session, steps), np.tile(np.arange(steps, dtype=np.int64), n)),
                self._key("u", session, np.zeros(n, dtype=np.int64))]
        for i, first, theta in lp.theta_cols:
            cols.append(self._key("theta", np.full(theta.size, session[i]), first + np.arange(theta.size, dtype=np.int64)))
        placed = sum(c.size for c in cols)
        # The rest (high-SoC z, the peak, margins) by their place from the end of the matrix: good enough for a start.
        cols.append(self._key("tail", np.zeros(lp.columns - placed, dtype=np.int64),
                              np.arange(lp.columns - placed, dtype=np.int64)))
        rows: list[KeyArray] = []
        for group in lp.groups:
            if group.per_step > 0:
                entity = np.repeat(self._names.many(group.labels), group.per_step)
                step = np.tile(np.arange(group.per_step, dtype=np.int64), len(group.labels))
            elif group.kind == "soc_taper":
                entity, step = _window_rows(session, [(i, first, last) for i, first, last in lp.taper_windows])
            elif group.kind == "battery_temperature_state":
                entity, step = _window_rows(session, [(i, f, f + c.size - 1) for i, f, c in lp.theta_cols])
            else:  # one row per label entry, numbered in order
                entity = self._names.many(group.labels)
                step = np.arange(len(group.labels), dtype=np.int64)
            rows.append(self._key(group.kind, entity, step))
        col_keys = np.concatenate(cols)
        row_keys = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        if col_keys.size != lp.columns or row_keys.size != lp.matrix.shape[0] or _repeats(col_keys) or _repeats(row_keys):
            return None
        return col_keys, row_keys


def _repeats(keys: KeyArray) -> bool:
    ordered = np.sort(keys)
    return bool(np.any(ordered[1:] == ordered[:-1]))


def _window_rows(session: NDArray[np.int64], windows: list[tuple[int, int, int]]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    if not windows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    widths = np.array([last - first + 1 for _, first, last in windows], dtype=np.int64)
    entity = np.repeat(session[[i for i, _, _ in windows]], widths)
    starts = np.repeat(np.array([first for _, first, _ in windows], dtype=np.int64), widths)
    offsets = np.arange(int(widths.sum()), dtype=np.int64) - np.repeat(np.cumsum(widths) - widths, widths)
    return entity, starts + offsets


def _carry(keys: KeyArray, old_keys: KeyArray, old_status: StatusArray, default: int) -> tuple[StatusArray, NDArray[np.bool_]]:
    """The old status of each key found in ``old_keys`` (sorted), ``default`` for the others."""
    status = np.full(keys.size, default, dtype=np.int8)
    if old_keys.size == 0:
        return status, np.zeros(keys.size, dtype=np.bool_)
    at = np.minimum(np.searchsorted(old_keys, keys), old_keys.size - 1)
    matched = old_keys[at] == keys
    status[matched] = old_status[at[matched]]
    return status, matched


def _fit_bounds(status: StatusArray, lower: NDArray[np.float64], upper: NDArray[np.float64]) -> None:
    """A nonbasic variable must sit at a finite bound (or at zero when it has none)."""
    nonbasic = status != BASIC
    has_lower, has_upper = np.isfinite(lower), np.isfinite(upper)
    status[nonbasic & (status == LOWER) & ~has_lower] = UPPER
    status[nonbasic & (status == UPPER) & ~has_upper] = LOWER
    status[nonbasic & (status == ZERO) & has_lower] = LOWER
    status[nonbasic & (status == ZERO) & ~has_lower & has_upper] = UPPER
    status[nonbasic & ~has_lower & ~has_upper] = ZERO


def _fix_count(columns: StatusArray, rows: StatusArray, col_matched: NDArray[np.bool_], row_matched: NDArray[np.bool_],
               lp: LinearProgram) -> None:
    """Make the number of basic variables equal the number of rows: demote rows, then columns, new ones first;
    or promote row slacks, new rows first."""
    excess = int(np.count_nonzero(columns == BASIC) + np.count_nonzero(rows == BASIC)) - rows.size
    if excess > 0:
        for status, matched, lower, upper in ((rows, row_matched, lp.row_lb, lp.row_ub),
                                              (columns, col_matched, lp.col_lb, lp.col_ub)):
            candidates = np.flatnonzero((status == BASIC) & (np.isfinite(lower) | np.isfinite(upper)))
            candidates = candidates[np.argsort(matched[candidates], kind="stable")][:excess]
            status[candidates] = np.where(np.isfinite(lower[candidates]), LOWER, UPPER)
            excess -= candidates.size
            if excess == 0:
                return
    elif excess < 0:
        candidates = np.flatnonzero(rows != BASIC)
        candidates = candidates[np.argsort(row_matched[candidates], kind="stable")][:-excess]
        rows[candidates] = BASIC
