"""Every call into PuLP and HiGHS lives here, so the solver can be swapped.

Two builders of one formulation (``lp_model.LinearProgram``):
- ``HighsSolver``: the matrix is passed to HiGHS (highspy) in one call; bounds can be changed and the
  model re-solved warm (the minimum-current rounds use this).
- ``PulpSolver``: the same rows become a PuLP problem, solved with HiGHS through PuLP or with CBC
  (the fallback when highspy is missing). Readable and solver-independent, but PuLP costs a few µs per
  nonzero, so the live controller uses ``HighsSolver`` whenever highspy is importable.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from optimizer.errors import ModelInfeasible, SolverFailed
from optimizer.horizon import FloatArray
from optimizer.lp_model import LinearProgram
from optimizer.lp_warm_start import Basis

# With the non-degenerate objective (reward on the first step only) dual simplex beat IPM at every size
# measured up to 1,000 × 42 steps (1.4-2.3 s vs 3.8 s); IPM is kept for the very largest models.
IPM_ABOVE_NONZEROS = 2_000_000

try:
    import highspy

    HAVE_HIGHSPY = True
except ImportError:  # pragma: no cover - exercised only on machines without highspy
    HAVE_HIGHSPY = False


@dataclass(frozen=True, slots=True)
class Solution:
    x: FloatArray
    row_activity: FloatArray
    objective: float
    optimal: bool
    solver: str
    solve_ms: float
    build_ms: float
    iterations: int = 0  # simplex iterations of this solve (0 where the solver does not say)


class LpSolver(Protocol):
    name: str

    def load(self, lp: LinearProgram) -> None: ...

    def set_col_bounds(self, cols: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> None: ...

    def solve(self) -> Solution: ...

    def basis(self) -> Basis | None:
        """The basis of the last solve, or None when the solver has none to give."""
        ...

    def start_from(self, basis: Basis) -> bool:
        """Begin the next solve from ``basis``; False when the solver cannot (it then starts cold)."""
        ...


_BANNER_SHOWN = False


@contextlib.contextmanager
def _without_banner() -> Iterator[None]:
    """HiGHS prints a banner on fd 1 the first time it is created: noise on every command's terminal, and stdout
    carries plan JSON. It goes to the null device (the licence is in the package metadata)."""
    sys.stdout.flush()
    saved = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)


def _new_highs() -> Any:
    global _BANNER_SHOWN
    if _BANNER_SHOWN:
        highs = highspy.Highs()  # type: ignore[no-untyped-call]
    else:
        with _without_banner():
            highs = highspy.Highs()  # type: ignore[no-untyped-call]
        _BANNER_SHOWN = True
    highs.setOptionValue("output_flag", False)
    return highs


class HighsSolver:
    """HiGHS fed the sparse matrix directly; keeps the model for warm re-solves."""

    def __init__(self, time_limit_s: float = 10.0, method: str = "auto", threads: int = 1) -> None:
        if not HAVE_HIGHSPY:
            raise SolverFailed("highspy is not installed")
        self.time_limit_s = time_limit_s
        self.method = method
        self.threads = threads
        self.name = "highs"
        self._highs: Any = None
        self._build_ms = 0.0
        self._lp: LinearProgram | None = None

    def load(self, lp: LinearProgram) -> None:
        started = time.perf_counter()
        highs = _new_highs()
        csc = lp.matrix.tocsc()
        # The array overload hands numpy buffers straight to HiGHS; filling a HighsLp field by field
        # converted every element through pybind (34 ms of 43 ms for a 1,000 x 30 model).
        status = highs.passModel(
            lp.columns,
            int(lp.matrix.shape[0]),
            int(csc.nnz),
            int(highspy.MatrixFormat.kColwise),
            int(highspy.ObjSense.kMinimize),
            float(lp.objective_offset),
            np.ascontiguousarray(lp.cost, dtype=np.float64),
            np.ascontiguousarray(lp.col_lb, dtype=np.float64),
            np.ascontiguousarray(lp.col_ub, dtype=np.float64),
            np.ascontiguousarray(lp.row_lb, dtype=np.float64),
            np.ascontiguousarray(lp.row_ub, dtype=np.float64),
            np.ascontiguousarray(csc.indptr[:-1], dtype=np.int32),  # HiGHS takes the starts only
            np.ascontiguousarray(csc.indices, dtype=np.int32),
            np.ascontiguousarray(csc.data, dtype=np.float64),
            np.zeros(lp.columns, dtype=np.int32),  # all continuous
        )
        if status == highspy.HighsStatus.kError:  # kWarning (e.g. tiny coefficients dropped) is fine
            raise SolverFailed(f"HiGHS refused the model: {status}")
        method = self.method
        if method == "auto":
            method = "ipm" if csc.nnz > IPM_ABOVE_NONZEROS else "simplex"
        highs.setOptionValue("solver", method)
        # Devex pricing and max-value scaling: on 1,000 × 30 the solve went 926 → 605 ms (medians of 3,
        # same objective); scaling options 0/3/5 and steepest edge were slower.
        highs.setOptionValue("simplex_dual_edge_weight_strategy", 1)
        highs.setOptionValue("simplex_scale_strategy", 4)
        highs.setOptionValue("time_limit", float(self.time_limit_s))
        highs.setOptionValue("threads", int(self.threads))
        self.name = f"highs-{method}"
        self._highs = highs
        self._lp = lp
        self._build_ms = (time.perf_counter() - started) * 1000.0

    def set_col_bounds(self, cols: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> None:
        if self._highs is None:
            raise SolverFailed("no model loaded")
        # A re-solve after a bound change is warm only with simplex.
        self._highs.setOptionValue("solver", "simplex")
        self._highs.changeColsBounds(
            int(cols.size), cols.astype(np.int32), lower.astype(np.float64), upper.astype(np.float64)
        )

    def basis(self) -> Basis | None:
        if self._highs is None:
            return None
        found = self._highs.getBasis()
        if not found.valid:
            return None
        return Basis(_statuses(found.col_status), _statuses(found.row_status))

    def start_from(self, basis: Basis) -> bool:
        if self._highs is None or self._lp is None:
            raise SolverFailed("no model loaded")
        if basis.columns.size != self._lp.columns or basis.rows.size != self._lp.matrix.shape[0]:
            return False
        start = highspy.HighsBasis()
        start.col_status = [_STATUS[k] for k in basis.columns.tolist()]
        start.row_status = [_STATUS[k] for k in basis.rows.tolist()]
        start.valid = True
        # Only simplex starts from a basis.
        self._highs.setOptionValue("solver", "simplex")
        if self._highs.setBasis(start) == highspy.HighsStatus.kError:
            return False
        self.name = "highs-simplex-warm"
        return True

    def solve(self) -> Solution:
        if self._highs is None or self._lp is None:
            raise SolverFailed("no model loaded")
        started = time.perf_counter()
        try:
            self._highs.run()
        except Exception as exc:  # highspy raises plain RuntimeError subclasses
            raise SolverFailed(f"HiGHS failed: {exc}") from exc
        solve_ms = (time.perf_counter() - started) * 1000.0
        status = self._highs.getModelStatus()
        optimal = status == highspy.HighsModelStatus.kOptimal
        if status == highspy.HighsModelStatus.kInfeasible:
            raise ModelInfeasible("HiGHS: infeasible")
        if not optimal and status != highspy.HighsModelStatus.kTimeLimit:
            raise SolverFailed(f"HiGHS: {self._highs.modelStatusToString(status)}")
        solution = self._highs.getSolution()
        if not solution.value_valid:
            raise SolverFailed(f"HiGHS returned no solution ({self._highs.modelStatusToString(status)})")
        x = np.asarray(solution.col_value, dtype=np.float64)
        activity = np.asarray(solution.row_value, dtype=np.float64)
        info = self._highs.getInfo()
        build_ms, self._build_ms = self._build_ms, 0.0
        return Solution(x, activity, float(info.objective_function_value), optimal, self.name, solve_ms, build_ms,
                        int(info.simplex_iteration_count))


def _statuses(values: list[Any]) -> NDArray[np.int8]:
    return np.fromiter((v.value for v in values), dtype=np.int8, count=len(values))


_STATUS: list[Any] = [highspy.HighsBasisStatus(k) for k in range(5)] if HAVE_HIGHSPY else []


class PulpSolver:
    """The same LP built as a PuLP problem (row by row, each row in one expression)."""

    def __init__(self, backend: str = "highs", time_limit_s: float = 10.0) -> None:
        self.backend = backend
        self.time_limit_s = time_limit_s
        self.name = f"pulp-{backend}"
        self._problem: Any = None
        self._vars: list[Any] = []
        self._lp: LinearProgram | None = None
        self._build_ms = 0.0

    def load(self, lp: LinearProgram) -> None:
        import pulp

        started = time.perf_counter()
        problem = pulp.LpProblem("depot", pulp.LpMinimize)
        variables = [
            problem.add_variable(
                f"x{j}",
                lowBound=None if not np.isfinite(lo) else float(lo),
                upBound=None if not np.isfinite(hi) else float(hi),
            )
            for j, (lo, hi) in enumerate(zip(lp.col_lb, lp.col_ub, strict=True))
        ]
        nz = np.nonzero(lp.cost)[0]
        problem.setObjective(pulp.LpAffineExpression([(variables[j], float(lp.cost[j])) for j in nz]))
        csr = lp.matrix
        for r in range(csr.shape[0]):
            start, end = csr.indptr[r], csr.indptr[r + 1]
            expr = pulp.LpAffineExpression(
                [(variables[int(c)], float(v)) for c, v in zip(csr.indices[start:end], csr.data[start:end], strict=True)]
            )
            lo, hi = lp.row_lb[r], lp.row_ub[r]
            if np.isfinite(lo) and np.isfinite(hi) and lo == hi:
                problem.addConstraint(pulp.LpConstraint(expr, pulp.LpConstraintEQ, f"r{r}", float(hi)))
                continue
            if np.isfinite(hi):
                problem.addConstraint(pulp.LpConstraint(expr, pulp.LpConstraintLE, f"r{r}u", float(hi)))
            if np.isfinite(lo):
                problem.addConstraint(pulp.LpConstraint(expr, pulp.LpConstraintGE, f"r{r}l", float(lo)))
        self._problem = problem
        self._vars = variables
        self._lp = lp
        self._build_ms = (time.perf_counter() - started) * 1000.0

    def set_col_bounds(self, cols: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> None:
        for j, lo, hi in zip(cols, lower, upper, strict=True):
            var = self._vars[int(j)]
            var.lowBound = float(lo) if np.isfinite(lo) else None
            var.upBound = float(hi) if np.isfinite(hi) else None

    def basis(self) -> Basis | None:
        return None  # PuLP does not hand the basis back

    def start_from(self, basis: Basis) -> bool:
        return False

    def _pulp_solver(self) -> Any:
        import pulp

        if self.backend == "highs":
            if not HAVE_HIGHSPY:
                raise SolverFailed("highspy is not installed")
            return pulp.HiGHS(msg=False, timeLimit=self.time_limit_s)
        coin = pulp.COIN_CMD(msg=False, timeLimit=self.time_limit_s)
        if coin.available():
            return coin
        # PuLP 3.x still bundles CBC behind PULP_CBC_CMD, deprecated in favour of an installed CBC.
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return pulp.PULP_CBC_CMD(msg=False, timeLimit=self.time_limit_s)

    def solve(self) -> Solution:
        import pulp

        if self._problem is None or self._lp is None:
            raise SolverFailed("no model loaded")
        started = time.perf_counter()
        try:
            if self.backend == "highs" and not _BANNER_SHOWN:
                with _without_banner():
                    status = self._problem.solve(self._pulp_solver())
            else:
                status = self._problem.solve(self._pulp_solver())
        except pulp.PulpError as exc:
            raise SolverFailed(f"PuLP/{self.backend} failed: {exc}") from exc
        solve_ms = (time.perf_counter() - started) * 1000.0
        if pulp.LpStatus[status] == "Infeasible":
            raise ModelInfeasible(f"PuLP/{self.backend}: infeasible")
        if pulp.LpStatus[status] != "Optimal":
            raise SolverFailed(f"PuLP/{self.backend}: {pulp.LpStatus[status]}")
        x = np.array([v.varValue if v.varValue is not None else 0.0 for v in self._vars], dtype=np.float64)
        activity = self._lp.matrix @ x
        objective = float(self._lp.cost @ x + self._lp.objective_offset)
        build_ms, self._build_ms = self._build_ms, 0.0
        return Solution(x, activity, objective, True, self.name, solve_ms, build_ms)


def make_solver(name: str, time_limit_s: float = 10.0) -> LpSolver:
    """``auto`` is HiGHS fed directly when highspy is present, else CBC through PuLP."""
    if name == "auto":
        return HighsSolver(time_limit_s) if HAVE_HIGHSPY else PulpSolver("cbc", time_limit_s)
    if name == "highs":
        return HighsSolver(time_limit_s)
    if name == "pulp-highs":
        return PulpSolver("highs", time_limit_s)
    if name == "pulp-cbc":
        return PulpSolver("cbc", time_limit_s)
    raise SolverFailed(f"unknown solver '{name}' (auto, highs, pulp-highs, pulp-cbc)")
