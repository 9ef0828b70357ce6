"""The start-up heap is frozen once: full collections stop walking it, and what is made later is still collected."""

from __future__ import annotations

import gc
import weakref

from csms_adapter.control.startup_heap import freeze_startup_heap


class Node:
    other: Node | None = None


def test_frozen_objects_leave_the_collectors_walk_and_later_cycles_are_still_collected() -> None:
    try:
        before = len(gc.get_objects())
        frozen = freeze_startup_heap()
        assert frozen >= before // 2 and gc.get_freeze_count() == frozen
        assert len(gc.get_objects()) < before // 10  # what a full collection walks now
        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle made after start-up: only the collector can free it
        gone = weakref.ref(a)
        del a, b
        gc.collect()
        assert gone() is None
    finally:
        gc.unfreeze()  # this is a test process, not a controller
    assert gc.get_freeze_count() == 0
