"""Which transactions a store commits: for the tests that a burst is written in one."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlmodel import Session

from csms_adapter.store import Store

T = TypeVar("T")


def count_writes(store: Store) -> list[str]:
    """The names of ``store``'s writes from now on, in order, filled as they happen (each write still runs)."""
    writes: list[str] = []
    write = store.write

    def counted(what: str, fn: Callable[[Session], T]) -> T:
        writes.append(what)
        return write(what, fn)

    store.write = counted  # type: ignore[method-assign]
    return writes
