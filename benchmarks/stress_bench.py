"""Battery stress weights measured (docs/battery.md): lp on each scenario with the stress terms off and on.

    python -m benchmarks.stress_bench benchmarks/scenarios/bus-depot-hot-evening.yaml --high-soc 0.01 --temperature 0.02

Prints one Markdown row per (scenario, weights): energy delivered and its change against the weights off, and the
three stress proxies of what physically happened (mean hours above 80 % SoC per session, Σ Arrhenius-weighted kWh,
highest C-rate).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from benchmarks.harness import run_strategy
from benchmarks.metrics import Metrics
from benchmarks.plant import PlantOptions
from benchmarks.scenario import Scenario, load_scenario


def with_weights(scenario: Scenario, high_soc: float, temperature: float) -> Scenario:
    site = scenario.site
    objective = dataclasses.replace(site.control.objective, stress_high_soc=high_soc, stress_temperature=temperature)
    control = dataclasses.replace(site.control, objective=objective)
    return dataclasses.replace(scenario, site=dataclasses.replace(site, control=control))


def run(scenario: Scenario, high_soc: float, temperature: float, seed: int) -> Metrics:
    result = run_strategy(with_weights(scenario, high_soc, temperature), "lp", PlantOptions(seed=seed))
    if result.metrics is None:
        raise RuntimeError(f"{scenario.name}: {result.error}")
    return result.metrics


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("scenarios", nargs="+", type=Path)
    parser.add_argument("--high-soc", type=float, default=0.01, help="Objective.stress_high_soc to try")
    parser.add_argument("--temperature", type=float, default=0.02, help="Objective.stress_temperature to try")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print("| scenario | stress_high_soc | stress_temperature | energy kWh | energy lost | h > 80 % SoC "
          "| Arrhenius kWh | peak C-rate |")
    print("|---|---|---|---|---|---|---|---|")
    for path in args.scenarios:
        scenario = load_scenario(path)
        base = run(scenario, 0.0, 0.0, args.seed)
        for hs, tw in ((0.0, 0.0), (args.high_soc, 0.0), (0.0, args.temperature), (args.high_soc, args.temperature)):
            m = base if (hs, tw) == (0.0, 0.0) else run(scenario, hs, tw, args.seed)
            lost = 100.0 * (base.energy_delivered_kwh - m.energy_delivered_kwh) / max(base.energy_delivered_kwh, 1e-9)
            print(f"| {scenario.name} | {hs:g} | {tw:g} | {m.energy_delivered_kwh:.1f} | {lost:+.3f} % "
                  f"| {m.stress_hours_above_80pct:.3f} | {m.stress_arrhenius_kwh:.1f} | {m.stress_peak_c_rate:.3f} |",
                  flush=True)


if __name__ == "__main__":
    main()
