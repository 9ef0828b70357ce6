"""Tolerant normaliser of OCPP meter values (1.6 ``MeterValues``/``StopTransaction.transactionData`` and 2.0.1
``MeterValues``/``TransactionEvent.meterValue``) into ``MeterSample`` events.

Real chargers send non-conformant data (numeric 1.6 values, an object instead of a list, empty sampled values,
odd units), and the MeterValues routes are registered with schema validation off so that such a message is still
answered (a CallError makes the charger retry forever: docs/architecture.md, "OCPP rules the code follows").
So this module trusts nothing: each sampled value is parsed on its own; a bad one becomes a ``RejectedValue``
with a reason and the others are kept.
It never raises.

Phases: a phase-less value is the total (1.6 §7.43). When a charger sends only per-phase power or energy, one
total is synthesised from the line-to-neutral phases; per-phase values are kept with their ``phase`` so a
consumer that sums only ``phase is None`` samples never counts twice.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from csms_adapter.protocol.events import MeterSample, Quantity, RejectedValue, Source

DEFAULT_MEASURAND = "Energy.Active.Import.Register"
# Clock skew we forgive into the future; anything later is a broken charger clock.
MAX_FUTURE = timedelta(minutes=5)
# Queued transaction data after a long outage is still worth storing; older than this is garbage.
MAX_PAST = timedelta(days=30)

# measurand -> (quantity, default unit)
_MEASURANDS: dict[str, tuple[Quantity, str]] = {
    "Power.Active.Import": (Quantity.POWER_KW, "W"),
    "Power.Offered": (Quantity.POWER_OFFERED_KW, "W"),
    "Current.Import": (Quantity.CURRENT_A, "A"),
    "Current.Offered": (Quantity.CURRENT_OFFERED_A, "A"),
    "Energy.Active.Import.Register": (Quantity.ENERGY_KWH, "Wh"),
    "SoC": (Quantity.SOC, "Percent"),
    "Temperature": (Quantity.TEMPERATURE_C, "Celsius"),
    "Voltage": (Quantity.VOLTAGE_V, "V"),
}

# quantity -> unit -> scale to the normalised unit (temperatures are converted separately)
_SCALE: dict[Quantity, dict[str, float]] = {
    Quantity.POWER_KW: {"W": 1e-3, "kW": 1.0},
    Quantity.POWER_OFFERED_KW: {"W": 1e-3, "kW": 1.0},
    Quantity.CURRENT_A: {"A": 1.0},
    Quantity.CURRENT_OFFERED_A: {"A": 1.0},
    Quantity.ENERGY_KWH: {"Wh": 1e-3, "kWh": 1.0},
    Quantity.SOC: {"Percent": 0.01, "%": 0.01},
    Quantity.VOLTAGE_V: {"V": 1.0},
}

# Inclusive plausible ranges in normalised units; outside is a broken value, not a measurement.
_RANGE: dict[Quantity, tuple[float, float]] = {
    Quantity.POWER_KW: (0.0, 2000.0),
    Quantity.POWER_OFFERED_KW: (0.0, 2000.0),
    Quantity.CURRENT_A: (0.0, 2000.0),
    Quantity.CURRENT_OFFERED_A: (0.0, 2000.0),
    Quantity.ENERGY_KWH: (0.0, 1e9),
    Quantity.SOC: (0.0, 1.0),
    Quantity.TEMPERATURE_C: (-60.0, 150.0),
    Quantity.VOLTAGE_V: (0.0, 1500.0),
}

_ADDITIVE = {Quantity.POWER_KW, Quantity.POWER_OFFERED_KW, Quantity.ENERGY_KWH}
_LINE_TO_NEUTRAL = {"L1": "L1", "L2": "L2", "L3": "L3", "L1-N": "L1", "L2-N": "L2", "L3-N": "L3"}


@dataclass(frozen=True, slots=True)
class Normalised:
    samples: tuple[MeterSample, ...]
    rejected: tuple[RejectedValue, ...]


class _Rejection(Exception):
    """Internal: one sampled value is unusable (never escapes this module)."""


def parse_time(raw: object, now: datetime, max_future: timedelta = MAX_FUTURE) -> datetime:
    """An OCPP date-time as aware UTC. Naive times are taken as UTC. Raises _Rejection when unusable."""
    if not isinstance(raw, str) or not raw.strip():
        raise _Rejection(f"timestamp {raw!r} is not a date-time")
    try:
        when = datetime.fromisoformat(raw.strip())
    except ValueError as exc:
        raise _Rejection(f"timestamp {raw!r} is not a date-time") from exc
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    if when > now + max_future:
        raise _Rejection(f"timestamp {raw} is in the future (charger clock?)")
    if when < now - MAX_PAST:
        raise _Rejection(f"timestamp {raw} is more than {MAX_PAST.days} days old")
    return when


def safe_time(raw: object, now: datetime) -> datetime:
    """Like ``parse_time`` but falls back to ``now`` (for event timestamps where a bad value must not lose the
    event itself, e.g. a StartTransaction)."""
    try:
        return parse_time(raw, now)
    except _Rejection:
        return now


def parse_departure(raw: object, now: datetime) -> datetime | None:
    """A departure time (in the future by nature, up to a week); None when absent or unusable."""
    try:
        return parse_time(raw, now, max_future=timedelta(days=7))
    except _Rejection:
        return None


def _number(raw: object) -> float:
    if isinstance(raw, bool):
        raise _Rejection(f"value {raw!r} is not a number")
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw.strip().replace(",", "."))  # some firmwares localise the decimal separator
        except ValueError as exc:
            raise _Rejection(f"value {raw!r} is not a number") from exc
    else:
        raise _Rejection(f"value {raw!r} is not a number")
    if not math.isfinite(value):
        raise _Rejection(f"value {raw!r} is not finite")
    return value


def _unit_and_multiplier(sv: Mapping[str, Any], default_unit: str) -> tuple[str, int]:
    uom = sv.get("unit_of_measure")
    if isinstance(uom, Mapping):  # 2.0.1: unitOfMeasure {unit, multiplier}
        unit = uom.get("unit", default_unit)
        multiplier = uom.get("multiplier", 0)
    else:
        unit = sv.get("unit", default_unit)
        multiplier = 0
    if not isinstance(unit, str) or not unit:
        unit = default_unit
    if isinstance(multiplier, bool) or not isinstance(multiplier, int) or not -9 <= multiplier <= 9:
        raise _Rejection(f"multiplier {multiplier!r} is not a small integer")
    return unit, multiplier


def _convert(quantity: Quantity, value: float, unit: str) -> float:
    if quantity is Quantity.TEMPERATURE_C:
        if unit in ("Celsius", "Celcius", "C", "degC"):
            return value
        if unit == "K":
            return value - 273.15
        if unit == "Fahrenheit":
            return (value - 32.0) * 5.0 / 9.0
        raise _Rejection(f"unit {unit!r} is not a temperature unit")
    scale = _SCALE[quantity].get(unit)
    if scale is None:
        # Wrong case is the commonest slip (e.g. "kwh", "w"); accept it, refuse anything else.
        folded = {k.lower(): v for k, v in _SCALE[quantity].items()}
        scale = folded.get(unit.lower())
    if scale is None:
        raise _Rejection(f"unit {unit!r} does not fit {quantity.value}")
    return value * scale


def _check_range(quantity: Quantity, value: float, raw: object) -> None:
    low, high = _RANGE[quantity]
    if value < low or value > high:
        if quantity is Quantity.POWER_KW and value < 0:
            raise _Rejection(f"negative import power {raw!r}")
        raise _Rejection(f"{quantity.value} {raw!r} is outside {low:g}..{high:g} (normalised)")


def _as_list(raw: object) -> list[Any]:
    """Chargers send an object where a list is due (lbbrhzn/ocpp#1144) or nothing at all."""
    if isinstance(raw, list):
        return raw
    if isinstance(raw, Mapping):
        return [raw]
    return []


def _vendor_temperatures(sv: Mapping[str, Any]) -> Iterable[float]:
    """EV battery temperature from 2.0.1 ``customData`` (no standard measurand exists): any numeric key whose
    name mentions temperature, in °C. Keys arrive snake_cased by the ocpp library."""
    custom = sv.get("custom_data")
    if not isinstance(custom, Mapping):
        return ()
    return [
        float(v)
        for k, v in custom.items()
        if "temperature" in str(k).lower() and isinstance(v, int | float) and not isinstance(v, bool)
    ]


def normalise_meter_values(
    charger_id: str,
    connector_id: int,
    meter_value: object,
    *,
    now: datetime,
    transaction_id: str | None = None,
) -> Normalised:
    """Turn ``meter_value`` (the snake_cased list of ``{timestamp, sampled_value: [...]}``) into samples and
    rejections. Never raises."""
    samples: list[MeterSample] = []
    rejected: list[RejectedValue] = []

    def reject(measurand: str, raw: object, reason: str, when: datetime) -> None:
        rejected.append(RejectedValue(charger_id, connector_id, measurand, repr(raw)[:80], reason, when))

    for group in _as_list(meter_value):
        if not isinstance(group, Mapping):
            reject("", group, "meter value is not an object", now)
            continue
        values = _as_list(group.get("sampled_value"))
        try:
            when = parse_time(group.get("timestamp"), now) if group.get("timestamp") is not None else now
        except _Rejection as exc:
            for sv in values or [None]:
                name = sv.get("measurand", DEFAULT_MEASURAND) if isinstance(sv, Mapping) else ""
                reject(str(name), group.get("timestamp"), str(exc), now)
            continue
        group_samples: list[MeterSample] = []
        for sv in values:
            if not isinstance(sv, Mapping):
                reject("", sv, "sampled value is not an object", when)
                continue
            group_samples.extend(_one_value(charger_id, connector_id, sv, when, transaction_id, reject))
        samples.extend(group_samples)
        samples.extend(_synthesised_totals(group_samples))
    return Normalised(tuple(samples), tuple(rejected))


def _one_value(
    charger_id: str,
    connector_id: int,
    sv: Mapping[str, Any],
    when: datetime,
    transaction_id: str | None,
    reject: Any,
) -> list[MeterSample]:
    measurand = sv.get("measurand") or DEFAULT_MEASURAND
    location = sv.get("location") or "Outlet"
    context = sv.get("context") or "Sample.Periodic"
    phase = sv.get("phase") or None
    out: list[MeterSample] = []
    for temp in _vendor_temperatures(sv):
        if _RANGE[Quantity.TEMPERATURE_C][0] <= temp <= _RANGE[Quantity.TEMPERATURE_C][1]:
            out.append(
                MeterSample(charger_id, connector_id, Quantity.TEMPERATURE_C, temp, "customData", when,
                            Source.VENDOR, None, "EV", str(context), transaction_id)
            )
        else:
            reject("customData", temp, f"temperature {temp!r} °C is implausible", when)
    known = _MEASURANDS.get(str(measurand))
    if known is None:
        return out  # a measurand we do not use (Frequency, reactive power, ...) is not an error
    quantity, default_unit = known
    if sv.get("format") == "SignedData":
        reject(str(measurand), sv.get("value"), "signed meter data is not decoded", when)
        return out
    raw = sv.get("value")
    try:
        unit, multiplier = _unit_and_multiplier(sv, default_unit)
        value = _convert(quantity, _number(raw) * 10.0**multiplier, unit)
        _check_range(quantity, value, raw)
    except _Rejection as exc:
        reject(str(measurand), raw, str(exc), when)
        return out
    source = Source.EV if quantity is Quantity.SOC or location == "EV" else Source.METER
    out.append(
        MeterSample(charger_id, connector_id, quantity, value, str(measurand), when, source,
                    str(phase) if phase else None, str(location), str(context), transaction_id)
    )
    return out


def _synthesised_totals(group: list[MeterSample]) -> list[MeterSample]:
    """A total for each additive quantity that came only per phase (summing L-N phases, never N or L-L)."""
    out: list[MeterSample] = []
    keys = {(s.quantity, s.location) for s in group if s.quantity in _ADDITIVE}
    for quantity, location in keys:
        same = [s for s in group if s.quantity is quantity and s.location == location]
        if any(s.phase is None for s in same):
            continue
        by_phase: dict[str, MeterSample] = {}
        for s in same:
            canonical = _LINE_TO_NEUTRAL.get(s.phase or "")
            if canonical is not None:
                by_phase.setdefault(canonical, s)  # L1 and L1-N are the same conductor: count once
        if not by_phase:
            continue
        first = next(iter(by_phase.values()))
        total = sum(s.value for s in by_phase.values())
        out.append(
            MeterSample(first.charger_id, first.connector_id, quantity, total, first.measurand, first.time,
                        first.source, None, location, first.context, first.transaction_id)
        )
    return out
