"""Own failures: solver errors and hangs, a failing database, clock jumps, a silent charger, SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fake_chargers import Charger16, Charger201, Recorder, charger
from live_site import ENV, PASSWORD_A, PASSWORD_B, SITE_YAML, make_site
from polling import eventually

from csms_adapter.control.control_loop import default_planner
from csms_adapter.control.controller import Controller
from csms_adapter.control.recorder import StoreRecorder
from csms_adapter.store import Store, StoreError
from optimizer.domain import Plan, Site, Snapshot

POWER = [{"value": "7000", "measurand": "Power.Active.Import", "unit": "W"}]


class SwitchablePlanner:
    """The real planner, or a failure on demand: raise, or hang for ``hang_s``."""

    def __init__(self, site: Site) -> None:
        self.real = default_planner(site)
        self.mode = "ok"
        self.hang_s = 0.0

    def __call__(self, site: Site, snapshot: Snapshot) -> Plan:
        if self.mode == "raise":
            raise RuntimeError("solver crashed (simulated)")
        if self.mode == "hang":
            time.sleep(self.hang_s)
        return self.real(site, snapshot)


async def test_solver_crash_or_hang_sends_nothing_and_the_last_profile_ages_out(tmp_path: Path) -> None:
    site = make_site()
    planner = SwitchablePlanner(site)
    rec = Recorder()
    async with Controller(site, env=ENV, planner=planner, debounce_real_s=0.05) as c, \
            charger(c.url, "cp-a", PASSWORD_A, "1.6", rec) as cp:
        assert isinstance(cp, Charger16)
        await cp.boot()
        tx = await cp.start_tx(1, "TAG1", 1000)
        await cp.meter(1, tx, POWER)
        await rec.wait_for(lambda: bool(rec.tx_profiles()))
        await eventually(lambda: not c.loop._lock.locked())
        last = rec.tx_profiles()[-1]
        valid_to = datetime.fromisoformat(last["valid_to"].replace("Z", "+00:00"))
        ttl = site.ocpp.profile_ttl_intervals * site.control.interval_s
        assert valid_to <= c.clock() + timedelta(seconds=ttl + 1)  # a live limit always has an end

        sent = len(rec.tx_profiles())
        planner.mode = "raise"
        crashed = await c.loop.tick()
        assert crashed is not None and crashed.plan is None and "RuntimeError" in (crashed.error or "")
        planner.mode, planner.hang_s = "hang", 1.0
        c.loop.solve_timeout_s = 0.2
        hung = await c.loop.tick()
        assert hung is not None and hung.plan is None and "no plan within" in (hung.error or "")
        busy = await c.loop.tick()  # the abandoned solve still runs: no second one beside it
        assert busy is not None and "still running" in (busy.error or "")
        assert len(rec.tx_profiles()) == sent  # nothing dispatched from a failed tick
        planner.mode = "ok"
        await asyncio.sleep(1.0)  # the hung solve finishes
        c.loop.solve_timeout_s = 30
        recovered = await c.loop.tick()
        assert recovered is not None and recovered.plan is not None


class FailingStore(Store):
    """A store whose writes fail like a full disk until ``healthy`` is set."""

    healthy = False

    @classmethod
    def open(cls, url: str, *, create_tables: bool = True) -> FailingStore:
        from csms_adapter.store import make_engine

        return cls(make_engine(url, create_tables=create_tables), url)

    def add_samples(self, records: Any) -> int:
        if not self.healthy:
            raise StoreError("sqlite:///full.db", "database or disk is full")
        return super().add_samples(records)


async def test_a_failing_store_does_not_stop_control_and_catches_up(tmp_path: Path) -> None:
    store = FailingStore.open(f"sqlite:///{tmp_path / 'depot.db'}")
    recorder = StoreRecorder(store)
    recorder.writer.retry_s = 0.05
    recorder.writer.flush_interval_s = 0.05
    rec = Recorder()
    async with Controller(make_site(), env=ENV, recorder=recorder, debounce_real_s=0.05) as c, \
            charger(c.url, "cp-a", PASSWORD_A, "1.6", rec) as cp:
        assert isinstance(cp, Charger16)
        await cp.boot()
        tx = await cp.start_tx(1, "TAG1", 1000)
        for _ in range(3):
            await cp.meter(1, tx, POWER)
        await rec.wait_for(lambda: bool(rec.tx_profiles()))  # control goes on
        await eventually(lambda: recorder.writer.stats.failures > 0)
        # Buffered and reported (wait for it: while a retry is in flight its batch is out of the buffer).
        await eventually(lambda: recorder.writer.pending >= 3)
        assert not recorder.writer.healthy
        store.healthy = True
        await eventually(lambda: recorder.writer.healthy and recorder.writer.pending == 0)
        assert recorder.writer.stats.written >= 3


async def test_clock_jumps_keep_control_safe() -> None:
    offset = [timedelta(0)]

    def clock() -> datetime:
        return datetime.now(UTC) + offset[0]

    rec = Recorder()
    async with Controller(make_site(), env=ENV, clock=clock, debounce_real_s=0.05) as c, \
            charger(c.url, "cp-a", PASSWORD_A, "1.6", rec) as cp:
        assert isinstance(cp, Charger16)
        await cp.boot()
        tx = await cp.start_tx(1, "TAG1", 1000)
        await cp.meter(1, tx, POWER)
        await rec.wait_for(lambda: bool(rec.tx_profiles()))
        await eventually(lambda: not c.loop._lock.locked())
        sent = len(rec.tx_profiles())
        offset[0] = timedelta(hours=-2)  # back: the charger's copy of the profile may lapse; re-send it
        back = await c.loop.tick()
        assert back is not None and back.plan is not None
        await rec.wait_for(lambda: len(rec.tx_profiles()) > sent)
        assert len(back.snapshot.sessions) == 1  # the 7 kW reading is "from the future" now: not trusted as fresh
        assert c.live.measured_power_kw(c.site.charger("cp-a"), c.live.charger("cp-a").connectors[1],
                                        back.time) is None
        offset[0] = timedelta(hours=+5)  # forward: every reading is stale, ticks still plan
        ahead = await c.loop.tick()
        assert ahead is not None and ahead.plan is not None and ahead.error is None


async def test_a_silent_charger_does_not_delay_the_others() -> None:
    silent, talking = Recorder(delay_s=3600), Recorder()  # one never answers a call
    async with Controller(make_site(), env=ENV, debounce_real_s=0.05) as c, \
            charger(c.url, "cp-a", PASSWORD_A, "1.6", silent) as a, \
            charger(c.url, "cp-b", PASSWORD_B, "2.0.1", talking) as b:
        assert isinstance(a, Charger16) and isinstance(b, Charger201)
        started = asyncio.get_running_loop().time()
        await a.boot()
        await b.boot()
        await talking.wait_for(lambda: len(talking.of("SetChargingProfile")) >= 2, timeout_s=5)
        # cp-a's first call alone takes call_timeout_s (2 s); cp-b's whole setup was done well before that
        assert asyncio.get_running_loop().time() - started < c.site.ocpp.call_timeout_s
        assert silent.calls and not silent.of("SetChargingProfile")


KILL_SCRIPT = """
import asyncio, sys
from csms_adapter.cli.live_run import run_live
from optimizer.site_loader import load_site
from rich.console import Console
from pathlib import Path
asyncio.run(run_live(load_site(sys.argv[1]), simulate=2, speed=60.0, duration_s=None, db=Path(sys.argv[2]),
                     console=Console(file=open("/dev/null", "w"))))
