"""`depotctl check` and `depotctl plan` as other programs use them (docs/json.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAIRS = [("demo-van-depot.yaml", "demo-snapshot.json"), ("bus-depot.yaml", "bus-snapshot.json"),
         ("large-depot.yaml", "large-snapshot.json")]


def depotctl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "csms_adapter.cli.main", *args], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, timeout=120, check=False)


@pytest.mark.parametrize(("site", "snap"), PAIRS)
def test_check_and_plan_json_on_every_shipped_site(site: str, snap: str) -> None:
    checked = depotctl("check", f"site_configs/{site}")
    assert checked.returncode == 0, checked.stderr
    assert "ok:" in checked.stdout
    result = depotctl("plan", f"site_configs/{site}", "--snapshot", f"site_configs/{snap}", "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)  # stdout is only the plan
    sessions = json.loads((ROOT / "site_configs" / snap).read_text())["sessions"]
    assert plan["status"] in ("optimal", "feasible", "infeasible_safe")
    assert len(plan["connectors"]) == len(sessions)
    for c in plan["connectors"]:
        assert set(c) >= {"charger", "connector", "limit_kw", "limit_a", "schedule_kw", "expected_soc_at_departure",
                          "expected_max_temp_c"}
        assert c["schedule_kw"][0] == c["limit_kw"]
    assert isinstance(plan["solve_ms"], float) and plan["step_s"] > 0
    assert len(plan["schedule_step_s"]) == len(plan["connectors"][0]["schedule_kw"])


def test_bad_site_file_exits_2_with_file_line_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "site_configs/demo-van-depot.yaml").read_text().replace("voltage_v: 230", "voltage_v: lots"))
    result = depotctl("check", str(bad))
    assert result.returncode == 2
    assert f"{bad}:5: site.voltage_v:" in result.stderr.replace("\n", "")


def test_bad_snapshot_exits_2_and_batch_mode_survives_bad_lines(tmp_path: Path) -> None:
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps({"time": "2026-11-25T18:00:00Z", "sessions": [{"charger": "nope"}]}))
    result = depotctl("plan", "site_configs/demo-van-depot.yaml", "--snapshot", str(snap), "--json")
    assert result.returncode == 2 and "nope" in result.stderr and result.stdout == ""
    good = json.dumps({"time": "2026-11-25T18:00:00Z", "sessions": [{"charger": "cp-01", "soc": 0.3}]})
    lines = "\n".join([good, "{not json", json.dumps({"time": "2026-11-25T18:00:00", "sessions": []}), good]) + "\n"
    batch = depotctl("plan", "site_configs/demo-van-depot.yaml", "--stdin", "--json", stdin=lines)
    assert batch.returncode == 0, batch.stderr
    out = [json.loads(line) for line in batch.stdout.splitlines()]
    assert len(out) == 4
    assert out[0]["status"] == "optimal" and out[3]["status"] == "optimal"
    assert "not JSON" in out[1]["error"] and "UTC offset" in out[2]["error"]


def test_garbage_grid_cap_end_time_is_refused_with_its_key() -> None:
    from optimizer.errors import SnapshotError
    from optimizer.site_loader import load_site
    from optimizer.snapshot_io import snapshot_from_json

    site = load_site(ROOT / "site_configs/demo-van-depot.yaml")
    base = {"time": "2026-11-25T18:00:00Z", "grid_cap_kw": 40, "sessions": []}
    for bad, words in (("soon", "grid_cap_until"), ("2026-11-25T19:00:00", "UTC offset")):
        with pytest.raises(SnapshotError) as info:
            snapshot_from_json({**base, "grid_cap_until": bad}, site, "snap.json")
        assert "grid_cap_until" in str(info.value) and words in str(info.value)
    good = snapshot_from_json({**base, "grid_cap_until": "2026-11-25T19:00:00Z"}, site, "snap.json")
    assert good.grid_cap_until is not None and good.grid_cap_kw == 40


def test_an_unknown_snapshot_key_names_the_key_it_resembles() -> None:
    from optimizer.errors import SnapshotError
    from optimizer.site_loader import load_site
    from optimizer.snapshot_io import snapshot_from_json

    site = load_site(ROOT / "site_configs/demo-van-depot.yaml")
    with pytest.raises(SnapshotError, match=r"sessions\.0\.batery_kwh.*did you mean 'battery_kwh'"):
        snapshot_from_json({"time": "2026-11-25T18:00:00Z", "sessions": [{"charger": "cp-01", "batery_kwh": 60}]},
                           site, "snap.json")
