"""The one compiled model of a site's circuit tree, and the one rule for where a load's current may land.

Every user of circuit limits (the LP rows, the independent plan checker, the fail-safe shares, the benchmark's
limit accounting, the dashboard) takes the topology and the phase rule from here, so "which site phases does this
charger load, and how hard" is written once (docs/safety-phases.md explains the rule and its cost).

The phase rule is worst case. A load of P kW is described by the site phases it may put current on and the
fewest phases its power may be spread over (``spread``): it may put up to P·1000/(V·spread) A on *each* of those
phases. That covers every vehicle wiring at once: a W-limited AC charger whose vehicle's phases are unknown may put
its whole power on any one of its phases (``spread`` 1 on every phase), whichever phase an independent installer or
vehicle chose, not only the IEC 61851 "first charger phase".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from optimizer.site_model import ALL_PHASES, Charger, Circuit, Phase, RateUnit, Site


@dataclass(frozen=True, slots=True)
class PhaseLoad:
    """Where a load's current may land: up to ``power·1000/(V·spread)`` A on each of ``site_phases``."""

    site_phases: tuple[Phase, ...]
    spread: int

    def current_a_per_kw(self, voltage_v: float) -> float:
        return 1000.0 / (voltage_v * self.spread)

    def current_a(self, phase: Phase, power_kw: float, voltage_v: float) -> float:
        """The most current (A) ``power_kw`` may put on site ``phase``."""
        return power_kw * self.current_a_per_kw(voltage_v) if phase in self.site_phases else 0.0


# A per-phase current reading teaches which phases a vehicle draws on only while it clearly charges (live state
# and the benchmark's plant alike).
PHASE_LEARN_MIN_A = 2.0


def wired_phases(charger: Charger) -> tuple[Phase, ...]:
    """The site phases a charger is wired to (a DC cabinet's AC input: its whole rotation)."""
    return charger.phase_rotation if charger.dc else charger.phase_rotation[: charger.phases]


def phase_load(charger: Charger, *, unit: RateUnit | None = None, vehicle_phases: int | None = None,
               known_phases: Sequence[Phase] | None = None) -> PhaseLoad:
    """THE rule: the worst a load on ``charger`` may put on one site phase.

    - DC: the rectifier draws balanced from every wired phase (the power is limited in kW).
    - ``known_phases``: the site phases the vehicle was measured drawing on: its power spreads over them.
    - ``vehicle_phases`` (a count, e.g. from ISO 15118 or a session): that many phases, but which ones is unknown,
      so any wired phase may carry power/count.
    - otherwise, limited in W (``unit`` WATTS): a 1-phase vehicle may take all of it on any wired phase.
    - otherwise (limited in A, or unknown unit: dispatch sends A wherever the charger takes A): the command is
      a current per phase, so no phase carries more than power/(V·wired phases) of the planned power.
    """
    wired = wired_phases(charger)
    if charger.dc or not wired:
        return PhaseLoad(wired, max(1, len(wired)))
    if known_phases:
        known = tuple(p for p in wired if p in set(known_phases))
        if known:
            return PhaseLoad(known, len(known))
    if vehicle_phases is not None and vehicle_phases >= 1:
        return PhaseLoad(wired, min(vehicle_phases, len(wired)))
    if unit is RateUnit.WATTS:
        return PhaseLoad(wired, 1)
    return PhaseLoad(wired, len(wired))


@dataclass(frozen=True, slots=True)
class CircuitModel:
    """A site's circuit tree compiled once: the chargers below each circuit and each charger's path to the root."""

    voltage_v: float
    circuits: tuple[Circuit, ...]
    below: dict[str, frozenset[str]]  # circuit id -> charger ids in it or in a circuit under it
    paths: dict[str, tuple[str, ...]]  # charger id -> circuit ids from its own circuit to the root

    def path(self, charger_id: str) -> tuple[str, ...]:
        return self.paths.get(charger_id, ())


def compile_circuits(site: Site) -> CircuitModel:
    """The topology of ``site`` (the loader has rejected cycles and dangling parents; a parent that is missing
    anyway ends the path rather than looping)."""
    by_id = {c.id: c for c in site.circuits}
    children: dict[str, list[str]] = {c.id: [] for c in site.circuits}
    for c in site.circuits:
        if c.parent is not None and c.parent in children:
            children[c.parent].append(c.id)
    below: dict[str, frozenset[str]] = {}

    def collect(cid: str, seen: frozenset[str]) -> frozenset[str]:
        if cid not in below:
            found = set(by_id[cid].chargers)
            for child in children[cid]:
                if child not in seen:
                    found |= collect(child, seen | {child})
            below[cid] = frozenset(found)
        return below[cid]

    for c in site.circuits:
        collect(c.id, frozenset({c.id}))
    paths: dict[str, tuple[str, ...]] = {}
    for c in site.circuits:
        for charger_id in c.chargers:
            path: list[str] = []
            node: Circuit | None = c
            while node is not None and node.id not in path:
                path.append(node.id)
                node = by_id.get(node.parent) if node.parent is not None else None
            paths.setdefault(charger_id, tuple(path))
    return CircuitModel(site.voltage_v, site.circuits, below, paths)


@dataclass(frozen=True, slots=True)
class LimitRow:
    """One limit: ``circuit_phase_limit[c,Lx]`` in A or ``circuit_kw_limit[c]`` in kW."""

    name: str
    circuit_id: str
    phase: Phase | None  # None: a kW row
    limit: float

    @property
    def unit(self) -> str:
        return "kW" if self.phase is None else "A"


@dataclass(frozen=True, slots=True)
class LimitMatrix:
    """``coef @ power_kw`` is each row's load (A or kW) for the loads' power; ``limit`` the row's limit."""

    rows: tuple[LimitRow, ...]
    coef: sp.csr_matrix
    limit: NDArray[np.float64]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.rows)


def limit_matrix(model: CircuitModel, loads: Sequence[tuple[str, PhaseLoad]]) -> LimitMatrix:
    """Rows for every circuit limit; column j is ``loads[j]`` = (charger id, where its current may land)."""
    by_charger: dict[str, list[int]] = {}
    for index, (charger_id, _) in enumerate(loads):
        by_charger.setdefault(charger_id, []).append(index)
    rows: list[LimitRow] = []
    r_idx: list[int] = []
    c_idx: list[int] = []
    vals: list[float] = []
    for circuit in model.circuits:
        members = [i for cid in sorted(model.below.get(circuit.id, frozenset())) for i in by_charger.get(cid, [])]
        if circuit.max_current_a is not None:
            for phase in ALL_PHASES:
                row = len(rows)
                rows.append(LimitRow(f"circuit_phase_limit[{circuit.id},{phase}]", circuit.id, phase,
                                     circuit.max_current_a))
                for i in members:
                    load = loads[i][1]
                    if phase in load.site_phases:
                        r_idx.append(row)
                        c_idx.append(i)
                        vals.append(load.current_a_per_kw(model.voltage_v))
        if circuit.max_kw is not None:
            row = len(rows)
            rows.append(LimitRow(f"circuit_kw_limit[{circuit.id}]", circuit.id, None, circuit.max_kw))
            for i in members:
                r_idx.append(row)
                c_idx.append(i)
                vals.append(1.0)
    coef = sp.csr_matrix((vals, (r_idx, c_idx)), shape=(len(rows), len(loads)), dtype=np.float64)
    return LimitMatrix(tuple(rows), coef, np.array([r.limit for r in rows], dtype=np.float64))
