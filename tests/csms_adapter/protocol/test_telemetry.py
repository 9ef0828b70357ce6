from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csms_adapter.protocol.events import Quantity, Source
from csms_adapter.protocol.ocpp201 import charging_needs_event
from csms_adapter.protocol.telemetry import normalise_meter_values

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TS = "2026-03-01T11:59:50Z"


def one(sv: dict[str, Any], ts: Any = TS) -> tuple[list[Any], list[Any]]:
    out = normalise_meter_values("cp", 1, [{"timestamp": ts, "sampled_value": [sv]}], now=NOW)
    return list(out.samples), list(out.rejected)


@pytest.mark.parametrize(
    ("sv", "quantity", "value"),
    [
        ({"value": "7400", "measurand": "Power.Active.Import", "unit": "W"}, Quantity.POWER_KW, 7.4),
        ({"value": "7.4", "measurand": "Power.Active.Import", "unit": "kW"}, Quantity.POWER_KW, 7.4),
        ({"value": 7400, "measurand": "Power.Active.Import", "unit": "W"}, Quantity.POWER_KW, 7.4),  # numeric 1.6
        ({"value": "12345"}, Quantity.ENERGY_KWH, 12.345),  # default measurand and unit Wh
        ({"value": "12.5", "measurand": "Energy.Active.Import.Register", "unit": "kWh"}, Quantity.ENERGY_KWH, 12.5),
        ({"value": "16.0", "measurand": "Current.Import", "unit": "A", "phase": "L2"}, Quantity.CURRENT_A, 16.0),
        ({"value": "55", "measurand": "SoC", "unit": "Percent"}, Quantity.SOC, 0.55),
        ({"value": "55", "measurand": "SoC"}, Quantity.SOC, 0.55),
        ({"value": "31.5", "measurand": "Temperature", "unit": "Celcius"}, Quantity.TEMPERATURE_C, 31.5),
        ({"value": "300.15", "measurand": "Temperature", "unit": "K"}, Quantity.TEMPERATURE_C, 27.0),
        ({"value": "7,4", "measurand": "Power.Active.Import", "unit": "kW"}, Quantity.POWER_KW, 7.4),
        ({"value": 11.0, "measurand": "Power.Active.Import", "unit_of_measure": {"unit": "W", "multiplier": 3}},
         Quantity.POWER_KW, 11.0),
        ({"value": 16, "measurand": "Current.Offered"}, Quantity.CURRENT_OFFERED_A, 16.0),
    ],
)
def test_values_are_normalised_to_si_units(sv: dict[str, Any], quantity: Quantity, value: float) -> None:
    samples, rejected = one(sv)
    assert rejected == []
    assert [s.quantity for s in samples] == [quantity]
    assert samples[0].value == pytest.approx(value)
    assert samples[0].time == datetime(2026, 3, 1, 11, 59, 50, tzinfo=UTC)


@pytest.mark.parametrize(
    ("sv", "reason_part"),
    [
        ({"value": "abc", "measurand": "Power.Active.Import"}, "not a number"),
        ({"value": "NaN", "measurand": "Power.Active.Import"}, "not finite"),
        ({"value": "-500", "measurand": "Power.Active.Import", "unit": "W"}, "negative import power"),
        ({"value": "120", "measurand": "SoC", "unit": "Percent"}, "outside"),
        ({"value": "-3", "measurand": "SoC", "unit": "Percent"}, "outside"),
        ({"value": "16", "measurand": "Current.Import", "unit": "W"}, "does not fit"),
        ({"value": "16", "measurand": "Temperature", "unit": "Hertz"}, "not a temperature"),
        ({"value": None, "measurand": "Voltage"}, "not a number"),
        ({"value": "1", "measurand": "Power.Active.Import", "unit_of_measure": {"unit": "W", "multiplier": "x"}},
         "multiplier"),
        ({"value": "AB12", "format": "SignedData"}, "signed"),
    ],
)
def test_bad_values_are_rejected_with_a_reason(sv: dict[str, Any], reason_part: str) -> None:
    samples, rejected = one(sv)
    assert samples == []
    assert len(rejected) == 1
    assert reason_part in rejected[0].reason


