"""Per-vehicle thermal calibration: turns successive temperature readings into ``thermal_fit`` observations, keeps
one fit per vehicle and one pooled fit per configured model (so a bus that just arrived benefits from what its
sisters showed today), and hands the planner each session's model in use.

Used by the benchmark harness (fed from snapshots) and by the live controller (``csms_adapter.control.
thermal_learning``, fed from meter samples and vehicle data). Pure: no clock, no I/O; the caller passes times.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from datetime import datetime

from optimizer.domain import SessionState, Site, Snapshot, ThermalModel, ValueSource
from optimizer.needs import vehicle_of
from optimizer.thermal_fit import (
    FitSettings,
    ModelChoice,
    ThermalFit,
    ThermalObservation,
    choose_model,
    update,
)


@dataclass(frozen=True, slots=True)
class TempReading:
    """A battery temperature with the connector's energy register (grid side, kWh) and the ambient at that time."""

    time: datetime
    temp_c: float
    energy_kwh: float
    ambient_c: float


@dataclass(frozen=True, slots=True)
class VehicleFit:
    """What is known of one vehicle's (or one pooled) thermal behaviour, for storage and display."""

    key: str
    configured: ThermalModel
    fit: ThermalFit
    updated_at: datetime | None


def vehicle_key(site: Site, session: SessionState) -> str:
    """Roster vehicle id; else the id tag; else the session itself (charger/connector@plug-in time)."""
    vehicle, source = vehicle_of(site, session)
    if source == ValueSource.ROSTER:
        return vehicle.id
    if session.id_tag:
        return f"tag:{session.id_tag.upper()}"
    plugged = session.plugged_in_at.isoformat() if session.plugged_in_at else "?"
    return f"session:{session.charger_id}/{session.connector_id}@{plugged}"


def configured_model(site: Site, session: SessionState) -> ThermalModel:
    """The model the site file (or the snapshot) gives this session: what the fit starts from and is scored against."""
    if session.thermal is not None:
        return session.thermal
    return vehicle_of(site, session)[0].thermal


def _fleet_key(model: ThermalModel) -> str:
    return f"fleet:{model.heating_c_per_kwh:g}/{model.cooling_per_h:g}/{model.max_temp_c:g}"


# A live meter's values may arrive late (a charger catching up after a reconnection, a controller that cannot
# keep up) while the telematics temperature is fresh: paired as they come, heating would be set against energy
# drawn much earlier and the fit would learn a heating rate far below the real one (measured: half of it,
# docs/battery.md). So a reading is taken at the energy register's time, with the temperature read within
# MAX_READING_SKEW_S of it, or interpolated between two temperatures at most MAX_TEMP_GAP_S apart around it.
MAX_READING_SKEW_S = 120.0
MAX_TEMP_GAP_S = 1200.0
TEMPS_REMEMBERED = 32


def _temp_at(history: deque[tuple[str, datetime, float]], at: datetime) -> float | None:
    """The battery temperature at ``at`` from recent readings (oldest first); None when none is near enough."""
    nearest = min(history, key=lambda h: abs((h[1] - at).total_seconds()))
    if abs((nearest[1] - at).total_seconds()) <= MAX_READING_SKEW_S:
        return nearest[2]
    before = [h for h in history if h[1] <= at]
    after = [h for h in history if h[1] > at]
    if not before or not after:
        return None
    (_, t0, c0), (_, t1, c1) = before[-1], after[0]
    gap_s = (t1 - t0).total_seconds()
    if gap_s > MAX_TEMP_GAP_S:
        return None
    return c0 + (c1 - c0) * (at - t0).total_seconds() / gap_s


