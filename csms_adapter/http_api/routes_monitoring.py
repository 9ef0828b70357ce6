"""Condition-monitoring reads (contract: "Condition monitoring"): incidents, a charger's raw event history,
availability per charger and connector, and the dashboard's health panel. Open on loopback like the other reads."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from csms_adapter.http_api.context import ApiContext
from csms_adapter.http_api.errors import ApiError
from csms_adapter.http_api.guards import Reader
from csms_adapter.http_api.health import timelines
from csms_adapter.http_api.schemas import ProblemReport
from csms_adapter.http_api.schemas_monitoring import AvailabilityOut, EventOut, HealthOut, IncidentOut

router = APIRouter(prefix="/api", tags=["monitoring"])
MAX_AVAILABILITY_WINDOW = timedelta(days=366)
DEFAULT_WINDOW = timedelta(hours=24)
DASHBOARD_INCIDENTS = 200  # open incidents in each dashboard state event; the API has them all
_ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": ProblemReport}, 422: {"model": ProblemReport}}


def _known_charger(ctx: ApiContext, charger: str) -> None:
    if not ctx.controller.site.has_charger(charger):
        raise ApiError(404, "charger", f"no charger '{charger}' in the site")


@router.get("/incidents", responses=_ERRORS)
async def get_incidents(
    ctx: Reader,
    open: bool | None = None,
    charger: str | None = None,
    since: AwareDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> list[IncidentOut]:
    """Incidents newest first: ``open=true`` the ongoing ones, ``open=false`` the resolved ones; ``since`` keeps
    those still open or resolved at or after it. A repeated report of an open problem raises ``occurrences``."""
    if charger is not None:
        _known_charger(ctx, charger)
    rows = ctx.controller.monitor.incidents(open=open, charger=charger, since=since)
    return [IncidentOut.of(i) for i in rows[:limit]]


@router.get("/chargers/{charger}/events", responses=_ERRORS)
async def get_charger_events(
    ctx: Reader,
    charger: str,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> list[EventOut]:
    """The stored raw history of one charger, newest first, ``since <= time < until``: every StatusNotification,
    NotifyEvent, SecurityEventNotification, firmware/diagnostics/log status, connect and disconnect with its
    fields, and flagged meter samples. Events reach the store in batches: the last second may be missing."""
    _known_charger(ctx, charger)
    if since is not None and until is not None and since >= until:
        raise ApiError(422, "since", "must be before until")
    rows = await ctx.controller.monitor.events(charger, since, until, limit)
    return [EventOut.of(r) for r in rows]


@router.get("/availability", responses=_ERRORS)
async def get_availability(
    ctx: Reader,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
) -> list[AvailabilityOut]:
    """Per charger (``connector`` null) and per connector over ``[since, until)`` (default: the last 24 h):
    seconds available, faulted, offline and unavailable, ``availability_ratio`` = (window − faulted − offline −
    unavailable) ÷ window, outages, MTBF and MTTR in seconds (null when no outage started in the window).
    Operator-requested unavailability is not an outage (docs/monitoring.md)."""
    end = until or ctx.now()
    start = since or end - DEFAULT_WINDOW
    if start >= end:
        raise ApiError(422, "since", "must be before until")
    if end - start > MAX_AVAILABILITY_WINDOW:
        raise ApiError(422, "since", f"at most {MAX_AVAILABILITY_WINDOW.days} days per request")
    return [AvailabilityOut.of(row) for row in ctx.controller.monitor.availability(start, end)]


def health(ctx: ApiContext, hours: float = 24.0) -> HealthOut:
    """The health panel over the last ``hours``: open incidents, a timeline per charger, each charger's
    availability."""
    monitor, now = ctx.controller.monitor, ctx.now()
    since = now - timedelta(hours=hours)
    chargers = [c.id for c in ctx.controller.site.chargers]
    recent = monitor.incidents(since=since)
    return HealthOut(
        time=now,
        since=since,
        open_incidents=[IncidentOut.of(i) for i in recent if i.is_open][:DASHBOARD_INCIDENTS],
        timeline=timelines(recent, chargers, since, now, monitor.operator.in_window(since, now)),
        availability=[AvailabilityOut.of(r) for r in monitor.availability(since, now) if r.connector is None],
    )


@router.get("/health")
async def get_health(ctx: Reader, hours: Annotated[float, Query(gt=0, le=168)] = 24.0) -> HealthOut:
    """What the dashboard's health panel shows: open incidents (newest first), each charger's status timeline
    (the worst state of its connectors) and its availability over the last ``hours``."""
    return health(ctx, hours)