@pytest.mark.parametrize("ts", ["2030-01-01T00:00:00Z", "2020-01-01T00:00:00Z", "yesterday"])
def test_far_or_broken_timestamps_are_rejected(ts: str) -> None:
    samples, rejected = one({"value": "10", "measurand": "SoC"}, ts=ts)
    assert samples == []
    assert len(rejected) == 1 and "timestamp" in rejected[0].reason


def test_one_bad_value_does_not_drop_the_message() -> None:
    out = normalise_meter_values("cp", 1, [{"timestamp": TS, "sampled_value": [
        {"value": "bad", "measurand": "Power.Active.Import"},
        {"value": "40", "measurand": "SoC"},
        {"value": "50", "measurand": "Frequency"},  # unused measurand: neither kept nor an error
    ]}], now=NOW)
    assert [s.quantity for s in out.samples] == [Quantity.SOC]
    assert out.samples[0].source is Source.EV
    assert len(out.rejected) == 1


def test_phase_values_are_summed_once_into_a_total() -> None:
    values = [{"value": "3000", "measurand": "Power.Active.Import", "unit": "W", "phase": p}
              for p in ("L1", "L2", "L3", "L1-N")]  # L1-N is L1 again: must not count twice
    out = normalise_meter_values("cp", 1, [{"timestamp": TS, "sampled_value": values}], now=NOW)
    totals = [s for s in out.samples if s.phase is None]
    assert len(totals) == 1 and totals[0].value == pytest.approx(9.0)


def test_a_given_total_wins_over_the_phases() -> None:
    values = [{"value": "3000", "measurand": "Power.Active.Import", "unit": "W", "phase": p} for p in ("L1", "L2")]
    values.append({"value": "7000", "measurand": "Power.Active.Import", "unit": "W"})
    out = normalise_meter_values("cp", 1, [{"timestamp": TS, "sampled_value": values}], now=NOW)
    totals = [s for s in out.samples if s.phase is None]
    assert [t.value for t in totals] == [pytest.approx(7.0)]


def test_object_instead_of_list_and_missing_defaults_are_tolerated() -> None:
    out = normalise_meter_values("cp", 1, {"sampled_value": {"value": "1000"}}, now=NOW)
    assert [s.quantity for s in out.samples] == [Quantity.ENERGY_KWH]
    assert out.samples[0].time == NOW
    assert normalise_meter_values("cp", 1, None, now=NOW).samples == ()
    assert normalise_meter_values("cp", 1, [{"timestamp": TS, "sampled_value": []}], now=NOW).samples == ()


def test_vendor_battery_temperature_from_custom_data() -> None:
    samples, _ = one({"value": 5.0, "measurand": "SoC", "custom_data": {"vendor_id": "x", "battery_temperature": 33.0}})
    temps = [s for s in samples if s.quantity is Quantity.TEMPERATURE_C]
    assert temps and temps[0].value == 33.0 and temps[0].location == "EV" and temps[0].source is Source.VENDOR


def test_charging_needs_are_converted() -> None:
    needs = charging_needs_event("cp", 1, {
        "requested_energy_transfer": "DC",
        "departure_time": "2026-03-01T18:00:00Z",
        "dc_charging_parameters": {"ev_max_current": 200, "ev_max_voltage": 400, "energy_amount": 30000,
                                   "ev_max_power": 50000, "state_of_charge": 40, "ev_energy_capacity": 80000},
    }, NOW)
    assert needs.energy_kwh == 30.0 and needs.max_power_kw == 50.0 and needs.soc == 0.4
    assert needs.capacity_kwh == 80.0 and needs.departure == NOW + timedelta(hours=6)


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12,
)


@given(json_like)
def test_normaliser_never_raises(payload: Any) -> None:
    out = normalise_meter_values("cp", 1, payload, now=NOW)
    assert all(math.isfinite(s.value) for s in out.samples)


@given(st.dictionaries(st.sampled_from(["timestamp", "sampled_value"]), json_like))
def test_normaliser_never_raises_on_odd_groups(group: dict[str, Any]) -> None:
    out = normalise_meter_values("cp", 1, [group], now=NOW)
    assert isinstance(out.samples, tuple)
