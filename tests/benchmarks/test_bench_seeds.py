"""The seeds runner (benchmarks/seeds.py) and ``depotctl bench --seeds``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from benchmarks.cli import register
from benchmarks.plant import PlantOptions
from benchmarks.scenario import load_scenario
from benchmarks.seeds import interval95, run_seeds, summarise_seeds


def app() -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def _root() -> None:
        """depotctl stand-in."""

    register(root)
    return root


def test_interval95_by_hand() -> None:
    mean, half = interval95([1.0, 2.0, 3.0])
    # s = 1, t(0.975, 2) = 4.302653
    assert mean == pytest.approx(2.0)
    assert half == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)
    assert interval95([5.0]) == (5.0, 0.0)


@pytest.mark.timeout(300)
def test_parallel_runs_give_the_serial_figures(tiny_scenario_path: Path) -> None:
    scenario = load_scenario(tiny_scenario_path)
    options = PlantOptions()
    serial, serial_bounds = run_seeds([scenario], ["lp", "edf"], [0, 1], options, workers=1)
    parallel, parallel_bounds = run_seeds([scenario], ["lp", "edf"], [0, 1], options, workers=2)
    assert [(r.strategy, r.seed) for r in serial] == [("lp", 0), ("lp", 1), ("edf", 0), ("edf", 1)]
    for a, b in zip(serial, parallel, strict=True):
        assert (a.strategy, a.seed) == (b.strategy, b.seed)
        assert a.metrics is not None and b.metrics is not None
        # Every physical figure is identical; only the tick wall times differ.
        same = ("energy_delivered_kwh", "sessions_met_pct", "peak_kw", "violation_kwh", "jain", "cost")
        assert [getattr(a.metrics, f) for f in same] == [getattr(b.metrics, f) for f in same]
    assert serial_bounds[0].energy_kwh == pytest.approx(parallel_bounds[0].energy_kwh)
    # Different seeds see different noise.
    assert serial[0].metrics is not None and serial[1].metrics is not None
    summary = summarise_seeds(serial)
    assert [(s.strategy, s.seeds) for s in summary] == [("lp", 2), ("edf", 2)]
    energy = summary[0].metric("energy_delivered_kwh")
    assert energy.low <= energy.mean <= energy.high


@pytest.mark.timeout(300)
def test_bench_seeds_writes_means_intervals_and_the_bound(tiny_scenario_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(app(), ["bench", str(tiny_scenario_path), "--strategies", "lp,edf", "--seeds", "3",
                                      "--workers", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "results.json").read_text())
    assert [(r["scenario"], r["strategy"], r["seeds"]) for r in rows] == [("tiny-day", "lp", 3), ("tiny-day", "edf", 3)]
    for row in rows:
        assert row["energy_delivered_pct_ci95"] >= 0 and row["bound_energy_kwh"] > 0
        assert row["energy_pct_of_bound"] <= 100.0 + 1e-6
    lp, edf = rows
    assert lp["distrusted_readings"] >= 0 and lp["distrusted_readings_ci95"] >= 0
    assert edf["distrusted_readings"] is None  # edf plans with every reading as read
    report = (out / "report.md").read_text()
    assert "| bound |" in report and "no run beats the hindsight bound | yes" in report
    assert "readings doubted" in report


@pytest.mark.parametrize("args", [["--seeds", "0"], ["--seeds", "many"], ["--workers", "-1"]])
def test_bench_seeds_garbage_is_refused(tiny_scenario_path: Path, tmp_path: Path, args: list[str]) -> None:
    result = CliRunner().invoke(app(), ["bench", str(tiny_scenario_path), *args, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert not (tmp_path / "o").exists()
