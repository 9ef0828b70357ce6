"""Sweeps on Dask: the same numbers as the serial run, and a bad sweep file named before anything runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.scenario import load_scenario
from benchmarks.sweep import comparable, load_sweep, run_on_dask, run_serial, with_limit_factor
from optimizer.errors import ConfigError


def _sweep_file(tmp: Path, scenario: Path, body: str) -> Path:
    path = tmp / "sweep.yaml"
    path.write_text(f"scenarios: [{scenario.name}]\n{body}", encoding="utf-8")
    return path


@pytest.mark.timeout(300)
def test_sweep_on_a_local_cluster_equals_the_serial_run(tiny_scenario_path: Path) -> None:
    sweep = load_sweep(_sweep_file(tiny_scenario_path.parent, tiny_scenario_path,
                                   "strategies: [lp, edf]\nseeds: 2\nlimit_factors: [1.0, 0.6]\n"))
    assert len(sweep.tasks) == 2 * 2 * 2
    serial = run_serial(sweep)
    seen: list[int] = []
    parallel = run_on_dask(sweep, workers=2, on_done=lambda done, total: seen.append(done))
    assert [comparable(r) for r in parallel] == [comparable(r) for r in serial]
    assert seen[-1] == len(sweep.tasks)
    assert {(r["seed"], r["limit_factor"]) for r in parallel} == {(0, 1.0), (1, 1.0), (0, 0.6), (1, 0.6)}
    # A tighter grid cannot deliver more: the factor really reached the simulated site.
    by = {(r["strategy"], r["seed"], r["limit_factor"]): r["energy_delivered_kwh"] for r in serial}
    assert by[("lp", 0, 0.6)] < by[("lp", 0, 1.0)]


def test_limit_factor_scales_the_grid_and_its_windows(tiny_scenario_path: Path) -> None:
    scenario = load_scenario(tiny_scenario_path)
    scaled = with_limit_factor(scenario, 0.5)
    assert scaled.site.grid.import_limit_kw == pytest.approx(scenario.site.grid.import_limit_kw / 2)
    assert scaled.name.endswith("@0.5")


@pytest.mark.parametrize(("body", "key"), [
    ("strategies: [lp, best]\n", "strategies[1]"),
    ("strategies: [lp]\nseeds: -3\n", "seeds"),
    ("strategies: [lp]\nlimit_factors: [0]\n", "limit_factors"),
    ("strategies: [lp]\ncolour: red\n", "colour"),
    ("strategies: []\n", "strategies"),
])
def test_a_bad_sweep_file_names_the_key(tiny_scenario_path: Path, body: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_sweep(_sweep_file(tiny_scenario_path.parent, tiny_scenario_path, body))
    assert any(p.key.startswith(key) and p.file.endswith("sweep.yaml") for p in caught.value.problems), caught.value


def test_a_missing_scenario_in_a_sweep_stops_it_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text("scenarios: [nowhere.yaml]\nstrategies: [lp]\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "csms_adapter.cli.main", "bench", "--sweep", str(path), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "nowhere.yaml" in proc.stderr
    assert not (tmp_path / "out" / "results.json").exists()


@pytest.mark.timeout(300)
def test_bench_sweep_command_writes_one_row_per_task(tiny_scenario_path: Path, tmp_path: Path) -> None:
    path = _sweep_file(tiny_scenario_path.parent, tiny_scenario_path, "strategies: [equal_share]\nseeds: [3]\n")
    proc = subprocess.run([sys.executable, "-m", "csms_adapter.cli.main", "bench", "--sweep", str(path), "--workers",
                           "1", "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [(r["strategy"], r["seed"], r["limit_factor"]) for r in rows] == [("equal_share", 3, 1.0)]
    assert rows[0]["energy_delivered_kwh"] > 0
