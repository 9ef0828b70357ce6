"""Live battery-condition inputs of the control loop: the ambient temperature and the learnt thermal models.

Each tick, before planning: the snapshot's ambient comes from the last ``PUT /api/ambient`` reading while it is fresh,
else from the site file (``optimizer.ambient``); then every session with a fresh battery temperature (an OCPP
``Temperature`` measurand at location ``EV``, a vendor field, or vehicle data) is learnt from
(``optimizer.thermal_calibration``) and the plan gets each vehicle's model in use. Stale temperatures (marked
``estimated`` by the live state) teach nothing. Before either, each new battery temperature is screened
(``optimizer.temp_guard``): one the physics cannot explain is planned conservatively, logged, and not learnt from.
Pure bookkeeping on the event loop; the store keeps the fits.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime

from optimizer.ambient import AmbientNow, AmbientReading, ambient_now
from optimizer.domain import SessionState, Site, Snapshot, ThermalModel, ValueSource
from optimizer.temp_guard import TempGuard
from optimizer.thermal_calibration import ThermalCalibrator, VehicleFit, configured_model, vehicle_key
from optimizer.thermal_fit import ModelChoice

log = logging.getLogger("depotctl.thermal")

# Temperature sources that describe the battery now (the live state marks a stale one ESTIMATED).
_FRESH_TEMP = {ValueSource.MEASURED, ValueSource.VEHICLE_DATA, ValueSource.ISO15118}


class ThermalLearning:
    """Ambient input and thermal calibration for one controller."""

    def __init__(self, site: Site, calibrator: ThermalCalibrator | None = None, enabled: bool = True) -> None:
        self.site = site
        self.calibrator = calibrator or ThermalCalibrator()
        self.enabled = enabled
        self.ambient_reading: AmbientReading | None = None
        self.last_ambient: AmbientNow | None = None
        self.changed_since_saved = False
        self.guard = TempGuard()  # battery temperatures the physics cannot explain are not planned with as read

    def set_ambient(self, reading: AmbientReading) -> None:
        self.ambient_reading = reading

    def ambient(self, now: datetime) -> AmbientNow:
        return ambient_now(self.site, now, self.ambient_reading)

    def prepare(self, snapshot: Snapshot) -> Snapshot:
        """``snapshot`` with the ambient in force and each session's thermal model in use; learns from it first."""
        amb = self.ambient(snapshot.time)
        self.last_ambient = amb
        snapshot = dataclasses.replace(snapshot, ambient_c=amb.ambient_c, ambient_forecast_c=amb.forecast_c)
        screened = self.guard.screen(snapshot, self.model_in_use)
        for (charger_id, connector_id), verdict in screened.distrusted:
            log.warning("battery temperature not trusted as read charger=%s connector=%s read_c=%.2f planned_c=%.2f "
                        "reason=%s", charger_id, connector_id, verdict.reading.temp_c, verdict.planned_c, verdict.reason)
        if not self.enabled:
            return screened.planning
        fresh = dataclasses.replace(snapshot, sessions=tuple(
            s for s in screened.learning.sessions if s.battery_temp_c is not None and s.temp_source in _FRESH_TEMP))
        before = [f.fit.samples for f in self.calibrator.fits()]
        self.calibrator.observe_snapshot(self.site, fresh)
        if [f.fit.samples for f in self.calibrator.fits()] != before:
            self.changed_since_saved = True
        return self.calibrator.calibrate(self.site, screened.planning)

    def model_in_use(self, session: SessionState) -> ThermalModel:
        """The model a session is planned with now (the configured one when learning is off)."""
        configured = configured_model(self.site, session)
        if not self.enabled:
            return configured
        return self.calibrator.choice(vehicle_key(self.site, session), configured).model

    def choice_for(self, snapshot: Snapshot, charger_id: str, connector_id: int) -> ModelChoice | None:
        """The model in use for the session on a connector (None: no such session)."""
        for s in snapshot.sessions:
            if (s.charger_id, s.connector_id) == (charger_id, connector_id):
                return self.calibrator.choice(vehicle_key(self.site, s), configured_model(self.site, s))
        return None

    def fits(self) -> list[VehicleFit]:
        return self.calibrator.fits()

    def take_changed(self) -> list[VehicleFit]:
        """The fits to store when something was learnt since the last call (empty otherwise)."""
        if not self.changed_since_saved:
            return []
        self.changed_since_saved = False
        return self.fits()

    def restore(self, fits: list[VehicleFit]) -> None:
        self.calibrator.restore(fits)
        if fits:
            log.info("thermal fits restored count=%d", len(fits))
