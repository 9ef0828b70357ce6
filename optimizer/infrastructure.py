"""The LP's limit compiler: one row per (circuit, phase) current limit and per circuit kW limit,
``coef @ power_kw <= rhs``, used by every strategy. Topology and the phase rule come from ``optimizer.circuits``
(the plan checker uses those too, but never this module)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from optimizer.circuits import PhaseLoad, compile_circuits, limit_matrix, phase_load, wired_phases
from optimizer.domain import PlugInSlot, Site, UncontrolledLoad
from optimizer.needs import ResolvedSession


@dataclass(frozen=True, slots=True)
class CircuitLimits:
    """``coef`` (rows × sessions, A or kW per kW of session power) and ``rhs`` (A or kW of headroom
    left after uncontrolled loads; may be negative when those already overload a circuit)."""

    names: tuple[str, ...]
    coef: sp.csr_matrix
    rhs: NDArray[np.float64]
    limit: NDArray[np.float64]

    @property
    def rows(self) -> int:
        return len(self.names)


@dataclass(frozen=True, slots=True)
class LoadColumn:
    """One controllable load in the rows: its charger (which circuits it is below) and where its current may
    land (``optimizer.circuits.phase_load``)."""

    charger_id: str
    load: PhaseLoad


def session_columns(site: Site, sessions: list[ResolvedSession]) -> list[LoadColumn]:
    del site
    return [LoadColumn(s.charger.id, s.phase_load) for s in sessions]


def plug_in_columns(site: Site, slots: tuple[PlugInSlot, ...]) -> list[LoadColumn]:
    """A plug-in allowance may land on any of its charger's phases, on as few as ``slot.phases`` of them."""
    out = []
    for slot in slots:
        charger = site.charger(slot.charger_id)
        fewest = max(1, min(slot.phases, len(wired_phases(charger)) or 1))
        out.append(LoadColumn(charger.id, phase_load(charger, vehicle_phases=fewest)))
    return out


def uncontrolled_columns(site: Site, uncontrolled: tuple[UncontrolledLoad, ...]) -> list[LoadColumn]:
    """An uncontrolled load may land on any of its charger's phases, on as few as ``load.phases`` of them."""
    return [LoadColumn(u.charger_id, phase_load(site.charger(u.charger_id), vehicle_phases=max(1, u.phases)))
            for u in uncontrolled if site.has_charger(u.charger_id)]


def compile_limits(
    site: Site, sessions: list[ResolvedSession], uncontrolled: tuple[UncontrolledLoad, ...] = ()
) -> CircuitLimits:
    return compile_columns(site, session_columns(site, sessions), uncontrolled)


def compile_columns(
    site: Site, columns: list[LoadColumn], uncontrolled: tuple[UncontrolledLoad, ...] = ()
) -> CircuitLimits:
    model = compile_circuits(site)
    matrix = limit_matrix(model, [(c.charger_id, c.load) for c in columns])
    rhs = matrix.limit.copy()
    fixed = [u for u in uncontrolled if site.has_charger(u.charger_id)]
    if fixed:
        used = limit_matrix(model, [(c.charger_id, c.load) for c in uncontrolled_columns(site, tuple(fixed))])
        rhs -= used.coef @ np.array([u.power_kw for u in fixed], dtype=np.float64)
    return CircuitLimits(matrix.names, matrix.coef, rhs, matrix.limit.copy())
