"""Battery condition endpoints (docs/battery.md): the ambient temperature input and the learnt thermal models.

``PUT /api/ambient`` sets the site's outdoor temperature (a weather station, a BMS); it is used from the next tick
while younger than ``site.ambient.max_age_s``, then the site file's value applies again by itself.
``GET /api/thermal`` shows the ambient in force with its age, every fit (per vehicle and pooled per configured
model) with its confidence, and the model each plugged-in vehicle is planned with.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from csms_adapter.http_api.errors import ApiError
from csms_adapter.http_api.guards import Reader, Writer
from csms_adapter.http_api.schemas import ProblemReport
from optimizer.ambient import FORECAST_HOURS, AmbientNow, AmbientReading
from optimizer.domain import ThermalModel
from optimizer.thermal_calibration import configured_model, vehicle_key

log = logging.getLogger("depotctl.http.thermal")
router = APIRouter(prefix="/api", tags=["battery"])
MAX_CLOCK_SKEW = timedelta(minutes=5)
_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ProblemReport} for code in (401, 403, 422)}


class AmbientIn(BaseModel):
    """A live outdoor temperature reading."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    temp_c: Annotated[float, Field(gt=-60, lt=70, allow_inf_nan=False, description="°C")]
    measured_at: AwareDatetime | None = Field(None, description="when it was read (with a UTC offset); default now")
    forecast_c: list[Annotated[float, Field(gt=-60, lt=70, allow_inf_nan=False)]] = Field(
        default_factory=list, max_length=FORECAST_HOURS, description="hourly forecast (°C) from measured_at on")


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class AmbientOut(_Out):
    temp_c: float
    source: str  # measured | site_file
    age_s: float | None
    max_age_s: float


class ModelOut(_Out):
    max_temp_c: float | None
    heating_c_per_kwh: float
    cooling_per_h: float


class FitOut(_Out):
    key: str  # roster vehicle id, tag:ID, session:…, or fleet:… (pooled over one configured model)
    configured: ModelOut
    fitted: ModelOut
    heating_sd: float
    cooling_sd: float
    confidence: float  # 0..1
    samples: int
    heated_kwh: float
    held_out_error_c: float | None  # RMS one-interval prediction error of the fit on data it had not seen
    configured_error_c: float | None  # the same for the configured model
    trusted: bool
    updated_at: str | None


class SessionModelOut(_Out):
    charger: str
    connector: int
    vehicle: str
    source: str  # configured | fitted | fleet
    model: ModelOut


class ThermalOut(_Out):
    ambient: AmbientOut
    calibration: bool
    fits: list[FitOut]
    sessions: list[SessionModelOut]
    readings_distrusted: int  # battery temperatures not planned with as read since start (docs/battery.md)


def _model(m: ThermalModel) -> ModelOut:
    return ModelOut(max_temp_c=m.max_temp_c if m.max_temp_c < float("inf") else None,
                    heating_c_per_kwh=m.heating_c_per_kwh, cooling_per_h=m.cooling_per_h)


def _ambient(amb: AmbientNow, max_age_s: float) -> AmbientOut:
    return AmbientOut(temp_c=amb.ambient_c, source=amb.source.value, age_s=amb.age_s, max_age_s=max_age_s)


@router.get("/thermal")
async def get_thermal(ctx: Reader) -> ThermalOut:
    """The ambient in force, every thermal fit, and the model each plugged-in vehicle is planned with."""
    controller, now = ctx.controller, ctx.now()
    learning = controller.loop.thermal
    settings = learning.calibrator.settings
    fits = []
    for f in learning.fits():
        fit = f.fit
        fits.append(FitOut(
            key=f.key, configured=_model(f.configured), fitted=_model(fit.model(f.configured)),
            heating_sd=fit.heating_sd(settings), cooling_sd=fit.cooling_sd(settings),
            confidence=fit.confidence(settings), samples=fit.samples, heated_kwh=fit.heated_kwh,
            held_out_error_c=(fit.score_fit / fit.score_weight) ** 0.5 if fit.score_weight > 0 else None,
            configured_error_c=(fit.score_configured / fit.score_weight) ** 0.5 if fit.score_weight > 0 else None,
            trusted=fit.is_trusted(f.configured, settings),
            updated_at=f.updated_at.isoformat() if f.updated_at is not None else None))
    sessions = []
    for charger_id, connector_id, _ in controller.live.open_sessions():
        state = controller.live.session_state(charger_id, connector_id, now)
        if state is None:
            continue
        configured = configured_model(controller.site, state)
        key = vehicle_key(controller.site, state)
        choice = learning.calibrator.choice(key, configured)
        sessions.append(SessionModelOut(charger=charger_id, connector=connector_id, vehicle=key,
                                        source=choice.source.value, model=_model(choice.model)))
    return ThermalOut(ambient=_ambient(learning.ambient(now), controller.site.ambient.max_age_s),
                      calibration=learning.enabled, fits=fits, sessions=sessions,
                      readings_distrusted=learning.guard.distrusted_total)


@router.put("/ambient", responses=_ERRORS)
async def put_ambient(ctx: Writer, body: AmbientIn, request: Request) -> AmbientOut:
    """Set the outdoor temperature; used from the next tick while younger than the site's ``ambient.max_age_s``."""
    now = ctx.now()
    measured_at = body.measured_at or now
    if measured_at > now + MAX_CLOCK_SKEW:
        raise ApiError(422, "measured_at", f"is in the future (controller time is {now.isoformat()})")
    max_age = timedelta(seconds=ctx.controller.site.ambient.max_age_s)
    if now - measured_at > max_age:
        raise ApiError(422, "measured_at", f"older than the site's ambient.max_age_s ({max_age.total_seconds():g} s)")
    learning = ctx.controller.loop.thermal
    learning.set_ambient(AmbientReading(body.temp_c, min(measured_at, now), tuple(body.forecast_c)))
    client = request.client.host if request.client is not None else "?"
    log.info("ambient set temp_c=%.1f measured_at=%s client=%s", body.temp_c, measured_at.isoformat(), client)
    ctx.controller.loop.request_tick("ambient")
    return _ambient(learning.ambient(now), ctx.controller.site.ambient.max_age_s)
