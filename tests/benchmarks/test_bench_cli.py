"""``bench`` end to end on the tiny scenario: files written, contract fields, exit 2 on a bad file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from benchmarks.cli import register
from benchmarks.harness import run_strategy
from benchmarks.scenario import load_scenario

CONTRACT_FIELDS = {
    "scenario",
    "strategy",
    "energy_delivered_pct",
    "sessions_met_pct",
    "peak_kw",
    "violation_kwh",
    "temp_violation_c_min",
    "cost",
    "jain",
    "tick_ms_p50",
    "tick_ms_p95",
}


def app() -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def _root() -> None:
        """depotctl stand-in."""

    register(root)
    return root


def test_bench_writes_results_report_and_plots(tiny_scenario_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app(),
        ["bench", str(tiny_scenario_path), "--strategies", "lp,edf,uncontrolled,offline_optimal", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "results.json").read_text())
    assert [r["strategy"] for r in rows] == ["lp", "edf", "uncontrolled", "offline_optimal"]
    for row in rows:
        assert set(row) >= CONTRACT_FIELDS and "error" not in row
        assert 0 <= row["energy_delivered_pct"] <= 100 and 0 <= row["sessions_met_pct"] <= 100
    by = {r["strategy"]: r for r in rows}
    # a 30 kW grid, 2 kW base load and 72 kW of chargers: only 'uncontrolled' overloads it
    assert by["lp"]["violation_kwh"] == 0 and by["edf"]["violation_kwh"] == 0
    assert by["uncontrolled"]["violation_kwh"] > 0 and by["uncontrolled"]["peak_kw"] > 30
    assert by["lp"]["temp_violation_c_min"] == 0
    # lp screens its battery temperatures (a count; the tiny day's noise doubts none), the others plan as read
    assert by["lp"]["distrusted_readings"] == 0
    assert by["edf"]["distrusted_readings"] is None and by["offline_optimal"]["distrusted_readings"] is None
    report = (out / "report.md").read_text()
    assert "| lp |" in report and "## Targets" in report and "| readings doubted |" in report
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["energy_delivered.png", "power_tiny-day.png", "vehicles_tiny-day.png"]
    assert all((out / p).stat().st_size > 1000 for p in pngs)


def test_bad_scenario_exits_2_before_simulating(tiny_scenario_path: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsite: site.yaml\nstart: 2026-06-15T08:00:00Z\n", encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(app(), ["bench", str(tiny_scenario_path), str(bad), "--out", str(out)])
    assert result.exit_code == 2
    assert "bad.yaml" in result.output and "end: required key is missing" in result.output
    assert not (out / "results.json").exists()


def test_unknown_strategy_is_a_usage_error(tiny_scenario_path: Path) -> None:
    result = CliRunner().invoke(app(), ["bench", str(tiny_scenario_path), "--strategies", "lp,magic"])
    assert result.exit_code == 2 and "magic" in result.output


def test_a_failing_strategy_is_reported_and_the_run_goes_on(tiny_scenario_path: Path) -> None:
    scenario = load_scenario(tiny_scenario_path)
    broken = run_strategy(scenario, "no-such-strategy")
    assert broken.metrics is None and broken.error is not None and "KeyError" in broken.error
    assert run_strategy(scenario, "edf").metrics is not None


HALF_HOUR = """\
name: half-hour
site: site.yaml
start: "2026-06-15T08:00:00Z"
end: "2026-06-15T08:30:00Z"
sessions:
  - {charger: ac-1, arrival: "2026-06-15T08:00:00Z", departure: "2026-06-15T08:30:00Z", energy_kwh: 4,
     max_kw: 11, battery_kwh: 60, soc_arrival: 0.3, reports_soc: true}
"""


def test_bench_live_prints_and_writes_the_comparison(site_dir: Path, tmp_path: Path) -> None:
    path = site_dir / "half-hour.yaml"
    path.write_text(HALF_HOUR, encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(app(), ["bench", str(path), "--live", "--speed", "300", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "half-hour: lp in-process vs live" in result.output and "energy delivered (kWh)" in result.output
    (row,) = json.loads((out / "live.json").read_text())
    assert row["scenario"] == "half-hour" and row["strategy"] == "lp" and row["live_tick_errors"] == []
    # 4 kWh at up to 11 kW in 30 minutes: both runs deliver all of it
    assert row["in_process"]["energy_delivered_kwh"] == pytest.approx(4.0)
    assert abs(row["rel_diff"]["energy_delivered_kwh"]) < 0.01
    # results.json carries the live run as a strategy row, with the detection of injected faults (none here)
    (live,) = json.loads((out / "results.json").read_text())
    assert (live["scenario"], live["strategy"], live["mode"], live["detection"]) == ("half-hour", "lp", "live", None)
    assert live["energy_delivered_kwh"] == pytest.approx(row["live"]["energy_delivered_kwh"], abs=1e-3)
    # the live controller screens its battery temperatures too (this day has none to doubt)
    assert live["distrusted_readings"] == row["live_distrusted_readings"] == 0


def test_bench_thermal_switches_and_stress_fields(tiny_scenario_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(app(), ["bench", str(tiny_scenario_path), "--strategies", "lp", "--out", str(out),
                                        "--thermal-mismatch", "1.0", "--no-thermal-calibration"])
    assert result.exit_code == 0, result.output
    row = json.loads((out / "results.json").read_text())[0]
    assert row["thermal_calibration"] is False and row["sessions_thermal_fitted"] == 0
    assert row["stress_peak_c_rate"] > 0 and row["stress_arrhenius_kwh"] > 0 and row["stress_hours_above_80pct"] >= 0
    # a mismatch of -1 or below is no battery at all: refused before anything runs
    refused = CliRunner().invoke(app(), ["bench", str(tiny_scenario_path), "--thermal-mismatch", "-1"])
    assert refused.exit_code == 2 and "thermal-mismatch" in refused.output
