"""Stopping background tasks for sure.

``Task.cancel()`` is a request: a task whose awaited call swallows the CancelledError (a library that catches
it while a reply arrives at the same moment) goes on running and a plain ``gather`` waits for it for ever. Every
stop path in depotctl uses ``cancel_and_wait``, which repeats the request until each task has ended and gives up
loudly after a bound, so a stop can never hang.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger("depotctl.tasks")


async def cancel_and_wait(tasks: Iterable[asyncio.Future[Any]], *,
                          timeout_s: float = 10.0, retry_s: float = 0.1) -> bool:
    """Cancel ``tasks`` and wait until every one has ended, re-cancelling any that swallowed a request.

    Returns True when all ended; False (and logs the names) when some were still running after ``timeout_s``.
    Exceptions of the tasks are retrieved and dropped: a stop path only needs them gone.
    """
    pending = {task for task in tasks if not task.done()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while pending:
        for task in pending:
            task.cancel()
        _done, pending = await asyncio.wait(pending, timeout=retry_s)
        if pending and loop.time() >= deadline:
            names = sorted(t.get_name() if isinstance(t, asyncio.Task) else repr(t) for t in pending)
            log.error("tasks did not stop within %.1f s: %s", timeout_s, ", ".join(names))
            return False
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved, so asyncio does not log it as never retrieved
    return True
