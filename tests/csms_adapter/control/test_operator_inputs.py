"""Operator inputs (grid cap, session overrides, vehicle data), operator auth and OCPP frame counting: the pure parts
of the HTTP side, without sockets."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from csms_adapter.control.operator_inputs import GridCap, OperatorInputs, SessionOverride, VehicleData
from csms_adapter.http_api.auth import PASSWORD_ENV, PASSWORD_SHA256_ENV, OperatorAuth, is_loopback
from csms_adapter.protocol.message_stats import FrameCounter, MessageStats
from optimizer.domain import SessionState, ValueSource

NOW = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)


def session(**kwargs: object) -> SessionState:
    base: dict[str, object] = {"charger_id": "cp-1", "connector_id": 1, "soc": 0.3,
                               "soc_source": ValueSource.ESTIMATED, "energy_delivered_kwh": 10.0}
    base.update(kwargs)
    return SessionState(**base)  # type: ignore[arg-type]


def test_grid_cap_lapses_at_its_end_time() -> None:
    inputs = OperatorInputs()
    inputs.set_grid_cap(GridCap(50.0, NOW, until=NOW + timedelta(minutes=30)))
    assert inputs.grid_cap_kw(NOW + timedelta(minutes=29)) == 50.0
    assert inputs.grid_cap_kw(NOW + timedelta(minutes=30)) is None
    assert inputs.grid_cap is not None  # reading changes nothing ...
    inputs.expire(NOW + timedelta(minutes=30))
    assert inputs.grid_cap is None  # ... the tick's update step drops it for good


def test_vehicle_data_soc_is_advanced_by_energy_delivered_since_and_ends_with_the_session() -> None:
    inputs = OperatorInputs()
    inputs.set_vehicle_data(("cp-1", 1), VehicleData("tx-1", NOW, delivered_kwh=4.0, soc=0.5, battery_kwh=60.0,
                                                     battery_temp_c=30.0))
    applied = inputs.apply_session(session(), "tx-1", NOW + timedelta(minutes=5))
    assert applied.soc == pytest.approx(0.5 + 6.0 / 60.0)
    assert applied.soc_source is ValueSource.VEHICLE_DATA and applied.battery_kwh == 60.0
    assert applied.battery_temp_c == 30.0 and applied.temp_source is ValueSource.VEHICLE_DATA
    assert applied.temp_at == NOW  # when it was read, for the thermal fit to pair it with the meter of that time
    old = inputs.apply_session(session(), "tx-1", NOW + timedelta(hours=1))
    assert old.temp_source is ValueSource.ESTIMATED  # too old to count as a measurement
    assert inputs.apply_session(session(), "tx-2", NOW) == session()  # another session: nothing applies
    inputs.forget_ended({("cp-1", 1): "tx-2"})
    assert not inputs.vehicle_data


def test_a_measured_soc_and_temperature_beat_telematics() -> None:
    inputs = OperatorInputs()
    inputs.set_vehicle_data(("cp-1", 1), VehicleData("tx-1", NOW, 0.0, soc=0.9, battery_temp_c=50.0))
    measured = session(soc_source=ValueSource.MEASURED, battery_temp_c=25.0, temp_source=ValueSource.MEASURED)
    assert inputs.apply_session(measured, "tx-1", NOW) == measured


def test_partial_vehicle_reports_keep_earlier_fields_of_the_same_session() -> None:
    inputs = OperatorInputs()
    inputs.set_vehicle_data(("cp-1", 1), VehicleData("tx-1", NOW, 0.0, soc=0.4, battery_kwh=80.0))
    inputs.set_vehicle_data(("cp-1", 1), VehicleData("tx-1", NOW + timedelta(minutes=1), 1.0, battery_temp_c=33.0))
    data = inputs.vehicle_data_for(("cp-1", 1), "tx-1")
    assert data is not None and (data.soc, data.battery_kwh, data.battery_temp_c) == (0.4, 80.0, 33.0)
    assert data.delivered_kwh == 0.0  # the SoC's own baseline, not the later report's


def test_a_partial_report_keeps_each_field_with_its_own_time() -> None:
    """A report with only a SoC must not make the temperature of an older report look fresh (nor the other way
    round): a stale telematics temperature is an estimate, not a measurement the thermal model trusts."""
    inputs = OperatorInputs()
    key = ("cp-1", 1)
    inputs.set_vehicle_data(key, VehicleData("tx-1", NOW, 0.0, soc=0.4, battery_temp_c=20.0))
    inputs.set_vehicle_data(key, VehicleData("tx-1", NOW + timedelta(minutes=30), 5.0, battery_temp_c=25.0))
    inputs.set_vehicle_data(key, VehicleData("tx-1", NOW + timedelta(minutes=60), 9.0, soc=0.55))
    data = inputs.vehicle_data_for(key, "tx-1")
    assert data is not None and data.measured_at == NOW + timedelta(minutes=60)
    assert (data.soc, data.soc_measured_at, data.delivered_kwh) == (0.55, NOW + timedelta(minutes=60), 9.0)
    assert (data.battery_temp_c, data.temp_measured_at) == (25.0, NOW + timedelta(minutes=30))
    applied = inputs.apply_session(session(energy_delivered_kwh=9.0), "tx-1", NOW + timedelta(minutes=61))
    assert applied.temp_at == NOW + timedelta(minutes=30)
    assert applied.temp_source is ValueSource.ESTIMATED  # 31 min old: the newest report did not refresh it
    assert applied.soc == pytest.approx(0.55) and applied.soc_source is ValueSource.VEHICLE_DATA


def test_a_late_report_does_not_replace_newer_values() -> None:
    inputs = OperatorInputs()
    key = ("cp-1", 1)
    inputs.set_vehicle_data(key, VehicleData("tx-1", NOW, 6.0, soc=0.6, battery_kwh=75.0))
    # telematics delivered an older reading after the newer one
    inputs.set_vehicle_data(key, VehicleData("tx-1", NOW - timedelta(minutes=20), 2.0, soc=0.5, battery_temp_c=18.0,
                                             battery_kwh=70.0))
    data = inputs.vehicle_data_for(key, "tx-1")
    assert data is not None
    assert (data.soc, data.soc_measured_at, data.delivered_kwh, data.battery_kwh) == (0.6, NOW, 6.0, 75.0)
    assert (data.battery_temp_c, data.temp_measured_at) == (18.0, NOW - timedelta(minutes=20))  # it had none
    assert data.measured_at == NOW


def test_override_target_replaces_an_energy_need_when_the_soc_is_known() -> None:
    inputs = OperatorInputs()
    inputs.set_override(("cp-1", 1), SessionOverride("tx-1", departure=NOW + timedelta(hours=2), target_soc=0.6,
                                                     priority=2.0))
    applied = inputs.apply_session(session(energy_needed_kwh=30.0, soc_source=ValueSource.ISO15118), "tx-1", NOW)
    assert (applied.target_soc, applied.priority, applied.departure) == (0.6, 2.0, NOW + timedelta(hours=2))
    assert applied.energy_needed_kwh is None


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(("env", "header", "ok"), [
    ({PASSWORD_ENV: "s3cret-pass"}, _basic("operator", "s3cret-pass"), True),
    ({PASSWORD_SHA256_ENV: hashlib.sha256(b"s3cret-pass").hexdigest()}, _basic("operator", "s3cret-pass"), True),
    ({PASSWORD_ENV: "s3cret-pass"}, _basic("operator", "wrong"), False),
    ({PASSWORD_ENV: "s3cret-pass"}, _basic("admin", "s3cret-pass"), False),
    ({PASSWORD_ENV: "s3cret-pass"}, "Bearer s3cret-pass", False),
    ({PASSWORD_ENV: "s3cret-pass"}, "Basic not-base64!", False),
    ({}, _basic("operator", ""), False),  # no password configured: writes are off
])
def test_operator_credentials(env: dict[str, str], header: str, ok: bool) -> None:
    assert OperatorAuth.from_env(env).check(header) is ok


def test_a_malformed_password_hash_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match=PASSWORD_SHA256_ENV):
        OperatorAuth.from_env({PASSWORD_SHA256_ENV: "abc"})


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("::1", True), ("10.0.0.5", False),
                                                ("testclient", False), (None, False)])
def test_loopback_detection(host: str | None, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_frames_are_counted_by_action_including_answers_and_errors() -> None:
    stats = MessageStats()
    frames = FrameCounter(stats)
    frames.frame("in", '[2,"a1","BootNotification",{"chargePointVendor":"x"}]')
    frames.frame("out", '[3,"a1",{"status":"Accepted"}]')
    frames.frame("out", '[2,"b7","SetChargingProfile",{}]')
    frames.frame("in", b'[4,"b7","NotSupported","",{}]')
    frames.frame("in", "not json at all")
    assert stats.messages[("in", "BootNotification", "call")] == 1
    assert stats.messages[("out", "BootNotification", "result")] == 1
    assert stats.errors == {("in", "SetChargingProfile"): 1, ("in", "malformed"): 1}
