"""Live against in-process, metric by metric: both values and the relative difference.

A relative difference of a metric that is 0 in-process (no violation, say) is undefined; such a row
shows the absolute difference instead, and a metric both runs leave at 0 differs by 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.metrics import Metrics

# (field, label). Tick times are not compared: the live tick also snapshots, checks and dispatches over
# websockets, so its wall time measures more than the in-process strategy call.
COMPARED: tuple[tuple[str, str], ...] = (
    ("energy_delivered_kwh", "energy delivered (kWh)"),
    ("energy_delivered_pct", "energy delivered (%)"),
    ("sessions_met_pct", "sessions met (%)"),
    ("peak_kw", "peak site kW"),
    ("violation_kwh", "limit violations (kWh)"),
    ("temp_violation_c_min", "temperature violations (°C·min)"),
    ("cost", "cost"),
    ("jain", "Jain index"),
)
ZERO = 1e-9


@dataclass(frozen=True, slots=True)
class MetricDiff:
    name: str
    label: str
    in_process: float | None
    live: float | None

    @property
    def abs_diff(self) -> float | None:
        if self.in_process is None or self.live is None:
            return None
        return self.live - self.in_process

    @property
    def rel_diff(self) -> float | None:
        """(live − in-process) / |in-process|; None when in-process is 0 (see ``abs_diff``) or missing."""
        diff = self.abs_diff
        if diff is None or self.in_process is None:
            return None
        if abs(self.in_process) <= ZERO:
            return 0.0 if abs(diff) <= ZERO else None
        return diff / abs(self.in_process)


def compare(in_process: Metrics, live: Metrics) -> list[MetricDiff]:
    return [MetricDiff(name, label, getattr(in_process, name), getattr(live, name)) for name, label in COMPARED]


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def format_comparison(scenario: str, diffs: list[MetricDiff]) -> str:
    """A plain-text table, one metric per line."""
    lines = [f"{scenario}: lp in-process vs live", f"{'metric':34} {'in-process':>12} {'live':>12} {'difference':>12}"]
    for d in diffs:
        rel = d.rel_diff
        shown = f"{100.0 * rel:+.2f} %" if rel is not None else (f"{d.abs_diff:+.3f} abs" if d.abs_diff is not None else "–")
        lines.append(f"{d.label:34} {_fmt(d.in_process):>12} {_fmt(d.live):>12} {shown:>12}")
    return "\n".join(lines)
