"""The benchmark's outputs: ``results.json`` (the contract of docs/json.md) and ``report.md`` (the table and the
targets of the benchmark issue), with the hindsight bound (benchmarks/bound.py) beside them."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.bound import HindsightBound
from benchmarks.harness import DISTRUSTED, IGNORES_LIMITS, RunResult
from benchmarks.metrics import Metrics
from benchmarks.plant import PlantOptions
from benchmarks.strategy_names import OFFLINE

ENERGY_TARGET_PCT_OF_OFFLINE = 99.5
# A run may reach its bound to within solver tolerance and the plant's step integration, never beyond it.
BOUND_TOLERANCE_KWH = 0.05
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


def bound_fields(bound: HindsightBound | None, metrics: Metrics | None) -> dict[str, Any]:
    """The bound's fields of one results.json row (null without a bound)."""
    if bound is None:
        return {"bound_energy_kwh": None, "bound_sessions_met_pct": None, "energy_pct_of_bound": None}
    pct = (100.0 * metrics.energy_delivered_kwh / bound.energy_kwh
           if metrics is not None and bound.energy_kwh > 0 else None)
    return {
        "bound_energy_kwh": round(bound.energy_kwh, 4),
        "bound_sessions_met_pct": round(bound.sessions_met_pct, 4),
        "energy_pct_of_bound": round(pct, 3) if pct is not None else None,
    }


def exceeds_bound(strategy: str, metrics: Metrics, bound: HindsightBound) -> str | None:
    """Why a run beats its bound (which no limit-respecting run can), or None. Runs over a limit or a battery
    ceiling are not bounded by it."""
    if strategy in IGNORES_LIMITS or metrics.violation_count > 0 or metrics.temp_violation_c_min > 0:
        return None
    if metrics.energy_delivered_kwh > bound.energy_kwh + BOUND_TOLERANCE_KWH:
        return f"{strategy} delivered {metrics.energy_delivered_kwh:.2f} kWh > bound {bound.energy_kwh:.2f} kWh"
    met = metrics.sessions_met_pct * metrics.sessions / 100.0
    if met > bound.sessions_met + 1e-6:
        return f"{strategy} met {met:.0f} sessions > bound {bound.sessions_met:.2f}"
    return None


def result_rows(results: Sequence[RunResult], bounds: Sequence[HindsightBound] = ()) -> list[dict[str, Any]]:
    """One JSON object per (scenario, strategy); metric fields are null for a run that failed."""
    offline = _offline_energy(results)
    by_scenario = {b.scenario: b for b in bounds}
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
        row.update(bound_fields(by_scenario.get(r.scenario), r.metrics))
        row["plan_check_failures"] = r.plan_check_failures
        row["first_check_problem"] = r.first_check_problem
        row["statuses"] = r.statuses
        row["wall_s"] = round(r.wall_s, 3)
        row["thermal_calibration"] = r.thermal_calibration
        row["sessions_thermal_fitted"] = r.fitted_sessions
        row[DISTRUSTED] = r.distrusted_count
        if r.error is not None:
            row["error"] = r.error
        rows.append(row)
    return rows


def write_results_json(path: Path, results: Sequence[RunResult], bounds: Sequence[HindsightBound] = ()) -> None:
    path.write_text(json.dumps(result_rows(results, bounds), indent=2) + "\n", encoding="utf-8")


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def bound_targets(sc: str, lp: Metrics, bound: HindsightBound | None,
                  runs: Sequence[tuple[str, Metrics]]) -> list[tuple[str, bool, str]]:
    """lp's share of the bound, and that no run beat it."""
    if bound is None or bound.energy_kwh <= 0:
        return []
    pct = 100.0 * lp.energy_delivered_kwh / bound.energy_kwh
    beaten = [why for name, m in runs if (why := exceeds_bound(name, m, bound)) is not None]
    return [
        (f"{sc}: lp ≥ {ENERGY_TARGET_PCT_OF_OFFLINE} % of the hindsight bound's energy",
         pct >= ENERGY_TARGET_PCT_OF_OFFLINE, f"{pct:.2f} %"),
        (f"{sc}: no run beats the hindsight bound", not beaten, beaten[0] if beaten else f"{len(runs)} runs within"),
    ]


