"""What an independent meter on every circuit of the site would read from the emulated plant: the current on each
site phase and the power through each circuit, and which limits that breaks.

The plant's own physics decide where current flows: a vehicle on ``k`` phases draws on its charger's first ``k``
phases (IEC 61851 wiring), each mapped to a site phase by the charger's rotation; a DC charger draws balanced
over its rotation. Nothing here asks the controller what it planned.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from csms_adapter.emulator.station import EmulatedCharger
from optimizer.circuits import compile_circuits, wired_phases
from optimizer.domain import ALL_PHASES, Phase, Site


@dataclass(frozen=True, slots=True)
class CircuitReading:
    circuit_id: str
    current_a: dict[Phase, float]
    power_kw: float


@dataclass(frozen=True, slots=True)
class LimitBreach:
    what: str  # e.g. "sub L1" or "site"
    value: float
    limit: float
    unit: str

    def __str__(self) -> str:
        return f"{self.what}: {self.value:.2f} {self.unit} > {self.limit:.2f} {self.unit}"


def charger_phase_currents(charger: EmulatedCharger) -> dict[Phase, float]:
    """The current (A) the charger draws on each site phase now (physics advanced by the caller)."""
    out = dict.fromkeys(ALL_PHASES, 0.0)
    wired = wired_phases(charger.charger)
    for rt in charger.connectors.values():
        plant = rt.plant
        if plant.power_kw <= 0:
            continue
        used = wired if charger.charger.dc else wired[: max(1, min(plant.phases_used, len(wired)))]
        per_phase = plant.power_kw * 1000.0 / (charger.charger.voltage_v * len(used))
        for phase in used:
            out[phase] += per_phase
    return out


def read_circuits(site: Site, chargers: Iterable[EmulatedCharger]) -> tuple[list[CircuitReading], float]:
    """Every circuit's per-phase current and power, and the site's EV power (kW), advancing the physics to now."""
    by_id = {c.identity: c for c in chargers}
    currents: dict[str, dict[Phase, float]] = {}
    powers: dict[str, float] = {}
    for cid, charger in by_id.items():
        charger.advance()
        currents[cid] = charger_phase_currents(charger)
        powers[cid] = sum(rt.plant.power_kw for rt in charger.connectors.values())
    model = compile_circuits(site)
    out = []
    for circuit in site.circuits:
        below = [cid for cid in model.below.get(circuit.id, frozenset()) if cid in by_id]
        out.append(CircuitReading(circuit.id, {p: sum(currents[cid][p] for cid in below) for p in ALL_PHASES},
                                  sum(powers[cid] for cid in below)))
    return out, sum(powers.values())


def breaches(site: Site, chargers: Iterable[EmulatedCharger], *, import_limit_kw: float,
             tolerance_a: float = 0.05) -> list[LimitBreach]:
    """Every circuit phase current and kW limit, and ``import_limit_kw`` for the EVs, broken right now."""
    readings, site_kw = read_circuits(site, chargers)
    limits = {c.id: c for c in site.circuits}
    out: list[LimitBreach] = []
    for reading in readings:
        circuit = limits[reading.circuit_id]
        if circuit.max_current_a is not None:
            for phase, amps in reading.current_a.items():
                if amps > circuit.max_current_a + tolerance_a:
                    out.append(LimitBreach(f"{circuit.id} {phase}", amps, circuit.max_current_a, "A"))
        if circuit.max_kw is not None and reading.power_kw > circuit.max_kw + 0.01:
            out.append(LimitBreach(circuit.id, reading.power_kw, circuit.max_kw, "kW"))
    if site_kw > import_limit_kw + 0.01:
        out.append(LimitBreach("site", site_kw, import_limit_kw, "kW"))
    return out
