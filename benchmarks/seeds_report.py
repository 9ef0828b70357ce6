"""The outputs of ``depotctl bench --seeds N``: ``results.json`` (one object per scenario and strategy, each
metric the mean over the seeds with its 95 % half width in ``<metric>_ci95``) and ``report.md`` (mean ± half
width, the hindsight bound, and the targets judged on the means and on every single run)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.bound import HindsightBound
from benchmarks.harness import DISTRUSTED, IGNORES_LIMITS
from benchmarks.plant import PlantOptions
from benchmarks.report import ENERGY_TARGET_PCT_OF_OFFLINE, METRIC_FIELDS, exceeds_bound
from benchmarks.seeds import SeedRun, SeedSummary
from benchmarks.strategy_names import OFFLINE

BASELINES = ("equal_share", "edf", "llf", "uncontrolled")
TABLE = (("energy_delivered_pct", "energy %", 2), ("sessions_met_pct", "met %", 1), ("peak_kw", "peak kW", 1),
         ("violation_kwh", "violations kWh", 2), ("temp_violation_c_min", "temp °C·min", 1),
         (DISTRUSTED, "readings doubted", 1), ("cost", "cost", 2),
         ("jain", "Jain", 3), ("tick_ms_p95", "tick p95 ms", 0))


def summary_rows(summaries: Sequence[SeedSummary], bounds: Sequence[HindsightBound]) -> list[dict[str, Any]]:
    by_scenario = {b.scenario: b for b in bounds}
    rows = []
    for s in summaries:
        row: dict[str, Any] = {"scenario": s.scenario, "strategy": s.strategy, "seeds": s.seeds}
        names = {m.name for m in s.metrics}
        for name in (*METRIC_FIELDS, DISTRUSTED):
            if name in names:
                m = s.metric(name)
                row[name] = round(m.mean, 4)
                row[f"{name}_ci95"] = round(m.half_width, 4)
            else:  # no seed finished or the metric is undefined (DISTRUSTED: a strategy that does not screen)
                row[name] = None
        bound = by_scenario.get(s.scenario)
        row["bound_energy_kwh"] = round(bound.energy_kwh, 4) if bound is not None else None
        row["bound_sessions_met_pct"] = round(bound.sessions_met_pct, 4) if bound is not None else None
        delivered = row.get("energy_delivered_kwh")
        row["energy_pct_of_bound"] = (round(100.0 * delivered / bound.energy_kwh, 3)
                                      if bound is not None and bound.energy_kwh > 0 and delivered is not None else None)
        row["plan_check_failures"] = s.plan_check_failures
        row["wall_s"] = round(s.wall_s, 3)
        if s.errors:
            row["error"] = "; ".join(s.errors)
        rows.append(row)
    return rows


def seed_targets(summaries: Sequence[SeedSummary], runs: Sequence[SeedRun],
                 bounds: Sequence[HindsightBound]) -> list[tuple[str, bool, str]]:
    """The acceptance of the robustness issue, per scenario: lp at least every limit-respecting baseline in mean
    energy and sessions met, ≥ 99.5 % of the bound, no violation in any seed, and no run above the bound."""
    by_key = {(s.scenario, s.strategy): s for s in summaries}
    by_scenario = {b.scenario: b for b in bounds}
    out: list[tuple[str, bool, str]] = []
    for sc in dict.fromkeys(s.scenario for s in summaries):
        lp = by_key.get((sc, "lp"))
        if lp is None or lp.seeds == 0:
            continue
        for metric, label in (("energy_delivered_kwh", "energy"), ("sessions_met_pct", "sessions met")):
            mine = lp.metric(metric).mean
            for rival_name in (*BASELINES, OFFLINE):
                rival = by_key.get((sc, rival_name))
                if rival is None or rival.seeds == 0 or rival_name in IGNORES_LIMITS:
                    continue
                theirs = rival.metric(metric).mean
                out.append((f"{sc}: lp ≥ {rival_name} in mean {label}", mine >= theirs - 1e-9,
                            f"{mine:.2f} vs {theirs:.2f}"))
        violations = max(lp.metric("violation_count").high, 0.0)
        out.append((f"{sc}: lp has no limit violations in any seed", violations == 0, f"at most {violations:.0f}"))
        bound = by_scenario.get(sc)
        if bound is not None and bound.energy_kwh > 0:
            pct = 100.0 * lp.metric("energy_delivered_kwh").mean / bound.energy_kwh
            out.append((f"{sc}: lp ≥ {ENERGY_TARGET_PCT_OF_OFFLINE} % of the hindsight bound's energy (mean)",
                        pct >= ENERGY_TARGET_PCT_OF_OFFLINE, f"{pct:.2f} %"))
            beaten = [f"seed {r.seed}: {why}" for r in runs if r.scenario == sc and r.metrics is not None
                      and (why := exceeds_bound(r.strategy, r.metrics, bound)) is not None]
            out.append((f"{sc}: no run beats the hindsight bound", not beaten, beaten[0] if beaten else "none"))
    return out


def render_seeds_markdown(summaries: Sequence[SeedSummary], runs: Sequence[SeedRun], bounds: Sequence[HindsightBound],
                          options: PlantOptions, seeds: Sequence[int], command: str) -> str:
    by_scenario = {b.scenario: b for b in bounds}
    soc = "hidden for vehicles that do not report it" if options.hide_soc else "reported by every vehicle"
    lines = [
        "# depotctl benchmark over noise seeds",
        "",
        f"Command: `{command}`. Seeds {seeds[0]}..{seeds[-1]} ({len(seeds)}); SoC noise σ {options.soc_noise:g}, "
        f"temperature noise σ {options.temp_noise_c:g} °C, meter noise σ {options.meter_noise:g}, thermal mismatch "
        f"{options.thermal_mismatch:+g}, SoC {soc}.",
        "",
        "Each cell is the mean over the seeds ± the half width of its 95 % interval (Student's t). `readings doubted`: "
        "battery temperatures the controller did not plan with as read (docs/battery.md; – for strategies that plan "
        "with every reading as read). `bound` is the "
        "hindsight LP's own optimum (perfect knowledge, the same model; docs/benchmarks-robust.md): no run within "
        "the limits can beat it. `% bound` is the mean energy as a share of it.",
        "",
    ]
    for sc in dict.fromkeys(s.scenario for s in summaries):
        header = " | ".join(label for _, label, _ in TABLE)
        lines += [f"## {sc}", "", f"| strategy | seeds | {header} | % bound | run s |",
                  "|---|---:|" + "---:|" * len(TABLE) + "---:|---:|"]
        bound = by_scenario.get(sc)
        for s in (s for s in summaries if s.scenario == sc):
            if s.seeds == 0:
                lines.append(f"| {s.strategy} | 0 | error: {s.errors[0] if s.errors else '?'} |")
                continue
            names = {m.name for m in s.metrics}
            cells = []
            for name, _, digits in TABLE:
                if name not in names:
                    cells.append("–")
                    continue
                m = s.metric(name)
                cells.append(f"{m.mean:,.{digits}f} ± {m.half_width:,.{digits}f}")
            pct = (f"{100.0 * s.metric('energy_delivered_kwh').mean / bound.energy_kwh:.2f}"
                   if bound is not None and bound.energy_kwh > 0 else "–")
            lines.append(f"| {s.strategy} | {s.seeds} | {' | '.join(cells)} | {pct} | {s.wall_s:.1f} |")
        if bound is not None:
            blanks = " | ".join("" for _ in TABLE[2:])
            lines.append(f"| bound | – | {bound.energy_pct:.2f} | {bound.sessions_met_pct:.1f} | {blanks} | 100.00 | "
                         f"{bound.solve_ms / 1000.0:.1f} |")
        lines.append("")
    judged = seed_targets(summaries, runs, bounds)
    if judged:
        lines += ["## Targets", "", "| target | met | measured |", "|---|---|---|"]
        lines += [f"| {name} | {'yes' if ok else '**no**'} | {measured} |" for name, ok, measured in judged]
        lines.append("")
    return "\n".join(lines)


def write_seed_outputs(out: Path, summaries: Sequence[SeedSummary], runs: Sequence[SeedRun],
                       bounds: Sequence[HindsightBound], options: PlantOptions, seeds: Sequence[int], command: str) -> None:
    (out / "results.json").write_text(json.dumps(summary_rows(summaries, bounds), indent=2) + "\n", encoding="utf-8")
    (out / "report.md").write_text(render_seeds_markdown(summaries, runs, bounds, options, seeds, command), encoding="utf-8")
