"""The controller's start-up heap, frozen once so that the garbage collector stops walking it.

A full (generation 2) collection walks every object the collector tracks. Once the controller is built, about
180,000 of them are the imported modules, classes, functions and schemas that live as long as the process; one
full collection of those alone took 100–130 ms of CPU on the event loop's thread (docs/benchmarks.md, "Dispatch
CPU per call"), and such collections come when the heap grows, e.g. while a thousand chargers boot and the first
ticks go out. ``gc.freeze()`` moves what exists to a permanent generation that collections skip; everything made
later is collected as before. A full collection first, so that no garbage is frozen with it.

Called by ``depotctl run`` and the load benchmark before the OCPP server listens, never by ``Controller`` itself:
a test process builds many controllers, and its heap is not the controller's.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect, then freeze every tracked object; returns how many are frozen (all of them, in one process, stay
    frozen: call once, after the controller and its optional parts are built)."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
