"""Read endpoints: status, chargers, sessions, plan, ticks, history, circuits, meter history, grid cap."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from csms_adapter.control.recorder import StoreRecorder
from csms_adapter.http_api import schemas as s
from csms_adapter.http_api import views
from csms_adapter.http_api.context import ApiContext
from csms_adapter.http_api.errors import ApiError
from csms_adapter.http_api.guards import Reader
from csms_adapter.http_api.routes_monitoring import DASHBOARD_INCIDENTS
from csms_adapter.http_api.schemas_monitoring import IncidentOut
from optimizer.snapshot_io import plan_to_json

router = APIRouter(prefix="/api", tags=["read"])
MAX_METER_WINDOW = timedelta(days=7)
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": s.ProblemReport}}
DASHBOARD_TICKS = 12


def dashboard_state(ctx: ApiContext) -> s.DashboardState:
    """Everything the dashboard shows, as one value (also the payload of each server-sent ``state`` event)."""
    controller, now = ctx.controller, ctx.now()
    tick = controller.last_tick
    unplanned_kw = sum(u.power_kw for u in tick.snapshot.uncontrolled) if tick is not None else 0.0
    return s.DashboardState(
        status=views.status(controller, now, ctx.auth.writes_enabled),
        connectors=views.connectors(controller, now),
        circuits=views.circuits(controller, now),
        ticks=[views.tick_out(t) for t in ctx.ticks.last(DASHBOARD_TICKS)],
        uncontrolled=views.uncontrolled(controller),
        plan_ahead=views.plan_ahead(tick.plan if tick is not None else None, unplanned_kw),
        incidents=[IncidentOut.of(i) for i in controller.monitor.incidents(open=True)[:DASHBOARD_INCIDENTS]],
    )


@router.get("/dashboard")
async def get_dashboard(ctx: Reader) -> s.DashboardState:
    """The dashboard's whole state at once (what each ``/api/events`` event carries)."""
    return dashboard_state(ctx)


@router.get("/status")
async def get_status(ctx: Reader) -> s.StatusOut:
    """Site power against the grid limit, chargers online, sessions, the last tick."""
    return views.status(ctx.controller, ctx.now(), ctx.auth.writes_enabled)


@router.get("/chargers")
async def get_chargers(ctx: Reader) -> list[s.ChargerOut]:
    """Every charger of the site with its connectors and what is wrong with it (rejects or ignores limits...)."""
    return views.chargers(ctx.controller, ctx.now())


@router.get("/connectors")
async def get_connectors(ctx: Reader) -> list[s.ConnectorOut]:
    """One row per connector: plug, vehicle, SoC and source, power and limit, temperature, departure outlook."""
    return views.connectors(ctx.controller, ctx.now())


@router.get("/sessions")
async def get_sessions(ctx: Reader) -> list[s.SessionOut]:
    """Open sessions with the values the next snapshot will use, and the operator inputs applied to them."""
    return views.sessions(ctx.controller, ctx.now())


@router.get("/plan", responses=_NOT_FOUND)
async def get_plan(ctx: Reader) -> s.PlanJson:
    """The plan of the last successful tick in the plan JSON contract (``optimizer.snapshot_io.plan_to_json``)."""
    tick = ctx.controller.last_tick
    if tick is None or tick.plan is None:
        raise ApiError(404, "", "no plan yet" if tick is None else f"the last tick produced no plan: {tick.error}")
    return plan_to_json(tick.plan)


@router.get("/ticks")
async def get_ticks(ctx: Reader, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[s.TickOut]:
    """The last ticks, newest first: status, solve time, binding constraints, reasons."""
    return [views.tick_out(t) for t in ctx.ticks.last(limit)]


@router.get("/history")
async def get_history(ctx: Reader, hours: Annotated[float, Query(gt=0, le=6)] = 3.0) -> list[s.SeriesPoint]:
    """Site power and the grid limit in force over the last ``hours`` (kept in memory while running)."""
    return ctx.history.since(ctx.now() - timedelta(hours=hours))


@router.get("/plan-ahead")
async def get_plan_ahead(ctx: Reader) -> list[s.SeriesPoint]:
    """Planned site power and limit per step of the current plan (empty before the first plan)."""
    tick = ctx.controller.last_tick
    if tick is None:
        return []
    return views.plan_ahead(tick.plan, sum(u.power_kw for u in tick.snapshot.uncontrolled))


@router.get("/circuits")
async def get_circuits(ctx: Reader) -> list[s.CircuitOut]:
    """Measured load per circuit (kW) and per site phase (A) against the circuit's limits."""
    return views.circuits(ctx.controller, ctx.now())


@router.get("/grid-cap")
async def get_grid_cap(ctx: Reader) -> s.GridCapOut | None:
    """The external grid cap in force, or null."""
    ctx.controller.live.inputs.grid_cap_kw(ctx.now())  # lets an expired cap lapse before it is shown
    return views.grid_cap_out(ctx.controller.live.inputs.grid_cap)


@router.get("/connectors/{charger}/{connector}/meter", responses={**_NOT_FOUND, 503: {"model": s.ProblemReport}})
async def get_meter_history(
    ctx: Reader,
    charger: str,
    connector: int,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    measurand: Annotated[list[str] | None, Query(max_length=10)] = None,
    limit: Annotated[int, Query(ge=1, le=20000)] = 5000,
) -> s.MeterHistoryOut:
    """Stored meter samples of one connector, ``since <= time < until`` (default: the last hour), oldest first.
    Samples reach the store in batches, so the last few seconds may not be there yet."""
    site = ctx.controller.site
    if not site.has_charger(charger):
        raise ApiError(404, "charger", f"no charger '{charger}' in the site")
    if not 0 <= connector <= site.charger(charger).connectors:
        raise ApiError(404, "connector", f"charger '{charger}' has connectors 0..{site.charger(charger).connectors}")
    end = until or ctx.now()
    start = since or end - timedelta(hours=1)
    if start >= end:
        raise ApiError(422, "since", "must be before until")
    if end - start > MAX_METER_WINDOW:
        raise ApiError(422, "since", f"at most {MAX_METER_WINDOW.days} days per request")
    recorder = ctx.controller.recorder
    if not isinstance(recorder, StoreRecorder):
        raise ApiError(503, "", "this controller runs without a store")
    rows = await recorder.store.run(recorder.store.meter_history, charger, connector, start, end, measurand)
    return s.MeterHistoryOut(
        charger=charger, connector=connector, since=start, until=end, truncated=len(rows) > limit,
        samples=[s.MeterSampleOut(time=r.measured_at, measurand=r.measurand, value=r.value, unit=r.unit,
                                  phase=r.phase, source=r.source) for r in rows[:limit]],
    )
