"""Where the planner runs while the event loop keeps serving chargers.

``ProcessRunner`` (production) runs the site's strategy in one spawned worker process. A solve holds the GIL for
most of its second or so (building the model is numpy and Python); from a thread it made every GIL hand-off of the
event loop (each socket read or write) wait for the interpreter's 5 ms switch interval. On a bare echo loop: p99
round trip 5.2 ms during solves in a thread, 0.15 ms with the solver in a process. The loop pays only the
hand-over (snapshot out, plan back: a few milliseconds of pickling, on the executor's own threads). The site goes
to the worker once; the worker starts with the controller, so no tick pays for spawning it. Like any program that
starts processes with ``spawn``, an entry point must guard its main code with ``if __name__ == "__main__"``.

``ThreadRunner`` runs any callable in a worker thread: injected planners (test doubles, often not picklable).

Both bound a solve by ``timeout_s`` (raising ``TimeoutError``) and never run two solves at once. A thread that
overran cannot be stopped: it is abandoned and every later solve is refused until it ends. A process that
overran is killed and a fresh worker started, so a hung solver costs one tick, not control for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol, runtime_checkable

from optimizer.domain import Plan, Site, Snapshot
from optimizer.strategies import get_strategy

log = logging.getLogger("depotctl.solver")

Planner = Callable[[Site, Snapshot], Plan]
PlannerFactory = Callable[[Site], Planner]
# A fresh worker imports numpy and the solver and receives the site: seconds at most, even on a busy machine.
START_TIMEOUT_S = 60.0


def default_planner(site: Site) -> Planner:
    solver = None if site.control.solver == "auto" else site.control.solver
    strategy = get_strategy(site.control.strategy, solver=solver)
    return strategy.plan


@runtime_checkable
class PlanRunner(Protocol):
    async def start(self) -> None:
        """Get ready to solve (may take a while once); raises when solving is impossible."""
        ...

    async def solve(self, snapshot: Snapshot, timeout_s: float) -> Plan:
        """A plan for ``snapshot``, or the planner's exception, or ``TimeoutError`` after ``timeout_s``."""
        ...

    async def close(self) -> None: ...


def _retrieve(future: asyncio.Future[Plan]) -> None:
    # An abandoned solve that fails later must not log "exception never retrieved".
    if not future.cancelled():
        future.exception()


class ThreadRunner:
    """``planner`` in a worker thread. An overrun solve is abandoned (a thread cannot be killed) and kept, so that
    no second solve starts beside it."""

    def __init__(self, site: Site, planner: Planner) -> None:
        self.site = site
        self.planner = planner
        self._solving: asyncio.Future[Plan] | None = None

    async def start(self) -> None:
        pass

    async def solve(self, snapshot: Snapshot, timeout_s: float) -> Plan:
        if self._solving is not None and not self._solving.done():
            raise TimeoutError("the previous solve is still running")
        solving = asyncio.ensure_future(asyncio.to_thread(self.planner, self.site, snapshot))
        solving.add_done_callback(_retrieve)
        self._solving = solving
        return await asyncio.wait_for(asyncio.shield(solving), timeout_s)

    async def close(self) -> None:
        pass


# ------------------------------------------------------------------------------------------ worker side

_worker_site: Site | None = None
_worker_planner: Planner | None = None


def _init_worker(site: Site, factory: PlannerFactory) -> None:
    global _worker_site, _worker_planner
    # Ctrl-C reaches the whole process group; the controller shuts its worker down itself, and a worker dying of
    # KeyboardInterrupt first would only print a traceback and break the pool under a tick still finishing.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with_parent, args=(parent.sentinel,), name="exit-with-controller",
                         daemon=True).start()
    _worker_site = site
    _worker_planner = factory(site)


def _exit_with_parent(sentinel: int) -> None:
    # A worker outlives a controller that was SIGKILLed: it holds both ends of its job queue, so it would wait
    # for the next job for ever. The parent's sentinel becomes readable when the parent is gone, however it died.
    multiprocessing.connection.wait([sentinel])
    os._exit(0)


def _ready() -> int:
    return os.getpid()


def _plan(snapshot: Snapshot) -> Plan:
    assert _worker_site is not None and _worker_planner is not None, "worker not initialised"
    try:
        return _worker_planner(_worker_site, snapshot)
    except Exception as exc:
        portable = _portable(exc)
        if portable is exc:
            raise
        raise portable from None


