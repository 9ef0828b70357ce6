"""Operator-requested availability: take a connector (or a whole charger) out of service and back, with OCPP
ChangeAvailability (``csms_adapter.control.availability_requests``). Writes follow the other write endpoints'
access rules (``Writer``); the charger's answer is returned as it came."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from csms_adapter.control.availability_requests import ChargerNotConnected
from csms_adapter.errors import ChargerError, ChargerTimeout
from csms_adapter.http_api.context import ApiContext
from csms_adapter.http_api.errors import ApiError
from csms_adapter.http_api.guards import Reader, Writer
from csms_adapter.http_api.schemas import ProblemReport
from csms_adapter.monitoring.operator_unavailability import OperatorSpan

log = logging.getLogger("depotctl.http.availability")
router = APIRouter(prefix="/api", tags=["availability"])
_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ProblemReport}
                                            for code in (401, 403, 404, 409, 422, 502, 504)}


class AvailabilityIn(BaseModel):
    """Take a connector out of service (``inoperative``) or back (``operative``); connector 0: the charger."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connector: Annotated[int, Field(ge=0, le=64, strict=True)]
    state: Literal["operative", "inoperative"]
    reason: Annotated[str, Field(max_length=200)] = ""


class OperatorRequestOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    connector: int = Field(description="0: the whole charger")
    status: str = Field(description="what the charger answered: Accepted, or Scheduled (after its transaction)")
    requested_at: datetime
    in_effect_since: datetime | None = Field(description="null: Scheduled, its transaction has not ended yet")
    reason: str

    @classmethod
    def of(cls, span: OperatorSpan) -> OperatorRequestOut:
        return cls(connector=span.connector, status=span.status, requested_at=span.requested_at,
                   in_effect_since=span.started_at, reason=span.reason)


class AvailabilityOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    charger: str
    connector: int
    answer: str | None = Field(description="the charger's answer to this request (Accepted, Scheduled, Rejected)")
    inoperative: OperatorRequestOut | None = Field(
        description="the operator's request keeping this connector out of service, if any")


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else "?"


def _check(ctx: ApiContext, charger: str, connector: int) -> None:
    site = ctx.controller.site
    if not site.has_charger(charger):
        raise ApiError(404, "charger", f"no charger '{charger}' in the site")
    count = site.charger(charger).connectors
    if connector > count:
        raise ApiError(404, "connector", f"charger '{charger}' has connectors 1..{count} (0: the whole charger)")


@router.put("/chargers/{charger}/availability", responses=_ERRORS)
async def put_availability(ctx: Writer, charger: str, body: AvailabilityIn, request: Request) -> AvailabilityOut:
    """Send ChangeAvailability. Accepted: in effect from the next tick (brought forward); Scheduled: once the
    running transaction ends; Rejected: nothing changes (still a 200: the charger's answer is the result)."""
    _check(ctx, charger, body.connector)
    try:
        result = await ctx.controller.availability.request(charger, body.connector, body.state == "operative",
                                                          body.reason)
    except ChargerNotConnected as exc:
        raise ApiError(409, "charger", f"charger '{charger}' is not connected: nothing can be sent to it") from exc
    except ChargerTimeout as exc:
        raise ApiError(504, "charger", f"charger '{charger}' did not answer ChangeAvailability") from exc
    except ChargerError as exc:
        raise ApiError(502, "charger", f"charger '{charger}' refused ChangeAvailability: {exc.reason}") from exc
    log.info("availability charger=%s connector=%d state=%s answer=%s client=%s", charger, body.connector,
             body.state, result.status, _client(request))
    span = result.span
    return AvailabilityOut(charger=charger, connector=body.connector, answer=result.status,
                           inoperative=OperatorRequestOut.of(span) if span is not None else None)


@router.get("/chargers/{charger}/availability", responses=_ERRORS)
async def get_availability_requests(ctx: Reader, charger: str) -> list[AvailabilityOut]:
    """Per connector (0: the charger as a whole), the operator's request keeping it out of service, if any."""
    _check(ctx, charger, 0)
    operator = ctx.controller.monitor.operator
    out = []
    for connector in range(0, ctx.controller.site.charger(charger).connectors + 1):
        span = next((s for s in operator.spans if s.is_open and s.charger == charger and s.connector == connector),
                    None)
        out.append(AvailabilityOut(charger=charger, connector=connector, answer=None,
                                   inoperative=OperatorRequestOut.of(span) if span is not None else None))
    return out
