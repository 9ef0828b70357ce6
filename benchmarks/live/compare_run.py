"""``depotctl bench --live``: each scenario under lp in-process and through the live controller, both printed
with the relative difference per metric, and written to ``OUT/live.json``; the live run's thermal trace and pace
verdict (``thermal_trace``) printed and written to ``OUT/<scenario>.thermal.jsonl``."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness import DISTRUSTED, run_strategy
from benchmarks.live.compare import compare, format_comparison
from benchmarks.live.scenario_live import LiveOptions, run_live
from benchmarks.live.thermal_trace import summary
from benchmarks.plant import PlantOptions
from benchmarks.report import METRIC_FIELDS
from benchmarks.scenario import Scenario


def in_process_options(live: LiveOptions) -> PlantOptions:
    """The in-process plant that matches the emulated one: exact sensors (the emulator has no noise), the same
    thermal mismatch and SoC reporting."""
    return PlantOptions(
        soc_noise=0.0, temp_noise_c=0.0, meter_noise=0.0, thermal_mismatch=live.thermal_mismatch, hide_soc=live.hide_soc
    )


def compare_scenario(scenario: Scenario, options: LiveOptions) -> dict[str, Any]:
    """Run ``scenario`` both ways; one JSON-ready row. Raises what a failing run raises."""
    in_process = run_strategy(scenario, "lp", in_process_options(options), thermal_calibration=options.thermal_calibration)
    if in_process.metrics is None:
        raise RuntimeError(f"{scenario.name}: lp failed in-process: {in_process.error}")
    live = run_live(scenario, options)
    watch = live.thermal
    pace = watch.pace() if watch is not None else None
    diffs = compare(in_process.metrics, live.metrics)
    return {
        "scenario": scenario.name,
        "strategy": "lp",
        "speed": options.speed,
        "in_process": dataclasses.asdict(in_process.metrics),
        "live": dataclasses.asdict(live.metrics),
        "rel_diff": {d.name: d.rel_diff for d in diffs},
        "abs_diff": {d.name: d.abs_diff for d in diffs},
        "live_ticks": live.ticks,
        "live_tick_errors": live.tick_errors,
        "live_worst_lag_s": round(live.worst_lag_s, 3),
        "live_wall_s": round(live.wall_s, 3),
        "live_distrusted_readings": live.distrusted_readings,
        "detection": dataclasses.asdict(live.detection) if live.detection is not None else None,
        "table": format_comparison(scenario.name, diffs),
        # A host that fell behind the clock makes the live figures no verdict on the controller (thermal_trace).
        "live_pace": dataclasses.asdict(pace) if pace is not None else None,
        "live_thermal": summary(watch, options.speed) if watch is not None else [],
    }


def compare_all(
    scenarios: Sequence[Scenario], options: LiveOptions, out: Path, echo: Callable[[str], None]
) -> list[dict[str, Any]]:
    rows = []
    for scenario in scenarios:
        row = compare_scenario(scenario, dataclasses.replace(options, trace_path=out / f"{scenario.name}.thermal.jsonl"))
        echo(row["table"])
        for line in row["live_thermal"]:
            echo(f"{scenario.name}: {line}")
        if row["live_tick_errors"]:
            echo(f"{scenario.name}: {len(row['live_tick_errors'])} live ticks gave no plan, first: {row['live_tick_errors'][0]}")
        rows.append(row)
    out.mkdir(parents=True, exist_ok=True)
    (out / "live.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    (out / "results.json").write_text(json.dumps([results_row(r) for r in rows], indent=2) + "\n", encoding="utf-8")
    return rows


def results_row(row: dict[str, Any]) -> dict[str, Any]:
    """The live run of one scenario as a ``results.json`` row (strategy lp, ``"mode": "live"``), with the
    detection figures of its injected faults (``null`` when it injects none)."""
    live = row["live"]
    out: dict[str, Any] = {"scenario": row["scenario"], "strategy": "lp", "mode": "live"}
    for name in METRIC_FIELDS:
        value = live.get(name)
        out[name] = round(value, 4) if isinstance(value, float) else value
    out["wall_s"] = row["live_wall_s"]
    out[DISTRUSTED] = row.get("live_distrusted_readings")  # absent from a row of an older live.json
    out["detection"] = row["detection"]
    pace = row.get("live_pace")
    if pace is not None:
        out["host_kept_up"] = pace["kept_up"]
    if row["live_tick_errors"]:
        out["error"] = f"{len(row['live_tick_errors'])} ticks without a plan; first: {row['live_tick_errors'][0]}"
    return out