def _portable(exc: Exception) -> Exception:
    """``exc`` if it survives pickling, else an instance of its nearest base class that does, with its text.

    An exception whose ``__init__`` takes other arguments than its message (``SnapshotError(source, key,
    reason)``) pickles but does not unpickle; the executor would then mark the whole pool broken and the tick
    would report that instead of the planner's reason."""
    with contextlib.suppress(Exception):
        pickle.loads(pickle.dumps(exc))
        return exc
    text = str(exc)
    for cls in type(exc).__mro__[1:]:
        if not (isinstance(cls, type) and issubclass(cls, Exception)):
            continue
        with contextlib.suppress(Exception):
            candidate = cls(text)
            pickle.loads(pickle.dumps(candidate))
            candidate.add_note(f"raised in the solver process as {type(exc).__module__}.{type(exc).__qualname__}")
            return candidate
    return RuntimeError(f"{type(exc).__name__}: {text}")


# ------------------------------------------------------------------------------------------ controller side


class ProcessRunner:
    """The site's planner (``factory(site)``, made in the worker) in one worker process. ``factory`` must be
    picklable by reference: a module-level function."""

    def __init__(self, site: Site, factory: PlannerFactory = default_planner) -> None:
        self.site = site
        self.factory = factory
        self._pool: ProcessPoolExecutor | None = None
        self._solving: asyncio.Future[Plan] | None = None
        self._warming: asyncio.Future[int] | None = None
        self.restarts = 0  # workers replaced after an overrun or a crash
        self.worker_pid: int | None = None  # once the worker is ready

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: the controller has threads (executor, store writers) that a fork would copy mid-lock.
        pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker, initargs=(self.site, self.factory))
        self._pool = pool
        # The worker process starts with the first job: start it now, so that no tick waits for it.
        warming = asyncio.wrap_future(pool.submit(_ready))
        warming.add_done_callback(self._warmed)
        self._warming = warming
        return pool

    def _warmed(self, warming: asyncio.Future[int]) -> None:
        if warming is self._warming and not warming.cancelled() and warming.exception() is None:
            self.worker_pid = warming.result()
        elif not warming.cancelled():
            warming.exception()  # retrieved: a failed start is reported by start() or by the next solve

    async def start(self) -> None:
        """Start the worker and wait until it is ready. Raises what stopped it (``OSError``,
        ``BrokenProcessPool``, ``TimeoutError``)."""
        if self._pool is None:
            self._new_pool()
        assert self._warming is not None
        try:
            await asyncio.wait_for(asyncio.shield(self._warming), START_TIMEOUT_S)
        except BaseException:
            self._kill()
            raise

    async def solve(self, snapshot: Snapshot, timeout_s: float) -> Plan:
        if self._solving is not None and not self._solving.done():
            # Only after a tick was cancelled mid-solve: the single worker would queue this one behind it.
            raise TimeoutError("the previous solve is still running")
        try:
            job: Future[Plan] = (self._pool or self._new_pool()).submit(_plan, snapshot)
        except RuntimeError:  # the pool broke between ticks (its worker died): start afresh
            self._replace()
            assert self._pool is not None
            job = self._pool.submit(_plan, snapshot)
        solving = asyncio.wrap_future(job)
        solving.add_done_callback(_retrieve)
        self._solving = solving
        try:
            return await asyncio.wait_for(asyncio.shield(solving), timeout_s)
        except TimeoutError:
            log.warning("solver process overran %g s; killing it and starting a fresh one", timeout_s)
            self._replace()
            raise
        except BrokenProcessPool as exc:
            log.error("solver process died (%s); starting a fresh one", exc)
            self._replace()
            raise

    def _replace(self) -> None:
        """Kill the worker (hung, or already dead) and start warming a fresh one for the next tick."""
        self.restarts += 1
        self._kill()
        self._new_pool()

    def _kill(self) -> None:
        pool, self._pool = self._pool, None
        # The killed solve cannot run beside the next one: its process is gone.
        self._solving = None
        self.worker_pid = None
        if pool is None:
            return
        # shutdown() alone would wait for a running job; the worker has to go first. (Python 3.14 has
        # ProcessPoolExecutor.kill_workers; 3.11 only has the private process table.)
        processes = getattr(pool, "_processes", None) or {}
        for process in list(processes.values()):
            with contextlib.suppress(Exception):
                process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    async def close(self) -> None:
        """Stop the worker: at once when it is still solving (its tick was given up), else cleanly."""
        if self._pool is None:
            return
        if self._solving is not None and not self._solving.done():
            self._kill()
            return
        pool, self._pool = self._pool, None
        await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
