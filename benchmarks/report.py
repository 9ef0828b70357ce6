"""The benchmark's outputs: ``results.json`` (the contract of contracts.md) and ``report.md`` (the table
and the targets of the benchmark issue)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness import OFFLINE, RunResult
from benchmarks.plant import PlantOptions

ENERGY_TARGET_PCT_OF_OFFLINE = 99.5
CONGESTED_SCENARIO = "congested-day"
# Wall-time targets of the issue: (scenario, seconds) for lp.
TIME_TARGETS_S = {"congested-day": 10.0, "large-depot": 120.0}
METRIC_FIELDS = (
    "energy_delivered_pct",
    "sessions_met_pct",
    "peak_kw",
    "violation_kwh",
    "temp_violation_c_min",
    "cost",
    "jain",
    "tick_ms_p50",
    "tick_ms_p95",
    "tick_ms_max",
    "violation_count",
    "grid_violation_kwh",
    "circuit_violation_kwh",
    "energy_requested_kwh",
    "energy_delivered_kwh",
    "sessions",
    "energy_cost",
    "demand_charge",
    "stress_hours_above_80pct",
    "stress_arrhenius_kwh",
    "stress_peak_c_rate",
)


def _offline_energy(results: Sequence[RunResult]) -> dict[str, float]:
    return {
        r.scenario: r.metrics.energy_delivered_kwh for r in results if r.strategy == OFFLINE and r.metrics is not None
    }


def result_rows(results: Sequence[RunResult]) -> list[dict[str, Any]]:
    """One JSON object per (scenario, strategy); metric fields are null for a run that failed."""
    offline = _offline_energy(results)
    rows = []
    for r in results:
        row: dict[str, Any] = {"scenario": r.scenario, "strategy": r.strategy}
        metrics = dataclasses.asdict(r.metrics) if r.metrics is not None else {}
        for name in METRIC_FIELDS:
            value = metrics.get(name)
            row[name] = round(value, 4) if isinstance(value, float) else value
        best = offline.get(r.scenario)
        row["energy_pct_of_offline"] = (
            round(100.0 * r.metrics.energy_delivered_kwh / best, 3) if r.metrics is not None and best else None
        )
        row["plan_check_failures"] = r.plan_check_failures
        row["first_check_problem"] = r.first_check_problem
        row["statuses"] = r.statuses
        row["wall_s"] = round(r.wall_s, 3)
        row["thermal_calibration"] = r.thermal_calibration
        row["sessions_thermal_fitted"] = r.fitted_sessions
        if r.error is not None:
            row["error"] = r.error
        rows.append(row)
    return rows


def write_results_json(path: Path, results: Sequence[RunResult]) -> None:
    path.write_text(json.dumps(result_rows(results), indent=2) + "\n", encoding="utf-8")


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def targets(results: Sequence[RunResult]) -> list[tuple[str, bool, str]]:
    """(target, met, what was measured) for every target the runs can judge."""
    rows = {(r.scenario, r.strategy): r for r in results}
    scenarios = sorted({r.scenario for r in results})
    out: list[tuple[str, bool, str]] = []
    for sc in scenarios:
        lp, off = rows.get((sc, "lp")), rows.get((sc, OFFLINE))
        if lp is None or lp.metrics is None:
            continue
        if off is not None and off.metrics is not None and off.metrics.energy_delivered_kwh > 0:
            pct = 100.0 * lp.metrics.energy_delivered_kwh / off.metrics.energy_delivered_kwh
            out.append(
                (
                    f"{sc}: lp ≥ {ENERGY_TARGET_PCT_OF_OFFLINE} % of offline_optimal's energy",
                    pct >= ENERGY_TARGET_PCT_OF_OFFLINE,
                    f"{pct:.2f} %",
                )
            )
        out.append(
            (
                f"{sc}: lp has no limit violations",
                lp.metrics.violation_count == 0,
                f"{lp.metrics.violation_count} ({lp.metrics.violation_kwh:.3f} kWh)",
            )
        )
        out.append(
            (
                f"{sc}: lp has no temperature violations",
                lp.metrics.temp_violation_c_min <= 0,
                f"{lp.metrics.temp_violation_c_min:.1f} °C·min",
            )
        )
        if sc in TIME_TARGETS_S:
            out.append(
                (f"{sc}: lp runs in < {TIME_TARGETS_S[sc]:g} s", lp.wall_s < TIME_TARGETS_S[sc], f"{lp.wall_s:.1f} s")
            )
        if sc == CONGESTED_SCENARIO:
            for other in ("edf", "llf", "equal_share"):
                rival = rows.get((sc, other))
                if rival is not None and rival.metrics is not None:
                    out.append(
                        (
                            f"{sc}: lp delivers more energy than {other}",
                            lp.metrics.energy_delivered_kwh > rival.metrics.energy_delivered_kwh,
                            f"{lp.metrics.energy_delivered_pct:.2f} % vs {rival.metrics.energy_delivered_pct:.2f} %",
                        )
                    )
    return out


def render_markdown(results: Sequence[RunResult], options: PlantOptions, plots: Sequence[str]) -> str:
    offline = _offline_energy(results)
    lines = [
        "# depotctl benchmark",
        "",
        f"Plant: seed {options.seed}, SoC noise σ {options.soc_noise:g}, "
        f"temperature noise σ {options.temp_noise_c:g} °C, "
        f"meter noise σ {options.meter_noise:g}, thermal mismatch {options.thermal_mismatch:+g}, "
        f"SoC {'hidden for vehicles that do not report it' if options.hide_soc else 'reported by every vehicle'}.",
        "",
        "Energy is battery-side and capped per session; `% opt` is the energy relative to `offline_optimal`; "
        "violations are (limit, step) pairs over a grid or circuit limit and the energy above them; "
        "tick times are per tick with at least one vehicle plugged in.",
        "",
    ]
    for sc in sorted({r.scenario for r in results}):
        lines += [
            f"## {sc}",
            "",
            "| strategy | energy % | % opt | met % | peak kW | violations (kWh) | temp °C·min | cost | Jain | "
            "tick p50/p95/max ms | run s |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in (r for r in results if r.scenario == sc):
            m = r.metrics
            if m is None:
                lines.append(f"| {r.strategy} | error: {r.error} | | | | | | | | | |")
                continue
            best = offline.get(sc)
            pct_opt = 100.0 * m.energy_delivered_kwh / best if best else None
            lines.append(
                f"| {r.strategy} | {m.energy_delivered_pct:.2f} | {_fmt(pct_opt, 2)} | {m.sessions_met_pct:.1f} | "
                f"{m.peak_kw:,.1f} | {m.violation_count} ({m.violation_kwh:,.2f}) | {m.temp_violation_c_min:,.1f} | "
                f"{_fmt(m.cost, 2)} | {m.jain:.3f} | {m.tick_ms_p50:.0f}/{m.tick_ms_p95:.0f}/{m.tick_ms_max:.0f} | "
                f"{r.wall_s:.1f} |"
            )
        lines.append("")
    judged = targets(results)
    if judged:
        lines += ["## Targets", "", "| target | met | measured |", "|---|---|---|"]
        lines += [f"| {name} | {'yes' if ok else '**no**'} | {measured} |" for name, ok, measured in judged]
        lines.append("")
    if plots:
        lines += ["## Plots", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in plots] + [""]
    return "\n".join(lines)


def write_report(path: Path, results: Sequence[RunResult], options: PlantOptions, plots: Sequence[str]) -> None:
    path.write_text(render_markdown(results, options, plots), encoding="utf-8")