class ThermalCalibrator:
    """Learns from readings; answers which model to plan with. One instance per controller (or benchmark run)."""

    def __init__(self, settings: FitSettings | None = None, min_interval_h: float = 0.25) -> None:
        self.settings = settings or FitSettings()
        self.min_interval_h = min_interval_h
        self._fits: dict[str, VehicleFit] = {}
        self._last: dict[tuple[str, int], tuple[str, TempReading]] = {}
        self._temps: dict[tuple[str, int], deque[tuple[str, datetime, float]]] = {}  # recent (vehicle, time, °C)

    # ------------------------------------------------------------------ learning

    def observe(self, key: str, configured: ThermalModel, obs: ThermalObservation, at: datetime | None = None) -> None:
        """Learn one interval for vehicle ``key`` and for the pool of its configured model."""
        if not configured.is_modelled or not obs.is_usable(self.settings):
            return
        for k in (key, _fleet_key(configured)):
            known = self._fits.get(k)
            fit = known.fit if known is not None and known.configured == configured else ThermalFit.start(configured, self.settings)
            self._fits[k] = VehicleFit(k, configured, update(fit, obs, configured, self.settings), at)

    def observe_reading(self, connector: tuple[str, int], key: str, configured: ThermalModel, reading: TempReading) -> None:
        """A new reading on ``connector``. Once ``min_interval_h`` has passed since the interval's first reading of the
        same vehicle, the two make an observation. Short intervals would let the sensor noise of the first reading,
        which the controller acted on, correlate with the power that followed and bias the heating estimate."""
        anchor = self._last.get(connector)
        if anchor is None or anchor[0] != key or reading.time <= anchor[1].time:
            self._last[connector] = (key, reading)
            return
        before = anchor[1]
        hours = (reading.time - before.time).total_seconds() / 3600.0
        if hours < self.min_interval_h - 1e-9:
            return
        self._last[connector] = (key, reading)
        power_kw = max(0.0, (reading.energy_kwh - before.energy_kwh) / hours)
        # The ambient of the interval is the one read at its start (a forecast step holds until the next reading).
        obs = ThermalObservation(hours, power_kw, before.ambient_c, before.temp_c, reading.temp_c)
        self.observe(key, configured, obs, reading.time)

    def observe_snapshot(self, site: Site, snapshot: Snapshot) -> None:
        """Learn from every session of ``snapshot`` that carries a battery temperature; forget unplugged connectors."""
        present = set()
        for s in snapshot.sessions:
            present.add((s.charger_id, s.connector_id))
            if s.battery_temp_c is None:
                continue
            connector, key = (s.charger_id, s.connector_id), vehicle_key(site, s)
            temp_at = s.temp_at or snapshot.time
            energy_at = s.energy_at or snapshot.time
            history = self._temps.setdefault(connector, deque(maxlen=TEMPS_REMEMBERED))
            if history and history[-1][0] != key:
                history.clear()
            if not history or temp_at > history[-1][1]:
                history.append((key, temp_at, s.battery_temp_c))
            # The reading describes the energy register's time; its temperature is the one read then.
            temp_c = _temp_at(history, energy_at)
            if temp_c is None:
                continue  # not read together and not bracketed by temperatures: the interval's power would be wrong
            reading = TempReading(energy_at, temp_c, s.energy_delivered_kwh, snapshot.ambient_c)
            self.observe_reading(connector, key, configured_model(site, s), reading)
        for gone in set(self._last) - present:
            del self._last[gone]
        for gone in set(self._temps) - present:
            del self._temps[gone]

    # ------------------------------------------------------------------ planning

    def choice(self, key: str, configured: ThermalModel) -> ModelChoice:
        own = self._fits.get(key)
        fleet = self._fits.get(_fleet_key(configured))
        return choose_model(
            configured,
            own.fit if own is not None and own.configured == configured else None,
            fleet.fit if fleet is not None else None,
            self.settings,
        )

    def calibrate(self, site: Site, snapshot: Snapshot) -> Snapshot:
        """``snapshot`` with each session's thermal model replaced by the model in use (unchanged when configured)."""
        sessions = []
        changed = False
        for s in snapshot.sessions:
            configured = configured_model(site, s)
            chosen = self.choice(vehicle_key(site, s), configured)
            if chosen.model != configured:
                sessions.append(replace(s, thermal=chosen.model))
                changed = True
            else:
                sessions.append(s)
        return replace(snapshot, sessions=tuple(sessions)) if changed else snapshot

    def fits(self) -> list[VehicleFit]:
        """Every fit, vehicles and pools, sorted by key."""
        return [self._fits[k] for k in sorted(self._fits)]

    def restore(self, fits: list[VehicleFit]) -> None:
        """Start from stored fits (a restart keeps what was learnt)."""
        for f in fits:
            self._fits[f.key] = f
