"""``GET /api/external-limits``: the limits chargers reported that depotctl did not set, and that it plans under.

One entry per reported limit (NotifyChargingLimit: per charger, EVSE and source) and per vehicle schedule
(NotifyEVChargingSchedule) in force; ``periods`` empty means the charger said a limit exists but not how much.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from csms_adapter.http_api.guards import Reader

router = APIRouter(prefix="/api", tags=["read"])


class LimitPeriodOut(BaseModel):
    limit_kw: float
    start: datetime | None
    until: datetime | None


class ExternalLimitOut(BaseModel):
    charger: str
    connector: int  # 0: the whole charger
    source: str  # EMS | SO | CSO | Other | EV
    reported_at: datetime | None
    grid_critical: bool | None
    periods: list[LimitPeriodOut]


@router.get("/external-limits")
async def get_external_limits(ctx: Reader) -> list[ExternalLimitOut]:
    """External limits in force (grid operator, local energy manager, vehicle schedules)."""
    book = ctx.controller.live.external
    book.in_force(ctx.now())  # lets ended limits lapse before they are shown
    out = [ExternalLimitOut(charger=r.charger_id, connector=r.evse_id, source=r.source, reported_at=r.reported_at,
                            grid_critical=r.grid_critical,
                            periods=[LimitPeriodOut(limit_kw=lim.limit_kw, start=lim.start, until=lim.until)
                                     for lim in r.limits])
           for r in book.reported.values()]
    out += [ExternalLimitOut(charger=charger_id, connector=evse_id, source="EV", reported_at=None, grid_critical=None,
                             periods=[LimitPeriodOut(limit_kw=lim.limit_kw, start=lim.start, until=lim.until)
                                      for lim in limits])
            for (charger_id, evse_id), limits in book.ev_schedules.items() if limits]
    return out
