"""Write endpoints: the external grid cap, session overrides, vehicle data. Each one is validated completely
before anything changes, logged (without credentials), recorded in the live state's operator inputs and brings
the next tick forward, where it takes effect."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response

from csms_adapter.control.operator_inputs import GridCap, SessionOverride, VehicleData
from csms_adapter.http_api import schemas as s
from csms_adapter.http_api import views
from csms_adapter.http_api.context import ApiContext
from csms_adapter.http_api.errors import ApiError
from csms_adapter.http_api.guards import Writer
from optimizer.needs import vehicle_of

log = logging.getLogger("depotctl.http.write")
router = APIRouter(prefix="/api", tags=["write"])

MAX_CAP_SPAN = timedelta(days=31)
MAX_DEPARTURE_AHEAD = timedelta(days=7)
MAX_DATA_AGE = timedelta(hours=24)
MAX_CLOCK_SKEW = timedelta(minutes=5)
_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": s.ProblemReport} for code in (401, 403, 404, 409, 422)}


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else "?"


def _check_future(field: str, value: datetime, now: datetime, max_ahead: timedelta) -> None:
    if value <= now:
        raise ApiError(422, field, f"must be in the future (controller time is {now.isoformat()})")
    if value - now > max_ahead:
        raise ApiError(422, field, f"must be within {max_ahead.days} days")


def _session_key(ctx: ApiContext, charger: str, connector: int) -> tuple[tuple[str, int], str]:
    """The connector key and the transaction id of its open session; 404/409 when there is none."""
    site = ctx.controller.site
    if not site.has_charger(charger):
        raise ApiError(404, "charger", f"no charger '{charger}' in the site")
    if not 1 <= connector <= site.charger(charger).connectors:
        raise ApiError(404, "connector", f"charger '{charger}' has connectors 1..{site.charger(charger).connectors}")
    state = ctx.controller.live.charger(charger).connectors.get(connector)
    if state is None or state.session is None:
        raise ApiError(409, "connector", f"no open session on {charger}/{connector}")
    return (charger, connector), state.session.transaction_id


@router.put("/grid-cap", responses=_ERRORS)
async def put_grid_cap(ctx: Writer, body: s.GridCapIn, request: Request) -> s.GridCapOut:
    """Cap the site's grid import (EV plus base load) from the next tick on, optionally until ``until``, after
    which it lapses by itself. Replaces any cap in force."""
    now = ctx.now()
    if body.until is not None:
        _check_future("until", body.until, now, MAX_CAP_SPAN)
    cap = GridCap(limit_kw=body.limit_kw, set_at=now, until=body.until, reason=body.reason)
    ctx.controller.live.inputs.set_grid_cap(cap)
    log.info("grid cap set limit_kw=%.1f until=%s reason=%r client=%s", cap.limit_kw,
             cap.until.isoformat() if cap.until else "-", cap.reason, _client(request))
    ctx.controller.loop.request_tick("grid cap")
    out = views.grid_cap_out(cap)
    assert out is not None
    return out


@router.delete("/grid-cap", status_code=204, responses=_ERRORS)
async def delete_grid_cap(ctx: Writer, request: Request) -> Response:
    """Lift the external grid cap (the site file's import limit applies again from the next tick)."""
    ctx.controller.live.inputs.set_grid_cap(None)
    log.info("grid cap cleared client=%s", _client(request))
    ctx.controller.loop.request_tick("grid cap cleared")
    return Response(status_code=204)


@router.patch("/sessions/{charger}/{connector}", responses=_ERRORS)
async def patch_session(ctx: Writer, charger: str, connector: int, body: s.SessionUpdateIn,
                  request: Request) -> s.SessionOut:
    """Override departure, target SoC and/or priority of the open session on a connector. The override beats
    every other source and ends with the session."""
    now = ctx.now()
    key, transaction_id = _session_key(ctx, charger, connector)
    if body.departure is not None:
        _check_future("departure", body.departure, now, MAX_DEPARTURE_AHEAD)
    inputs = ctx.controller.live.inputs
    old = inputs.override_for(key, transaction_id) or SessionOverride(transaction_id)
    given = body.model_fields_set
    override = SessionOverride(
        transaction_id=transaction_id,
        departure=body.departure if "departure" in given else old.departure,
        target_soc=body.target_soc if "target_soc" in given else old.target_soc,
        priority=body.priority if "priority" in given else old.priority,
        set_at=now,
    )
    inputs.set_override(key, override)
    log.info("session override charger=%s connector=%d tx=%s departure=%s target_soc=%s priority=%s client=%s",
             charger, connector, transaction_id, override.departure.isoformat() if override.departure else "-",
             override.target_soc, override.priority, _client(request))
    ctx.controller.loop.request_tick("session override")
    out = views.session_out(ctx.controller, charger, connector, now)
    assert out is not None
    return out


def _connector_of_vehicle(ctx: ApiContext, vehicle: str) -> tuple[str, int]:
    """Where the vehicle (roster id or id tag) is plugged in; 404 when unknown, 409 when not plugged in."""
    controller = ctx.controller
    site, now = controller.site, ctx.now()
    for charger_id, connector_id, session in controller.live.open_sessions():
        state = controller.live.session_state(charger_id, connector_id, now)
        if state is None:
            continue
        profile, _ = vehicle_of(site, state)
        if (profile is not site.fleet_defaults and profile.id == vehicle) or session.id_tag == vehicle:
            return charger_id, connector_id
    if site.vehicle_by_id(vehicle) is None:
        raise ApiError(404, "vehicle", f"'{vehicle}' is neither a roster vehicle nor the id tag of an open session")
    raise ApiError(409, "vehicle", f"vehicle '{vehicle}' is not plugged in")


@router.post("/vehicle-data", responses=_ERRORS)
async def post_vehicle_data(ctx: Writer, body: s.VehicleDataIn, request: Request) -> s.SessionOut:
    """Telematics for a plugged-in vehicle: SoC, battery temperature, battery capacity. Recorded with source
    ``vehicle_data``; used from the next tick on (a measured or ISO 15118 value still wins)."""
    now = ctx.now()
    measured_at = body.measured_at or now
    if measured_at > now + MAX_CLOCK_SKEW:
        raise ApiError(422, "measured_at", f"is in the future (controller time is {now.isoformat()})")
    if now - measured_at > MAX_DATA_AGE:
        raise ApiError(422, "measured_at", f"older than {int(MAX_DATA_AGE.total_seconds() // 3600)} h")
    if body.vehicle is not None:
        charger, connector = _connector_of_vehicle(ctx, body.vehicle)
    else:
        assert body.charger is not None
        charger, connector = body.charger, body.connector or 1
    key, transaction_id = _session_key(ctx, charger, connector)
    session = ctx.controller.live.charger(charger).connector(connector).session
    assert session is not None
    data = VehicleData(transaction_id=transaction_id, measured_at=measured_at, delivered_kwh=session.delivered_kwh,
                       soc=body.soc, battery_temp_c=body.battery_temp_c, battery_kwh=body.battery_kwh,
                       vehicle_id=body.vehicle if body.vehicle is not None and ctx.controller.site.vehicle_by_id(
                           body.vehicle) is not None else None)
    ctx.controller.live.inputs.set_vehicle_data(key, data)
    log.info("vehicle data charger=%s connector=%d tx=%s soc=%s battery_temp_c=%s battery_kwh=%s client=%s",
             charger, connector, transaction_id, body.soc, body.battery_temp_c, body.battery_kwh, _client(request))
    ctx.controller.loop.request_tick("vehicle data")
    out = views.session_out(ctx.controller, charger, connector, now)
    assert out is not None
    return out
