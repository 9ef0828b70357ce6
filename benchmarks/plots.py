"""PNG plots of a benchmark run (matplotlib, Agg backend, every figure closed after saving):
site power against the limit per strategy, SoC and battery temperature of selected vehicles, and
energy delivered per strategy across scenarios."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot

import matplotlib.pyplot as plt
import numpy as np

from benchmarks.harness import RunResult
from benchmarks.plant import PlantTrace

SELECTED_VEHICLES = 4
PREFERRED_STRATEGY = "lp"


def _hours(trace: PlantTrace) -> np.ndarray:
    return np.arange(len(trace.times)) * trace.step_h


def plot_site_power(path: Path, scenario: str, runs: Sequence[RunResult]) -> Path:
    """Site power (EVs + base load) of each strategy against the grid import limit."""
    fig, ax = plt.subplots(figsize=(10, 4.5))
    try:
        limit_drawn = False
        for r in runs:
            if r.trace is None:
                continue
            hours = _hours(r.trace)
            if not limit_drawn:
                ax.step(
                    hours, r.trace.import_limit_kw, where="post", color="black", linestyle="--", label="import limit"
                )
                limit_drawn = True
            ax.step(hours, r.trace.site_kw, where="post", linewidth=1.2, label=r.strategy)
        ax.set_xlabel("hours from start")
        ax.set_ylabel("site power (kW)")
        ax.set_title(f"{scenario}: site power per strategy")
        ax.legend(loc="upper right", fontsize="small")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
    return path


def selected_vehicles(trace: PlantTrace, count: int = SELECTED_VEHICLES) -> list[int]:
    """The vehicles worth looking at: the hottest relative to their ceiling when any has a thermal
    model, else those that asked for the most energy."""
    ceilings = trace.temp_ceiling_c
    modelled = np.isfinite(ceilings)
    if modelled.any():
        headroom = np.where(
            modelled, ceilings - np.nanmax(np.nan_to_num(trace.temp_end_c, nan=-np.inf), axis=1), np.inf
        )
        order = np.argsort(headroom)
    else:
        order = np.argsort(-trace.requested_kwh)
    return [int(i) for i in order[:count]]


def vehicles_title(scenario: str, strategy: str, trace: PlantTrace, chosen: Sequence[int]) -> str:
    """The vehicle plot's title; it names the dotted ceiling lines only when one is drawn."""
    drawn = any(np.isfinite(trace.temp_ceiling_c[i]) for i in chosen)
    return f"{scenario}: selected vehicles under {strategy}" + (" (dotted: temperature ceiling)" if drawn else "")


def plot_vehicles(path: Path, scenario: str, run: RunResult) -> Path | None:
    """SoC (top) and battery temperature (bottom) of a few vehicles under one strategy."""
    trace = run.trace
    if trace is None or not trace.sessions:
        return None
    chosen = selected_vehicles(trace)
    hours = _hours(trace) + trace.step_h  # values are at the end of each step
    fig, (soc_ax, temp_ax) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    try:
        for i in chosen:
            label = trace.sessions[i].label
            soc_ax.plot(hours, trace.soc_end[i], label=label)
            line = temp_ax.plot(hours, trace.temp_end_c[i], label=label)[0]
            ceiling = trace.temp_ceiling_c[i]
            if np.isfinite(ceiling):
                temp_ax.axhline(ceiling, color=line.get_color(), linestyle=":", linewidth=0.8)
        soc_ax.set_ylabel("SoC")
        soc_ax.set_title(vehicles_title(scenario, run.strategy, trace, chosen))
        soc_ax.legend(fontsize="small", loc="lower right")
        soc_ax.grid(alpha=0.3)
        temp_ax.set_ylabel("battery °C")
        temp_ax.set_xlabel("hours from start")
        temp_ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
    return path


def plot_energy(path: Path, results: Sequence[RunResult]) -> Path:
    """Grouped bars: energy delivered (% of requested) per strategy, one group per scenario."""
    scenarios = sorted({r.scenario for r in results})
    strategies = list(dict.fromkeys(r.strategy for r in results))
    value = {(r.scenario, r.strategy): r.metrics.energy_delivered_pct for r in results if r.metrics is not None}
    width = 0.8 / max(len(strategies), 1)
    x = np.arange(len(scenarios))
    fig, ax = plt.subplots(figsize=(max(8, 1.6 * len(scenarios)), 4.5))
    try:
        for k, strategy in enumerate(strategies):
            heights = [value.get((sc, strategy), np.nan) for sc in scenarios]
            ax.bar(x + (k - (len(strategies) - 1) / 2) * width, heights, width, label=strategy)
        ax.set_xticks(x, scenarios, rotation=15, fontsize="small")
        ax.set_ylabel("energy delivered (% of requested)")
        finite = [v for v in value.values() if np.isfinite(v)]
        ax.set_ylim(max(0.0, min(finite, default=0.0) - 5.0), 100.5)
        ax.legend(fontsize="small", ncol=3)
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
    return path


def write_plots(out_dir: Path, results: Sequence[RunResult]) -> list[str]:
    """Every plot for ``results``; returns the written paths."""
    written: list[Path] = []
    for sc in sorted({r.scenario for r in results}):
        runs = [r for r in results if r.scenario == sc]
        written.append(plot_site_power(out_dir / f"power_{sc}.png", sc, runs))
        featured = next((r for r in runs if r.strategy == PREFERRED_STRATEGY and r.trace is not None), None)
        featured = featured or next((r for r in runs if r.trace is not None), None)
        if featured is not None:
            vehicles = plot_vehicles(out_dir / f"vehicles_{sc}.png", sc, featured)
            if vehicles is not None:
                written.append(vehicles)
    if any(r.metrics is not None for r in results):
        written.append(plot_energy(out_dir / "energy_delivered.png", results))
    return [str(p) for p in written]
