"""Battery condition in the live controller: the ambient input with its age, the learnt thermal models on the API
and in the store, and garbage refused with the field named."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from http_depot import AUTH, running_depot

from csms_adapter.control.recorder import fit_of_row, fit_row
from csms_adapter.control.thermal_learning import ThermalLearning
from csms_adapter.store import Store
from optimizer.ambient import AmbientReading
from optimizer.domain import SessionState, Snapshot, ThermalModel, ValueSource
from optimizer.thermal_calibration import VehicleFit
from optimizer.thermal_fit import FitSettings, ThermalObservation, fit_all
from tests.optimizer.helpers import NOW, site_with


async def _ticked(depot: Any, ok: Any, timeout_s: float = 15.0) -> Any:
    async with asyncio.timeout(timeout_s):
        while True:
            tick = depot.controller.last_tick
            if tick is not None and ok(tick):
                return tick
            await asyncio.sleep(0.05)


async def test_ambient_reading_reaches_the_snapshot_then_lapses_to_the_site_file(tmp_path: Path) -> None:
    async with running_depot(tmp_path, chargers=1) as depot, depot.client() as api:
        answer = await api.put("/api/ambient", json={"temp_c": 33.5}, auth=AUTH)
        assert answer.status_code == 200, answer.text
        assert answer.json()["source"] == "measured" and answer.json()["age_s"] == pytest.approx(0.0, abs=120)
        tick = await _ticked(depot, lambda t: t.snapshot.ambient_c == 33.5)
        assert tick.snapshot.ambient_c == 33.5
        thermal = (await api.get("/api/thermal")).json()
        assert thermal["ambient"]["temp_c"] == 33.5 and thermal["ambient"]["source"] == "measured"
        assert thermal["calibration"] is True and isinstance(thermal["fits"], list)
        assert thermal["readings_distrusted"] == 0
        # A reading older than the site's max age is not accepted, and an accepted one ages out by itself.
        old = depot.clock.now() - timedelta(seconds=depot.controller.site.ambient.max_age_s + 60)
        refused = await api.put("/api/ambient", json={"temp_c": 10.0, "measured_at": old.isoformat()}, auth=AUTH)
        assert refused.status_code == 422 and refused.json()["detail"][0]["field"] == "measured_at"
        learning = depot.controller.loop.thermal
        later = depot.clock.now() + timedelta(seconds=depot.controller.site.ambient.max_age_s + 1)
        assert learning.ambient(later).source.value == "site_file"
        assert learning.ambient(later).ambient_c == depot.controller.site.ambient.profile_c[0]


GARBAGE: list[tuple[dict[str, Any], str]] = [
    ({"temp_c": 150}, "temp_c"),
    ({"temp_c": "warm"}, "temp_c"),
    ({}, "temp_c"),
    ({"temp_c": 20, "extra": 1}, "extra"),
    ({"temp_c": 20, "measured_at": "2020-01-01T00:00:00"}, "measured_at"),  # no UTC offset
    ({"temp_c": 20, "measured_at": "2099-01-01T00:00:00Z"}, "measured_at"),  # in the future
]


async def test_garbage_ambient_is_refused_naming_the_field_and_changes_nothing(tmp_path: Path) -> None:
    async with running_depot(tmp_path, chargers=0, store=False) as depot, depot.client() as api:
        for body, field in GARBAGE:
            answer = await api.put("/api/ambient", json=body, auth=AUTH)
            assert answer.status_code == 422, (body, answer.text)
            assert any(p["field"] == field for p in answer.json()["detail"]), (body, answer.json())
        assert depot.controller.loop.thermal.ambient_reading is None
        assert (await api.put("/api/ambient", json={"temp_c": 20})).status_code == 401  # no credentials


def test_thermal_fits_survive_a_store_round_trip(tmp_path: Path) -> None:
    configured = ThermalModel(45.0, 0.06, 0.5)
    observations = [ThermalObservation(0.25, 100.0 if k % 3 else 0.0, 30.0, 35.0 + 0.1 * k, 36.0 + 0.1 * k)
                    for k in range(10)]
    fit = fit_all(observations, configured)
    store = Store.open(f"sqlite:///{tmp_path / 'fits.db'}")
    try:
        store.save_thermal_fits([fit_row(VehicleFit("bus-7", configured, fit, None), FitSettings())])
        store.save_thermal_fits([fit_row(VehicleFit("bus-7", configured, fit, None), FitSettings())])  # replaces
        rows = store.thermal_fits()
    finally:
        store.close()
    assert len(rows) == 1
    back = fit_of_row(rows[0])
    assert back.key == "bus-7" and back.configured == configured and back.fit == fit


def test_live_learning_ignores_stale_temperatures_and_sets_the_ambient() -> None:
    learning = ThermalLearning(site_with())
    model = ThermalModel(45.0, 0.06, 0.5)
    for minutes, source in ((0, ValueSource.ESTIMATED), (20, ValueSource.ESTIMATED), (40, ValueSource.ESTIMATED)):
        s = SessionState("cp-4", 1, id_tag="AA01", thermal=model, battery_temp_c=30.0 + minutes / 10,
                         temp_source=source, plugged_in_at=NOW)
        out = learning.prepare(Snapshot(time=NOW + timedelta(minutes=minutes), sessions=(s,), ambient_c=-5.0))
        assert out.ambient_c == 20.0  # the site file's default, not whatever the live state carried
    assert learning.fits() == [] and learning.take_changed() == []
    for minutes in (60, 80):  # 2 °C in 20 minutes: the energy drawn (12 kWh) explains it, so it is trusted
        s = SessionState("cp-4", 1, id_tag="AA01", thermal=model, battery_temp_c=30.0 + minutes / 10,
                         temp_source=ValueSource.VEHICLE_DATA, plugged_in_at=NOW, energy_delivered_kwh=0.6 * minutes)
        learning.prepare(Snapshot(time=NOW + timedelta(minutes=minutes), sessions=(s,)))
    assert [f.fit.samples for f in learning.take_changed()] == [1, 1]
    assert learning.take_changed() == []  # stored once


def test_live_learning_plans_a_reading_the_physics_cannot_explain_conservatively(caplog: pytest.LogCaptureFixture) -> None:
    """A bus idle at 44.4 °C in 44 °C air read 0.4 °C lower five minutes later: planned at what it can be, logged,
    counted, not learnt from; with learning off too (the screening is for safety, not for the fit)."""
    model = ThermalModel(45.0, 0.06, 0.5)
    for enabled in (True, False):
        learning = ThermalLearning(site_with(), enabled=enabled)
        learning.set_ambient(AmbientReading(44.0, NOW))
        planned = []
        for minutes, temp_c in ((0, 44.4), (5, 44.0)):
            s = SessionState("cp-4", 1, id_tag="AA01", thermal=model, battery_temp_c=temp_c,
                             temp_source=ValueSource.VEHICLE_DATA, plugged_in_at=NOW)
            out = learning.prepare(Snapshot(time=NOW + timedelta(minutes=minutes), sessions=(s,)))
            planned.append(out.sessions[0].battery_temp_c)
        assert planned[0] == 44.4 and planned[1] is not None and planned[1] > 44.3
        assert learning.guard.distrusted_total == 1
    assert "battery temperature not trusted as read charger=cp-4 connector=1 read_c=44.00" in caplog.text
