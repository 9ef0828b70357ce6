"""``distrusted_readings`` (battery temperatures lp did not plan with as read, optimizer/temp_guard.py) in
``depotctl bench``'s results.json and report.md, for one seed and as mean ± ci95 over seeds: a count where the
strategy screens its readings, null where it does not or the run failed."""

from __future__ import annotations

import math

import pytest

from benchmarks.harness import RunResult
from benchmarks.metrics import Metrics
from benchmarks.plant import PlantOptions
from benchmarks.report import render_markdown, result_rows
from benchmarks.seeds import SeedRun, summarise_seeds
from benchmarks.seeds_report import render_seeds_markdown, summary_rows


def metrics(**values: float) -> Metrics:
    fields = dict.fromkeys(Metrics.__dataclass_fields__, 0.0)
    return Metrics(**{**fields, "sessions": 2, "violation_count": 0, **values})  # type: ignore[arg-type]


def results() -> list[RunResult]:
    return [
        RunResult("day", "lp", metrics(energy_delivered_pct=90.0), distrusted_readings=3, readings_screened=True),
        RunResult("day", "edf", metrics(energy_delivered_pct=80.0)),  # plans with every reading as read
        RunResult("day", "lp", None, error="RuntimeError: boom", distrusted_readings=2, readings_screened=True),
    ]


def test_results_json_counts_doubted_readings_where_they_are_screened() -> None:
    rows = result_rows(results())
    assert [r["distrusted_readings"] for r in rows] == [3, None, None]
    assert all("temp_violation_c_min" in r for r in rows)  # beside the contract's fields, none renamed


def doubted_cells(report: str, lp_prefix: str, edf_prefix: str) -> tuple[str, str]:
    """The 'readings doubted' cells of the lp and edf rows of ``report``, after checking that the column sits right
    after the temperature column and that both rows have as many cells as the header."""
    lines = report.splitlines()
    header = next(line for line in lines if line.startswith("| strategy |"))
    cells = [c.strip() for c in header.strip("|").split("|")]
    assert cells.index("readings doubted") == cells.index("temp °C·min") + 1
    column = cells.index("readings doubted")
    rows = [next(line for line in lines if line.startswith(prefix)) for prefix in (lp_prefix, edf_prefix)]
    for line in rows:
        assert len(line.strip("|").split("|")) == len(cells)
    lp, edf = ([c.strip() for c in line.strip("|").split("|")][column] for line in rows)
    return lp, edf


def test_report_md_has_the_count_beside_the_temperature_column() -> None:
    report = render_markdown(results(), PlantOptions(), [])
    assert doubted_cells(report, "| lp | 90.00", "| edf |") == ("3", "–")


def seed_runs() -> list[SeedRun]:
    runs = [SeedRun("day", "lp", seed, metrics(energy_delivered_pct=90.0), None, 0, 1.0, count)
            for seed, count in enumerate((2, 4, 6))]
    runs += [SeedRun("day", "edf", seed, metrics(energy_delivered_pct=80.0), None, 0, 1.0, None) for seed in range(3)]
    runs.append(SeedRun("day", "lp", 3, None, "RuntimeError: boom", 0, 1.0, None))  # a failed seed is left out
    return runs


def test_seeds_results_json_gives_the_mean_and_its_interval() -> None:
    runs = seed_runs()
    rows = summary_rows(summarise_seeds(runs), [])
    lp, edf = rows
    assert lp["seeds"] == 3 and lp["distrusted_readings"] == pytest.approx(4.0)
    # s = 2, t(0.975, 2) = 4.302653
    assert lp["distrusted_readings_ci95"] == pytest.approx(4.302653 * 2 / math.sqrt(3), rel=1e-5)
    assert edf["distrusted_readings"] is None and "distrusted_readings_ci95" not in edf
    report = render_seeds_markdown(summarise_seeds(runs), runs, [], PlantOptions(), [0, 1, 2, 3], "depotctl bench")
    assert doubted_cells(report, "| lp |", "| edf |") == ("4.0 ± 5.0", "–")
