"""The error tree of depotctl.

    DepotError
    ├── ConfigError            a site file or scenario file is wrong: one or more ConfigProblem
    ├── SnapshotError          a snapshot (JSON or built live) is wrong: file/field and reason
    └── OptimizerError
        ├── SolverFailed       the LP solver crashed, timed out or returned no usable answer
        │   └── ModelInfeasible    the LP as posed has no solution (used inside the min-current rounds)
        └── PlanViolation      a plan breaks a limit; raised by the independent plan checker

Third-party exceptions (pydantic, yaml, highspy, pulp) are mapped to these once, at the boundary,
with ``raise ... from exc``. Infeasible *input* is not an exception: strategies return a safe plan
with status ``infeasible_safe`` and a reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class DepotError(Exception):
    """Root of every error depotctl raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem in one file: where it is and why it is wrong."""

    file: str
    line: int | None
    key: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        key = self.key or "(top level)"
        return f"{where}: {key}: {self.reason}"


class ConfigError(DepotError):
    """A configuration file has problems; ``problems`` lists every one found."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class SnapshotError(DepotError):
    """A snapshot is malformed or refers to something the site does not have."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        self.source = source
        self.key = key
        self.reason = reason
        super().__init__(f"{source}: {key}: {reason}")


class OptimizerError(DepotError):
    """The optimizer could not produce a plan."""


class SolverFailed(OptimizerError):
    """The LP solver failed (crash, time-out, or no usable solution)."""


class ModelInfeasible(SolverFailed):
    """The LP has no feasible point (e.g. after raising connectors to their minimum current)."""


class PlanViolation(OptimizerError):
    """A plan breaks a limit. ``violations`` names each broken constraint and the excess."""

    def __init__(self, violations: Sequence[object]) -> None:
        self.violations = list(violations)  # optimizer.plan_check.Violation values (str() reads them)
        super().__init__("; ".join(str(v) for v in violations))
