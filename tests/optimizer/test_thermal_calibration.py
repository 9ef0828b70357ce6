"""The calibrator: readings become observations per vehicle, the model in use switches once the fit is trusted, a
fleet pool helps the next vehicle, and unrelated readings are never paired."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from optimizer.domain import SessionState, Snapshot, ThermalModel
from optimizer.thermal import step_temp_c
from optimizer.thermal_calibration import ThermalCalibrator, vehicle_key
from tests.optimizer.helpers import NOW, site_with

CONFIGURED = ThermalModel(max_temp_c=45.0, heating_c_per_kwh=0.06, cooling_per_h=0.5)
REAL = ThermalModel(max_temp_c=45.0, heating_c_per_kwh=0.12, cooling_per_h=0.25)
STEP = timedelta(minutes=5)


def _drive(calibrator: ThermalCalibrator, tag: str, steps: int, start_offset: int = 0, power_kw: float = 40.0,
           meter_late: timedelta | None = None) -> Snapshot:
    """A vehicle on cp-4 charged at ``power_kw`` for ``steps`` ticks; returns the last snapshot (calibrated). With
    ``meter_late`` the energy register the snapshot carries is the one of that long ago (a meter that lags)."""
    site = site_with()
    temp, energy = 30.0, 0.0
    energies = [0.0]
    snap = None
    for k in range(steps):
        now = NOW + (start_offset + k) * STEP
        late = 0 if meter_late is None else int(meter_late / STEP)
        timing = {} if meter_late is None else {"temp_at": now, "energy_at": now - late * STEP}
        s = SessionState("cp-4", 1, soc=0.3, id_tag=tag, thermal=CONFIGURED, battery_temp_c=temp,
                         energy_delivered_kwh=energies[max(0, len(energies) - 1 - late)],
                         plugged_in_at=NOW + start_offset * STEP, **timing)
        snap = Snapshot(time=now, sessions=(s,), ambient_c=25.0)
        calibrator.observe_snapshot(site, snap)
        on = power_kw if k % 6 < 4 else 0.0  # on and off, so heating and cooling are both seen
        temp = step_temp_c(REAL, temp, on, STEP.total_seconds() / 3600.0, 25.0)
        energy += on * STEP.total_seconds() / 3600.0
        energies.append(energy)
    assert snap is not None
    return calibrator.calibrate(site, snap)


def test_model_in_use_switches_to_the_fit_once_it_is_trusted() -> None:
    calibrator = ThermalCalibrator()
    early = _drive(calibrator, "AA01", 4)  # 15 minutes: one observation, not enough
    assert early.sessions[0].thermal == CONFIGURED
    late = _drive(ThermalCalibrator(), "AA01", 60)
    used = late.sessions[0].thermal
    assert used is not None and used != CONFIGURED
    assert used.heating_c_per_kwh > 0.1 and used.max_temp_c == CONFIGURED.max_temp_c


def test_the_fleet_pool_helps_a_vehicle_seen_for_the_first_time() -> None:
    calibrator = ThermalCalibrator()
    _drive(calibrator, "AA01", 60)
    newcomer = _drive(calibrator, "BB02", 1, start_offset=100)
    key = vehicle_key(site_with(), newcomer.sessions[0])
    assert calibrator.choice(key, CONFIGURED).source.value == "fleet"
    assert newcomer.sessions[0].thermal != CONFIGURED


def test_readings_of_different_vehicles_on_one_connector_are_never_paired() -> None:
    calibrator = ThermalCalibrator()
    site = site_with()
    a = SessionState("cp-4", 1, id_tag="AA01", thermal=CONFIGURED, battery_temp_c=30.0, plugged_in_at=NOW)
    b = replace(a, id_tag="BB02", battery_temp_c=44.0, energy_delivered_kwh=0.0)
    calibrator.observe_snapshot(site, Snapshot(time=NOW, sessions=(a,)))
    calibrator.observe_snapshot(site, Snapshot(time=NOW + timedelta(minutes=20), sessions=(b,)))
    assert calibrator.fits() == []


def test_readings_closer_than_the_minimum_interval_wait_for_a_later_one() -> None:
    calibrator = ThermalCalibrator(min_interval_h=0.25)
    site = site_with()
    s = SessionState("cp-4", 1, id_tag="AA01", thermal=CONFIGURED, battery_temp_c=30.0, plugged_in_at=NOW)
    for minutes in (0, 5, 10):
        calibrator.observe_snapshot(site, Snapshot(time=NOW + timedelta(minutes=minutes), sessions=(s,)))
    assert calibrator.fits() == []
    calibrator.observe_snapshot(site, Snapshot(time=NOW + timedelta(minutes=15), sessions=(s,)))
    assert [f.fit.samples for f in calibrator.fits()] == [1, 1]  # the vehicle and its pool


def test_no_thermal_model_configured_learns_nothing() -> None:
    calibrator = ThermalCalibrator()
    site = site_with()
    s = SessionState("cp-4", 1, id_tag="AA01", thermal=ThermalModel.none(), battery_temp_c=30.0, plugged_in_at=NOW)
    for minutes in (0, 20, 40):
        calibrator.observe_snapshot(site, Snapshot(time=NOW + timedelta(minutes=minutes), sessions=(s,)))
    assert calibrator.fits() == []


def test_a_late_meter_is_paired_with_the_temperature_of_its_own_time() -> None:
    """A live meter 30 minutes behind a fresh telematics temperature: each energy register is paired with the
    temperature read at its time, so the fit learns the real heating rate, as with readings taken together; a
    register older than every temperature remembered teaches nothing rather than a heating rate far too low."""
    for late in (timedelta(0), timedelta(minutes=30)):
        used = _drive(ThermalCalibrator(), "AA01", 60, meter_late=late).sessions[0].thermal
        assert used is not None and used.heating_c_per_kwh == pytest.approx(REAL.heating_c_per_kwh, rel=0.3), late
    far_behind = ThermalCalibrator()
    _drive(far_behind, "AA01", 60, meter_late=timedelta(hours=4))
    assert far_behind.fits() == []
