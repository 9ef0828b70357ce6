"""The physical side of an emulated charger: per connector the plugged-in vehicle, its battery, the
energy register and what the charger offers. Version-neutral and free of I/O.

A vehicle draws ``min(offered, acceptance)`` where acceptance comes from ``optimizer.battery.Battery``
(taper above the knee, heating, stop at the vehicle's own target). An AC charger cannot hold a current
below its minimum (IEC 61851: 6 A), so an offer below it means 0, not a trickle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from optimizer.battery import Battery, BatteryState
from optimizer.domain import Charger, RateUnit

MAX_STEP_S = 30.0  # the limit is re-evaluated at least this often (emulated seconds) inside an advance


@dataclass(frozen=True, slots=True)
class Quirks:
    """Charger behaviours the controller must cope with (docs/operations.md, "What a charger receives")."""

    rate_units: frozenset[RateUnit] = frozenset({RateUnit.AMPS, RateUnit.WATTS})
    rejects_tx_profile: bool = False
    ignores_limit: bool = False  # accepts profiles, then draws its hardware maximum anyway
    silent: bool = False  # never answers a call from the CSMS
    reports_soc: bool = True  # sends the vehicle's SoC measurand (AC wallboxes usually cannot)

    @staticmethod
    def only_amps() -> Quirks:
        return Quirks(rate_units=frozenset({RateUnit.AMPS}))

    @staticmethod
    def only_watts() -> Quirks:
        return Quirks(rate_units=frozenset({RateUnit.WATTS}))


@dataclass(frozen=True, slots=True)
class EVSpec:
    """A vehicle that plugs in: its battery model and state at plug-in."""

    id_tag: str
    battery: Battery
    soc: float  # 0..1 at plug-in
    temp_c: float = 20.0
    phases: int = 3  # AC phases the on-board charger uses
    target_soc: float = 1.0  # the vehicle's own charge limit
    # Whether the charger can pass this vehicle's SoC on (ISO 15118 / DC); None: the charger's quirk decides.
    # Per vehicle because one AC charger sees both kinds (the benchmark's scenarios set it per session).
    reports_soc: bool | None = None


# (per-phase current limit or None for none, phases in use) at an emulated instant
LimitFn = Callable[[datetime], tuple[float | None, int]]


@dataclass(slots=True)
class ConnectorPlant:
    charger: Charger
    connector_id: int
    updated_at: datetime
    ambient_c: float = 20.0
    ev: EVSpec | None = None
    battery: BatteryState | None = None
    energy_wh: float = 0.0  # the meter register, monotonic over sessions
    power_kw: float = 0.0  # average over the last step
    offered_a: float = 0.0  # per-phase current the charger offers (its composite limit, capped by hardware)
    offered_kw: float = 0.0
    phases_used: int = 3
    steps: int = 0
    max_excess_kw: float = 0.0  # the most the vehicle ever drew above the offer (0 unless a quirk)
    session_energy_wh: float = field(default=0.0)

    @property
    def plugged(self) -> bool:
        return self.ev is not None

    @property
    def soc(self) -> float | None:
        return self.battery.soc if self.battery is not None else None

    @property
    def temp_c(self) -> float | None:
        return self.battery.temp_c if self.battery is not None else None

    @property
    def current_a(self) -> float:
        """Per-phase current of the last step."""
        if self.power_kw <= 0:
            return 0.0
        return self.power_kw * 1000.0 / (self.charger.voltage_v * self.phases_used)

    def available_phases(self) -> int:
        if self.charger.dc:
            return 3  # DC: A limits are read as an AC-equivalent current over 3 phases
        ev_phases = self.ev.phases if self.ev is not None else 3
        return max(1, min(self.charger.phases, ev_phases))

    def plug(self, ev: EVSpec, at: datetime) -> None:
        self.ev = ev
        self.battery = BatteryState(soc=ev.soc, temp_c=ev.temp_c)
        self.updated_at = at
        self.session_energy_wh = 0.0
        self.phases_used = self.available_phases()

    def unplug(self, at: datetime) -> None:
        self.ev = None
        self.battery = None
        self.power_kw = 0.0
        self.updated_at = at

    def advance(self, to: datetime, limit: LimitFn, *, ignores_limit: bool = False) -> None:
        """Integrate the physics up to ``to``, re-reading the limit at least every MAX_STEP_S."""
        while self.updated_at < to:
            step_s = min(MAX_STEP_S, (to - self.updated_at).total_seconds())
            if step_s <= 1e-6:
                self.updated_at = to
                break
            self._step(step_s, limit(self.updated_at), ignores_limit)

    def _step(self, step_s: float, limit: tuple[float | None, int], ignores_limit: bool) -> None:
        limit_a, phases = limit
        charger = self.charger
        volts_phases_kw = charger.voltage_v * phases / 1000.0
        # A DC charger has no current limit in the site file (max_current_a = inf): its power bounds it, and an
        # infinite Current.Offered would not even be valid JSON on the wire.
        hardware_a = min(charger.max_current_a, charger.max_power_kw / volts_phases_kw)
        self.offered_a = hardware_a if limit_a is None else max(0.0, min(limit_a, hardware_a))
        self.phases_used = phases
        self.offered_kw = min(self.offered_a * volts_phases_kw, charger.max_power_kw)
        self.updated_at += timedelta(seconds=step_s)
        self.steps += 1
        if self.ev is None or self.battery is None:
            self.power_kw = 0.0
            return
        draw_a = hardware_a if ignores_limit else self.offered_a
        if not charger.dc and draw_a < charger.min_current_a:
            draw_a = 0.0
        cap_kw = min(draw_a * volts_phases_kw, charger.max_power_kw)
        duration_h = step_s / 3600.0
        self.battery, drawn_kwh = self.ev.battery.charge(
            self.battery, cap_kw, duration_h, self.ambient_c, target_soc=self.ev.target_soc, substeps=4
        )
        self.power_kw = drawn_kwh / duration_h
        self.energy_wh += drawn_kwh * 1000.0
        self.session_energy_wh += drawn_kwh * 1000.0
        self.max_excess_kw = max(self.max_excess_kw, self.power_kw - self.offered_kw)