"""


def open_sessions(db: Path) -> list[tuple[str, str]]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT charger_id, transaction_id FROM sessions WHERE stopped_at IS NULL").fetchall()
    except sqlite3.Error:
        return []


async def test_sigkill_mid_run_leaves_a_sound_database_and_restart_resumes(tmp_path: Path) -> None:
    site_file, db = tmp_path / "site.yaml", tmp_path / "depot.db"
    site_file.write_text(SITE_YAML, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[3]))
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(site_file), str(db)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        async with asyncio.timeout(40):
            while len(open_sessions(db)) < 2:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # mid-run: samples and commands are being written
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    before = sorted(open_sessions(db))
    site = make_site()
    async with Controller(site, env=ENV, recorder=StoreRecorder.open(f"sqlite:///{db}", site=site.name),
                          debounce_real_s=0.05) as restarted:
        assert sorted((cid, s.transaction_id) for cid, _, s in restarted.live.open_sessions()) == before


async def test_sigterm_stops_depotctl_run_cleanly(tmp_path: Path) -> None:
    """What systemd does to stop the service: the controller stops as on Ctrl-C, solver process included."""
    site_file, db = tmp_path / "site.yaml", tmp_path / "depot.db"
    site_file.write_text(SITE_YAML, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[3]))
    proc = subprocess.Popen([sys.executable, "-c", "from csms_adapter.cli.main import main; main()", "run", str(site_file),
                             "--simulate", "2", "--speed", "60", "--db", str(db), "--no-http"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        async with asyncio.timeout(40):
            while len(open_sessions(db)) < 2:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                await asyncio.sleep(0.1)
        children = [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
        open_before = set(open_sessions(db))  # another vehicle may still plug in before the signal lands
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            while proc.poll() is None:
                await asyncio.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    stderr = ""
    if proc.stderr is not None:
        stderr = proc.stderr.read().decode()
        proc.stderr.close()
    assert proc.returncode == 0, stderr
    assert "stopped" in stderr
    assert children, "the solver runs in a child process"
    def alive(pid: int) -> bool:
        try:
            return "zombie" not in Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return False

    # The solver process and multiprocessing's resource tracker go with it (the tracker notices its parent's
    # exit a moment later, so give them a few seconds, not forever).
    async with asyncio.timeout(5):
        while any(alive(pid) for pid in children):
            await asyncio.sleep(0.05)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # Vehicles are still plugged in: their sessions stay open for the restart.
    assert len(open_before) >= 2 and open_before <= set(open_sessions(db))
