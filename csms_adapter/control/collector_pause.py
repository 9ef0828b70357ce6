"""The cyclic garbage collector held off while a dispatch burst is in flight.

A full tick sends two calls to every charger (1,000 TxProfiles and 1,000 live station maxima at 1,000 chargers),
and the objects those calls make start collections that walk the whole live heap: on the 1,000-charger load
benchmark 0.3 s of the first full tick went to collections on the event loop, a fifth of its dispatch
(docs/benchmarks.md, "Load benchmark"). Reference counting still frees almost everything at once; only cycles
wait, and the collections they need run after the burst instead of inside it, when a charger's limit is no longer
waiting for them. The pause is bounded by the dispatch itself (every call has its time-out).

Pauses may overlap (the collector comes back when the last one ends) and never switch on a collector that was
off before the first one began.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_depth = 0
_resume = False  # the collector was on when the outermost pause began


@contextmanager
def collections_paused() -> Iterator[None]:
    """No automatic garbage collection inside the block (explicit ``gc.collect()`` still runs); the collector's
    earlier state comes back when the last overlapping pause ends, also on an exception or a cancellation."""
    global _depth, _resume
    if _depth == 0:
        _resume = gc.isenabled()
        gc.disable()
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _resume:
            gc.enable()
