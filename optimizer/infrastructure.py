"""Circuits go in as a tree and come out as a matrix: one row per (circuit, phase) current limit and
per circuit kW limit, ``coef @ power_kw <= rhs``, used by every strategy and by the plan checker."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from optimizer.domain import ALL_PHASES, Phase, PlugInSlot, Site, UncontrolledLoad
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


def _subtree_chargers(site: Site) -> dict[str, set[str]]:
    children: dict[str, list[str]] = {c.id: [] for c in site.circuits}
    for c in site.circuits:
        if c.parent is not None and c.parent in children:
            children[c.parent].append(c.id)
    own = {c.id: set(c.chargers) for c in site.circuits}
    memo: dict[str, set[str]] = {}

    def collect(cid: str) -> set[str]:
        if cid not in memo:
            found = set(own[cid])
            for child in children[cid]:
                found |= collect(child)
            memo[cid] = found
        return memo[cid]

    return {c.id: collect(c.id) for c in site.circuits}


def phase_current_a_per_kw(voltage_v: float, phases: int) -> float:
    return 1000.0 / (voltage_v * phases)


@dataclass(frozen=True, slots=True)
class LoadColumn:
    """One controllable load in the rows: its charger (which circuits it is below), the site phases its current
    lands on, and the current per phase (A) per kW it draws."""

    charger_id: str
    site_phases: tuple[Phase, ...]
    current_a_per_kw: float


def session_columns(site: Site, sessions: list[ResolvedSession]) -> list[LoadColumn]:
    return [LoadColumn(s.charger.id, s.site_phases, phase_current_a_per_kw(site.voltage_v, len(s.site_phases)))
            for s in sessions]


def plug_in_columns(site: Site, slots: tuple[PlugInSlot, ...]) -> list[LoadColumn]:
    """A plug-in allowance may land on any of its charger's phases, on as few as ``slot.phases`` of them."""
    out = []
    for slot in slots:
        charger = site.charger(slot.charger_id)
        phases = charger.phase_rotation if charger.dc else charger.phase_rotation[: charger.phases]
        fewest = max(1, min(slot.phases, len(phases)))
        out.append(LoadColumn(charger.id, tuple(phases), phase_current_a_per_kw(site.voltage_v, fewest)))
    return out


def compile_limits(
    site: Site, sessions: list[ResolvedSession], uncontrolled: tuple[UncontrolledLoad, ...] = ()
) -> CircuitLimits:
    return compile_columns(site, session_columns(site, sessions), uncontrolled)


def compile_columns(
    site: Site, columns: list[LoadColumn], uncontrolled: tuple[UncontrolledLoad, ...] = ()
) -> CircuitLimits:
    below = _subtree_chargers(site)
    names: list[str] = []
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    rhs: list[float] = []
    limit: list[float] = []
    by_charger: dict[str, list[int]] = {}
    for index, column in enumerate(columns):
        by_charger.setdefault(column.charger_id, []).append(index)

    def load_current(load: UncontrolledLoad, phase: Phase) -> float:
        charger = site.charger(load.charger_id)
        phases = charger.phase_rotation if charger.dc else charger.phase_rotation[: max(1, min(load.phases, charger.phases))]
        if phase not in phases:
            return 0.0
        return load.power_kw * phase_current_a_per_kw(site.voltage_v, len(phases))

    for circuit in site.circuits:
        chargers = below[circuit.id]
        members = [i for cid in sorted(chargers) for i in by_charger.get(cid, [])]
        loads = [u for u in uncontrolled if u.charger_id in chargers]
        if circuit.max_current_a is not None:
            for phase in ALL_PHASES:
                row = len(names)
                names.append(f"circuit_phase_limit[{circuit.id},{phase}]")
                for i in members:
                    column = columns[i]
                    if phase in column.site_phases:
                        rows.append(row)
                        cols.append(i)
                        vals.append(column.current_a_per_kw)
                used = sum(load_current(u, phase) for u in loads)
                rhs.append(circuit.max_current_a - used)
                limit.append(circuit.max_current_a)
        if circuit.max_kw is not None:
            row = len(names)
            names.append(f"circuit_kw_limit[{circuit.id}]")
            for i in members:
                rows.append(row)
                cols.append(i)
                vals.append(1.0)
            rhs.append(circuit.max_kw - sum(u.power_kw for u in loads))
            limit.append(circuit.max_kw)
    coef = sp.csr_matrix((vals, (rows, cols)), shape=(len(names), len(columns)), dtype=np.float64)
    return CircuitLimits(tuple(names), coef, np.array(rhs, dtype=np.float64), np.array(limit, dtype=np.float64))
