"""Meter integrity: is a sampled value physically believable? Pure: state per connector, no I/O, no clock.

Checks (docs/monitoring.md, "Meter integrity"), each a ``code`` of a flagged sample:

- ``out_of_range``: NaN/inf, a negative energy register, power or current far above what the charger can deliver,
  a temperature no charger survives;
- ``register_backwards`` / ``register_reset``: the energy register went down (to near zero: a reset);
- ``impossible_jump``: the register rose by more than the charger's maximum power could deliver in the elapsed
  time (with a margin for meter rounding and clock jitter);
- ``duplicated``: a second, different register value with the same timestamp (a replay with the same value is
  just a duplicate and passes silently as ``repeat``);
- ``frozen``: the register stands still while the connector reports real power for ``frozen_after_s``.

A flagged sample stays in the raw store; the caller keeps it away from the live state (SoC estimation, the LP).
After a register reset the meter is believed again once ``rebase_after`` flagged values in a row agree with each
other (a replaced meter or a firmware that restarted its register counts from its new base).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from csms_adapter.protocol import events as ev

OUT_OF_RANGE = "out_of_range"
REGISTER_BACKWARDS = "register_backwards"
REGISTER_RESET = "register_reset"
IMPOSSIBLE_JUMP = "impossible_jump"
DUPLICATED = "duplicated"
FROZEN = "frozen"

MAX_REGISTER_KWH = 10_000_000.0  # 10 GWh: beyond any charger's lifetime energy
TEMPERATURE_RANGE_C = (-60.0, 150.0)
OVER_NAMEPLATE = 1.5  # power/current up to 1.5 × the nameplate is noise or a bad nameplate, beyond is a bad value
JUMP_MARGIN = 1.25
JUMP_SLACK_KWH = 0.05  # meter resolution and a few seconds of clock jitter
BACKWARDS_SLACK_KWH = 0.001
RESET_BELOW_KWH = 1.0
FROZEN_POWER_KW = 1.0


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    code: str | None = None  # why it was flagged (None when ok)
    detail: str = ""
    recovered: bool = False  # ok, and the connector's earlier anomaly is over


OK = Verdict(True)


@dataclass(frozen=True, slots=True)
class MeterLimits:
    """What a connector can physically do: its nameplate power (kW) and current per phase (A)."""

    max_power_kw: float
    max_current_a: float


@dataclass(slots=True)
class _Register:
    value_kwh: float
    at: datetime
    changed_at: datetime
    suspects: list[tuple[float, datetime]] = field(default_factory=list)
    anomalous: bool = False
    power_kw: float = 0.0
    power_at: datetime | None = None
    frozen: bool = False


class MeterIntegrity:
    """Checks samples in arrival order; one register state per (charger, connector)."""

    def __init__(self, limits_of: Callable[[str], MeterLimits | None], *, frozen_after_s: float = 300.0,
                 rebase_after: int = 3) -> None:
        self._limits_of = limits_of
        self.frozen_after_s = frozen_after_s
        self.rebase_after = rebase_after
        self._registers: dict[tuple[str, int], _Register] = {}

    def check(self, sample: ev.MeterSample) -> Verdict:
        value = sample.value
        if not math.isfinite(value):
            return Verdict(False, OUT_OF_RANGE, f"{sample.measurand} is {value}")
        limits = self._limits_of(sample.charger_id)
        match sample.quantity:
            case ev.Quantity.ENERGY_KWH if sample.phase is None and sample.location != "Inlet":
                return self._register(sample, limits)
            case ev.Quantity.ENERGY_KWH:
                return OK if value >= 0 else Verdict(False, OUT_OF_RANGE, f"negative register {value:g} kWh")
            case ev.Quantity.POWER_KW if limits is not None and sample.location != "Inlet":
                if abs(value) > limits.max_power_kw * OVER_NAMEPLATE + 1.0:
                    return Verdict(False, OUT_OF_RANGE, f"{value:g} kW on a {limits.max_power_kw:g} kW charger")
                if sample.phase is None:
                    self._note_power(sample)
                return OK
            case ev.Quantity.CURRENT_A if limits is not None and sample.location != "Inlet":
                if abs(value) > limits.max_current_a * OVER_NAMEPLATE + 2.0:
                    return Verdict(False, OUT_OF_RANGE, f"{value:g} A on a {limits.max_current_a:g} A charger")
                return OK
            case ev.Quantity.TEMPERATURE_C:
                low, high = TEMPERATURE_RANGE_C
                return OK if low <= value <= high else Verdict(False, OUT_OF_RANGE, f"{value:g} °C")
            case _:
                return OK

    def forget(self, charger_id: str, connector_id: int) -> None:
        self._registers.pop((charger_id, connector_id), None)

    # ------------------------------------------------------------------------------ the register

    def _note_power(self, sample: ev.MeterSample) -> None:
        state = self._registers.get((sample.charger_id, sample.connector_id))
        if state is not None:
            state.power_kw = sample.value
            state.power_at = sample.time

    def _register(self, sample: ev.MeterSample, limits: MeterLimits | None) -> Verdict:
        value, at = sample.value, sample.time
        if value < 0 or value > MAX_REGISTER_KWH:
            return Verdict(False, OUT_OF_RANGE, f"register {value:g} kWh")
        key = (sample.charger_id, sample.connector_id)
        state = self._registers.get(key)
        if state is None:
            self._registers[key] = _Register(value, at, at)
            return OK
        problem = self._against(state.value_kwh, state.at, value, at, limits, sample.connector_id)
        if problem is None:
            return self._accept(state, value, at)
        if problem.code == "repeat":
            return OK
        jumped = problem.code in (REGISTER_BACKWARDS, REGISTER_RESET, IMPOSSIBLE_JUMP)
        if jumped and self._rebase(state, value, at, limits, sample.connector_id):
            return Verdict(True, recovered=True, detail=f"register believed again from {value:g} kWh")
        state.anomalous = True
        return problem

    def _accept(self, state: _Register, value: float, at: datetime) -> Verdict:
        was_anomalous = state.anomalous or state.frozen
        state.suspects.clear()
        state.anomalous = False
        if value > state.value_kwh + BACKWARDS_SLACK_KWH:
            state.changed_at = at
            state.frozen = False
        state.value_kwh, state.at = value, at
        powered = (state.power_at is not None and state.power_kw >= FROZEN_POWER_KW
                   and (at - state.power_at).total_seconds() <= self.frozen_after_s)
        standing_s = (at - state.changed_at).total_seconds()
        if powered and standing_s >= self.frozen_after_s:
            state.frozen = True
            return Verdict(False, FROZEN, f"register at {value:g} kWh for {standing_s:.0f} s while drawing "
                                          f"{state.power_kw:g} kW")
        if not powered:
            state.changed_at = at  # standing still without power is normal
        state.frozen = False
        return Verdict(True, recovered=was_anomalous)

    def _against(self, ref_kwh: float, ref_at: datetime, value: float, at: datetime,
                 limits: MeterLimits | None, connector_id: int) -> Verdict | None:
        if at == ref_at:
            if abs(value - ref_kwh) <= BACKWARDS_SLACK_KWH:
                return Verdict(False, "repeat")
            return Verdict(False, DUPLICATED, f"{value:g} and {ref_kwh:g} kWh both at {at.isoformat()}")
        if at < ref_at:
            return None  # a late (queued) sample: the live state ignores older values anyway
        if value < ref_kwh - BACKWARDS_SLACK_KWH:
            if value < RESET_BELOW_KWH:
                return Verdict(False, REGISTER_RESET, f"register fell from {ref_kwh:g} to {value:g} kWh")
            return Verdict(False, REGISTER_BACKWARDS, f"register fell from {ref_kwh:g} to {value:g} kWh")
        if limits is not None and connector_id > 0:  # connector 0 meters the whole charger: no one nameplate
            hours = (at - ref_at).total_seconds() / 3600.0
            possible = limits.max_power_kw * hours * JUMP_MARGIN + JUMP_SLACK_KWH
            if value - ref_kwh > possible:
                return Verdict(False, IMPOSSIBLE_JUMP, f"register rose {value - ref_kwh:g} kWh in "
                                                       f"{hours * 3600:.0f} s (at most {possible:.3g} possible)")
        return None

    def _rebase(self, state: _Register, value: float, at: datetime, limits: MeterLimits | None,
                connector_id: int) -> bool:
        """Remember a suspect value; once ``rebase_after`` of them agree, believe the new base. True then."""
        suspects = state.suspects
        if suspects:
            last_value, last_at = suspects[-1]
            if self._against(last_value, last_at, value, at, limits, connector_id) is not None:
                suspects.clear()
        suspects.append((value, at))
        if len(suspects) < self.rebase_after:
            return False
        suspects.clear()
        state.value_kwh, state.at, state.changed_at = value, at, at
        state.anomalous = False
        return True