def targets(results: Sequence[RunResult], bounds: Sequence[HindsightBound] = ()) -> list[tuple[str, bool, str]]:
    """(target, met, what was measured) for every target the runs can judge."""
    rows = {(r.scenario, r.strategy): r for r in results}
    by_scenario = {b.scenario: b for b in bounds}
    scenarios = sorted({r.scenario for r in results})
    out: list[tuple[str, bool, str]] = []
    for sc in scenarios:
        lp, off = rows.get((sc, "lp")), rows.get((sc, OFFLINE))
        if lp is None or lp.metrics is None:
            continue
        runs = [(r.strategy, r.metrics) for r in results if r.scenario == sc and r.metrics is not None]
        out += bound_targets(sc, lp.metrics, by_scenario.get(sc), runs)
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


def render_markdown(results: Sequence[RunResult], options: PlantOptions, plots: Sequence[str],
                    bounds: Sequence[HindsightBound] = ()) -> str:
    offline = _offline_energy(results)
    by_scenario = {b.scenario: b for b in bounds}
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
        "tick times are per tick with at least one vehicle plugged in. `readings doubted` counts the battery "
        "temperatures the controller did not plan with as read (docs/battery.md; – for strategies that plan with "
        "every reading as read). `bound` is the hindsight LP's own optimum "
        "(docs/benchmarks-robust.md): no run within the limits can deliver more energy or meet more sessions.",
        "",
    ]
    for sc in sorted({r.scenario for r in results}):
        lines += [
            f"## {sc}",
            "",
            "| strategy | energy % | % opt | met % | peak kW | violations (kWh) | temp °C·min | readings doubted | cost "
            "| Jain | tick p50/p95/max ms | run s |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in (r for r in results if r.scenario == sc):
            m = r.metrics
            if m is None:
                lines.append(f"| {r.strategy} | error: {r.error} | | | | | | | | | | |")
                continue
            best = offline.get(sc)
            pct_opt = 100.0 * m.energy_delivered_kwh / best if best else None
            lines.append(
                f"| {r.strategy} | {m.energy_delivered_pct:.2f} | {_fmt(pct_opt, 2)} | {m.sessions_met_pct:.1f} | "
                f"{m.peak_kw:,.1f} | {m.violation_count} ({m.violation_kwh:,.2f}) | {m.temp_violation_c_min:,.1f} | "
                f"{_fmt(r.distrusted_count)} | {_fmt(m.cost, 2)} | {m.jain:.3f} | "
                f"{m.tick_ms_p50:.0f}/{m.tick_ms_p95:.0f}/{m.tick_ms_max:.0f} | {r.wall_s:.1f} |"
            )
        bound = by_scenario.get(sc)
        if bound is not None:
            lines.append(f"| bound | {bound.energy_pct:.2f} | | {bound.sessions_met_pct:.1f} | | | | | | | | "
                         f"{bound.solve_ms / 1000.0:.1f} |")
        lines.append("")
    judged = targets(results, bounds)
    if judged:
        lines += ["## Targets", "", "| target | met | measured |", "|---|---|---|"]
        lines += [f"| {name} | {'yes' if ok else '**no**'} | {measured} |" for name, ok, measured in judged]
        lines.append("")
    if plots:
        lines += ["## Plots", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in plots] + [""]
    return "\n".join(lines)


def write_report(path: Path, results: Sequence[RunResult], options: PlantOptions, plots: Sequence[str],
                 bounds: Sequence[HindsightBound] = ()) -> None:
    path.write_text(render_markdown(results, options, plots, bounds), encoding="utf-8")
