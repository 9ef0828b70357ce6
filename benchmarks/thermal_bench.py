"""The thermal-calibration proof (docs/battery.md): lp on scenarios whose real batteries heat differently from the
site file, with calibration on, off, and with the true model configured (what calibration should approach).

    python -m benchmarks.thermal_bench benchmarks/scenarios/bus-depot-heatwave.yaml --mismatch -0.3,0,0.3,0.5,1.0

Prints one Markdown row per (scenario, mismatch): energy delivered (% of requested), temperature violation (°C·min
above any ceiling) for each controller, and the energy calibration loses against the true model. ``--json FILE``
also writes the rows.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from benchmarks.harness import RunResult, run_strategy
from benchmarks.plant import PlantOptions, plant_thermal
from benchmarks.scenario import Scenario, load_scenario


@dataclass(frozen=True, slots=True)
class Outcome:
    energy_pct: float
    temp_violation_c_min: float
    sessions_fitted: int


@dataclass(frozen=True, slots=True)
class Row:
    scenario: str
    mismatch: float
    calibrated: Outcome
    fixed: Outcome
    true_model: Outcome

    @property
    def loss_vs_true_pct(self) -> float:
        """Energy the calibrated controller delivers less than the correctly configured one (% of requested)."""
        return self.true_model.energy_pct - self.calibrated.energy_pct


def with_true_model(scenario: Scenario, mismatch: float) -> Scenario:
    """``scenario`` whose site file already holds the real batteries' thermal model."""
    sessions = tuple(replace(s, thermal=plant_thermal(s.thermal, mismatch)) for s in scenario.sessions)
    return replace(scenario, sessions=sessions)


def _outcome(result: RunResult) -> Outcome:
    if result.metrics is None:
        raise RuntimeError(f"{result.scenario}: {result.error}")
    return Outcome(result.metrics.energy_delivered_pct, result.metrics.temp_violation_c_min, result.fitted_sessions)


def run_row(scenario: Scenario, mismatch: float, seed: int = 0) -> Row:
    plant = PlantOptions(seed=seed, thermal_mismatch=mismatch)
    calibrated = run_strategy(scenario, "lp", plant, thermal_calibration=True)
    fixed = run_strategy(scenario, "lp", plant, thermal_calibration=False)
    true_model = run_strategy(with_true_model(scenario, mismatch), "lp", replace(plant, thermal_mismatch=0.0),
                              thermal_calibration=False)
    return Row(scenario.name, mismatch, _outcome(calibrated), _outcome(fixed), _outcome(true_model))


def markdown(rows: list[Row]) -> str:
    lines = [
        "| scenario | mismatch | calibrated: energy % | °C·min | fixed model: energy % | °C·min "
        "| true model: energy % | °C·min | calibrated loses |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.scenario} | {r.mismatch:+.0%} | {r.calibrated.energy_pct:.2f} | {r.calibrated.temp_violation_c_min:.2f} "
            f"| {r.fixed.energy_pct:.2f} | {r.fixed.temp_violation_c_min:.2f} | {r.true_model.energy_pct:.2f} "
            f"| {r.true_model.temp_violation_c_min:.2f} | {r.loss_vs_true_pct:+.2f} % |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("scenarios", nargs="+", type=Path)
    parser.add_argument("--mismatch", default="-0.3,0,0.3,0.5,1.0", help="comma-separated, each above -1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    mismatches = [float(m) for m in args.mismatch.split(",") if m.strip()]
    if any(m <= -1.0 for m in mismatches):
        parser.error("every mismatch must be above -1")
    rows = [run_row(load_scenario(path), m, args.seed) for path in args.scenarios for m in mismatches]
    print(markdown(rows))
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) | {"loss_vs_true_pct": r.loss_vs_true_pct} for r in rows], indent=2) + "\n")


if __name__ == "__main__":
    main()
