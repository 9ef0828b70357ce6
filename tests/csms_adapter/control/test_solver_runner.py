"""The solver process: plans like the thread did, reports the planner's errors, is killed and replaced when it
hangs, ignores the Ctrl-C meant for the controller, and does not outlive a controller that was SIGKILLed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from pathlib import Path

import pytest
from live_site import ENV, make_site

from csms_adapter.control.controller import Controller
from csms_adapter.control.solver_runner import Planner, ProcessRunner, ThreadRunner, default_planner
from optimizer.domain import Plan, SessionState, Site, Snapshot
from optimizer.errors import DepotError, SnapshotError

T0 = datetime(2025, 3, 3, 18, 0, tzinfo=UTC)
HANG = -99.0  # ambient temperatures that make the test planner misbehave
FAIL = -98.0


def snapshot(ambient_c: float = 12.0) -> Snapshot:
    return Snapshot(time=T0, sessions=(SessionState("cp-a", 1, soc=0.3, id_tag="TAG1"),), ambient_c=ambient_c)


def misbehaving_planner(site: Site) -> Planner:
    """Made in the worker (a module-level factory pickles by reference): hangs or raises on marked snapshots."""
    real = default_planner(site)

    def planner(site: Site, snap: Snapshot) -> Plan:
        if snap.ambient_c == HANG:
            time.sleep(60)
        if snap.ambient_c == FAIL:
            raise SnapshotError("live", "sessions[0]", "marked as broken")  # does not unpickle as itself
        return real(site, snap)

    return planner


def alive(pid: int) -> bool:
    # The process may vanish between the two looks (or while /proc is read): gone either way.
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


async def test_the_process_plans_what_the_thread_plans() -> None:
    site = make_site()
    runner = ProcessRunner(site)
    await runner.start()
    try:
        assert runner.worker_pid is not None and runner.worker_pid != os.getpid()
        in_process = await runner.solve(snapshot(), 30)
    finally:
        await runner.close()
    in_thread = await ThreadRunner(site, default_planner(site)).solve(snapshot(), 30)
    assert in_process.status == in_thread.status
    assert [(c.charger_id, c.connector_id, c.limit_kw) for c in in_process.connectors] == [
        (c.charger_id, c.connector_id, c.limit_kw) for c in in_thread.connectors]
    assert in_process.connectors and in_process.connectors[0].limit_kw > 0


async def test_a_planner_error_comes_back_with_its_text_and_the_worker_stays() -> None:
    runner = ProcessRunner(make_site(), misbehaving_planner)
    await runner.start()
    try:
        pid = runner.worker_pid
        with pytest.raises(DepotError, match="live: sessions\\[0\\]: marked as broken"):
            await runner.solve(snapshot(FAIL), 30)
        assert (await runner.solve(snapshot(), 30)).connectors
        assert runner.worker_pid == pid and runner.restarts == 0
    finally:
        await runner.close()


async def test_a_hung_solve_is_killed_and_the_next_tick_gets_a_fresh_worker() -> None:
    runner = ProcessRunner(make_site(), misbehaving_planner)
    await runner.start()
    try:
        hung_pid = runner.worker_pid
        assert hung_pid is not None
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await runner.solve(snapshot(HANG), 0.5)
        assert time.monotonic() - started < 5
        deadline = time.monotonic() + 10
        while alive(hung_pid) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not alive(hung_pid)
        plan = await runner.solve(snapshot(), 30)  # not refused as "still running": the hung one is gone
        assert plan.connectors and runner.restarts == 1
        assert runner.worker_pid not in (None, hung_pid)
    finally:
        await runner.close()


async def test_close_during_a_hung_solve_returns_at_once() -> None:
    runner = ProcessRunner(make_site(), misbehaving_planner)
    await runner.start()
    pid = runner.worker_pid
    assert pid is not None
    solving = asyncio.ensure_future(runner.solve(snapshot(HANG), 60))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    await runner.close()
    assert time.monotonic() - started < 2
    solving.cancel()
    await asyncio.gather(solving, return_exceptions=True)
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not alive(pid)


async def test_the_worker_ignores_ctrl_c_meant_for_the_controller() -> None:
    runner = ProcessRunner(make_site())
    await runner.start()
    try:
        assert runner.worker_pid is not None
        os.kill(runner.worker_pid, signal.SIGINT)  # what a terminal sends to the whole process group
        await asyncio.sleep(0.2)
        assert (await runner.solve(snapshot(), 30)).connectors
        assert runner.restarts == 0
    finally:
        await runner.close()


CHILD = """
import asyncio, sys
sys.path.insert(0, {tests!r})
from live_site import make_site
from csms_adapter.control.solver_runner import ProcessRunner

async def main():
    runner = ProcessRunner(make_site())
    await runner.start()
    print(runner.worker_pid, flush=True)
    await asyncio.sleep(60)

if __name__ == "__main__":
    asyncio.run(main())
"""


def test_the_worker_does_not_outlive_a_sigkilled_controller(tmp_path: Path) -> None:
    script = tmp_path / "controller.py"
    script.write_text(CHILD.format(tests=str(Path(__file__).parents[1])))  # where live_site.py lives
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).parents[3])
    try:
        assert proc.stdout is not None
        worker = int(proc.stdout.readline())
        assert alive(worker)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    deadline = time.monotonic() + 10
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(worker)


async def test_a_worker_that_died_between_ticks_is_replaced() -> None:
    runner = ProcessRunner(make_site())
    await runner.start()
    try:
        dead = runner.worker_pid
        assert dead is not None
        os.kill(dead, signal.SIGKILL)  # e.g. the kernel's OOM killer
        deadline = time.monotonic() + 10
        while alive(dead) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # the pool notices
        plans = 0
        for _ in range(2):  # at most one tick fails (when the death is noticed only after the submit)
            with contextlib.suppress(BrokenProcessPool):
                plans += bool((await runner.solve(snapshot(), 30)).connectors)
        assert plans >= 1 and runner.restarts == 1
        assert runner.worker_pid not in (None, dead)
    finally:
        await runner.close()


async def test_the_controller_solves_in_its_worker_process_and_stops_it() -> None:
    async with Controller(make_site(), env=ENV) as controller:
        runner = controller.loop.runner
        assert isinstance(runner, ProcessRunner)
        pid = runner.worker_pid
        assert pid is not None and alive(pid)
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not alive(pid)
