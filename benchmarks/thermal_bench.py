"""The thermal-calibration proof (docs/battery.md): lp on scenarios whose real batteries heat differently from the
site file, with calibration on, off, and with the true model configured (what calibration should approach).

    python -m benchmarks.thermal_bench benchmarks/scenarios/bus-depot-heatwave.yaml --mismatch -0.3,0,0.3,0.5,1.0

Prints one Markdown row per (scenario, mismatch): energy delivered (% of requested), temperature violation (°C·min
above any ceiling) for each controller, and the energy calibration loses against the true model. A second table
sets calibrated lp against what the real batteries allow: ``offline_optimal`` (hindsight, replayed through the plant)
and the hindsight bound, both planned with the real batteries' thermal model (``--no-reference`` leaves it out).
``--json FILE`` also writes the rows.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from benchmarks.bound import hindsight_bound
from benchmarks.harness import RunResult, run_strategy
from benchmarks.plant import PlantOptions, plant_thermal
from benchmarks.scenario import Scenario, load_scenario
from benchmarks.strategy_names import OFFLINE


@dataclass(frozen=True, slots=True)
class Outcome:
    energy_pct: float
    temp_violation_c_min: float
    sessions_fitted: int
    readings_distrusted: int = 0  # battery temperatures not planned with as read (optimizer.temp_guard)


@dataclass(frozen=True, slots=True)
class Reference:
    """What the real batteries allow: hindsight planned with their true thermal model."""

    offline_energy_pct: float  # offline_optimal replayed through the plant
    offline_temp_violation_c_min: float
    bound_energy_pct: float  # the hindsight LP's optimum: no run within the ceilings delivers more


@dataclass(frozen=True, slots=True)
class Row:
    scenario: str
    mismatch: float
    calibrated: Outcome
    fixed: Outcome
    true_model: Outcome
    reference: Reference | None = None

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
    return Outcome(result.metrics.energy_delivered_pct, result.metrics.temp_violation_c_min, result.fitted_sessions,
                   result.distrusted_readings)


def reference(scenario: Scenario, plant: PlantOptions) -> Reference:
    """Hindsight with the plant's true thermal model (``plant.thermal_mismatch`` says how far off the site file is)."""
    offline = _outcome(run_strategy(scenario, OFFLINE, plant))
    bound = hindsight_bound(scenario, plant)
    return Reference(offline.energy_pct, offline.temp_violation_c_min, bound.energy_pct)


def run_row(scenario: Scenario, mismatch: float, seed: int = 0, with_reference: bool = False) -> Row:
    plant = PlantOptions(seed=seed, thermal_mismatch=mismatch)
    calibrated = run_strategy(scenario, "lp", plant, thermal_calibration=True)
    fixed = run_strategy(scenario, "lp", plant, thermal_calibration=False)
    true_model = run_strategy(with_true_model(scenario, mismatch), "lp", replace(plant, thermal_mismatch=0.0),
                              thermal_calibration=False)
    return Row(scenario.name, mismatch, _outcome(calibrated), _outcome(fixed), _outcome(true_model),
               reference(scenario, plant) if with_reference else None)


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
    referenced = [r for r in rows if r.reference is not None]
    if referenced:
        lines += [
            "",
            "| scenario | mismatch | calibrated: energy % | readings doubted | offline_optimal (true model): energy % "
            "| °C·min | calibrated % of offline_optimal | hindsight bound % | calibrated % of bound |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in referenced:
            assert r.reference is not None
            ref = r.reference
            lines.append(
                f"| {r.scenario} | {r.mismatch:+.0%} | {r.calibrated.energy_pct:.2f} | {r.calibrated.readings_distrusted} "
                f"| {ref.offline_energy_pct:.2f} | {ref.offline_temp_violation_c_min:.2f} "
                f"| {_share(r.calibrated.energy_pct, ref.offline_energy_pct)} | {ref.bound_energy_pct:.2f} "
                f"| {_share(r.calibrated.energy_pct, ref.bound_energy_pct)} |"
            )
    return "\n".join(lines)


def _share(part_pct: float, whole_pct: float) -> str:
    return f"{100.0 * part_pct / whole_pct:.2f}" if whole_pct > 0 else "–"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("scenarios", nargs="+", type=Path)
    parser.add_argument("--mismatch", default="-0.3,0,0.3,0.5,1.0", help="comma-separated, each above -1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--no-reference", action="store_true", help="leave out offline_optimal and the bound")
    args = parser.parse_args(argv)
    mismatches = [float(m) for m in args.mismatch.split(",") if m.strip()]
    if any(m <= -1.0 for m in mismatches):
        parser.error("every mismatch must be above -1")
    rows = [run_row(load_scenario(path), m, args.seed, not args.no_reference) for path in args.scenarios
            for m in mismatches]
    print(markdown(rows))
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) | {"loss_vs_true_pct": r.loss_vs_true_pct} for r in rows], indent=2) + "\n")


if __name__ == "__main__":
    main()
