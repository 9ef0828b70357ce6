"""`depotctl run` as a real process: what an operator set through the API (grid cap with its end, session
overrides, vehicle data) and the billing-period peak survive a SIGTERM and a SIGKILL, and a corrupt row in the
database is reported and skipped without stopping the controller."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from live_site import SITE_YAML
from polling import eventually

from csms_adapter.http_api.auth import PASSWORD_ENV

OPERATOR = ("operator", "restart-test-operator-pw")
ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def site_text(http_port: int) -> str:
    text = SITE_YAML.replace("  base_load: {kw: 5}\n",
                             "  base_load: {kw: 5}\n  tariff: {price_per_kwh: 0.2, demand_charge_per_kw: 9}\n")
    assert "demand_charge_per_kw" in text
    return text + f'http:\n  listen: "127.0.0.1:{http_port}"\n'


class Run:
    """One `depotctl run` process on the site file and database."""

    def __init__(self, site_file: Path, db: Path, http_port: int, *, simulate: int) -> None:
        args = [sys.executable, "-c", "from csms_adapter.cli.main import main; main()", "run", str(site_file),
                "--db", str(db)]
        if simulate:
            args += ["--simulate", str(simulate), "--speed", "60"]
        env = dict(os.environ, PYTHONPATH=str(ROOT), **{PASSWORD_ENV: OPERATOR[1]})
        # The live view and the warnings go to stdout: into a file, as a pipe nobody reads would fill and block.
        self.out = db.with_suffix(f".{http_port}.{os.urandom(3).hex()}.out")
        with self.out.open("wb") as out:
            self.proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.PIPE)
        self.api = httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}/api", auth=OPERATOR, timeout=5)

    async def get(self, path: str) -> Any:
        response = await self.api.get(path)
        response.raise_for_status()
        return response.json()

    async def wait_up(self, timeout_s: float = 40) -> None:
        async with asyncio.timeout(timeout_s):
            while True:
                assert self.proc.poll() is None, self.stderr()
                try:
                    await self.get("/status")
                    return
                except httpx.HTTPError:
                    await asyncio.sleep(0.2)

    def stderr(self) -> str:
        return self.proc.stderr.read().decode() if self.proc.stderr is not None else ""

    async def stop(self, sig: signal.Signals) -> str:
        await self.api.aclose()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            async with asyncio.timeout(20):
                while self.proc.poll() is None:
                    await asyncio.sleep(0.05)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
        text = self.stderr()
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return text + self.out.read_text(encoding="utf-8", errors="replace")


async def restored(run: Run, cap_until: datetime) -> dict[str, Any]:
    """What the API shows after a restart: the cap, the sessions with their inputs, the peak."""
    await run.wait_up()
    status = await run.get("/status")
    sessions = {f"{s['charger']}/{s['connector']}": s for s in await run.get("/sessions")}
    assert status["grid_cap"]["limit_kw"] == 18.0
    assert datetime.fromisoformat(status["grid_cap"]["until"]) == cap_until
    assert status["grid_cap"]["reason"] == "DSO curtailment"
    assert status["grid_limit_kw"] == 18.0
    return {"status": status, "sessions": sessions}


async def test_operator_state_survives_sigterm_and_sigkill(tmp_path: Path) -> None:
    site_file, db, http_port = tmp_path / "site.yaml", tmp_path / "depot.db", free_port()
    site_file.write_text(site_text(http_port), encoding="utf-8")

    first = Run(site_file, db, http_port, simulate=2)
    try:
        await first.wait_up()
        sessions = await eventually(lambda: _sessions(first, 2), timeout_s=40, interval_s=0.2)
        cap_until = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
        put = await first.api.put("/grid-cap", json={"limit_kw": 18, "until": cap_until.isoformat(),
                                                     "reason": "DSO curtailment"})
        assert put.status_code == 200, put.text
        target, other = sessions[0], sessions[1]
        patch = await first.api.patch(f"/sessions/{target['charger']}/{target['connector']}",
                                      json={"target_soc": 0.66, "priority": 3})
        assert patch.status_code == 200, patch.text
        data = await first.api.post("/vehicle-data", json={"charger": other["charger"], "connector": other["connector"],
                                                           "soc": 0.41, "battery_temp_c": 23.5, "battery_kwh": 64})
        assert data.status_code == 200, data.text
        peak = await eventually(lambda: _peak(first), timeout_s=40, interval_s=0.2)
    finally:
        stderr = await first.stop(signal.SIGTERM)
    assert first.proc.returncode == 0, stderr

    second = Run(site_file, db, http_port, simulate=0)  # no chargers come back: the stored sessions stay open
    try:
        shown = await restored(second, cap_until)
        assert shown["status"]["billing_peak_kw"] >= peak
        key_t, key_o = (f"{s['charger']}/{s['connector']}" for s in (target, other))
        assert shown["sessions"][key_t]["transaction_id"] == target["transaction_id"]
        assert shown["sessions"][key_t]["override"]["target_soc"] == 0.66
        assert shown["sessions"][key_t]["priority"] == 3
        vehicle = shown["sessions"][key_o]["vehicle_data"]
        assert (vehicle["soc"], vehicle["battery_temp_c"], vehicle["battery_kwh"]) == (0.41, 23.5, 64)
        peak_after = shown["status"]["billing_peak_kw"]
    finally:
        await second.stop(signal.SIGKILL)
    assert second.proc.returncode == -signal.SIGKILL

    # A corrupt row (a hand-edited database) is logged and skipped; the rest is restored all the same.
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE vehicle_data SET soc = 'lots' WHERE charger_id = ?", (other["charger"],))
    third = Run(site_file, db, http_port, simulate=0)
    try:
        shown = await restored(third, cap_until)
        assert shown["status"]["billing_peak_kw"] == peak_after
        assert shown["sessions"][key_t]["override"]["target_soc"] == 0.66
        assert shown["sessions"][key_o]["vehicle_data"] is None
    finally:
        stderr = await third.stop(signal.SIGTERM)
    logged = " ".join(stderr.split())  # the live view's console wraps long lines
    assert "operator state not restored: table vehicle_data row 1: soc" in logged


async def _sessions(run: Run, n: int) -> list[dict[str, Any]] | None:
    try:
        sessions = await run.get("/sessions")
    except httpx.HTTPError:
        return None
    return sorted(sessions, key=lambda s: (s["charger"], s["connector"])) if len(sessions) >= n else None


async def _peak(run: Run) -> float | None:
    status = await run.get("/status")
    peak = status.get("billing_peak_kw")
    return float(peak) if peak and peak > 5.0 else None  # above the base load alone: vehicles were measured
