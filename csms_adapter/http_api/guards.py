"""Route dependencies that enforce ``auth``'s rules: open reads on loopback, operator credentials otherwise and
for every write."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from csms_adapter.http_api.auth import PASSWORD_ENV, PASSWORD_SHA256_ENV, is_loopback
from csms_adapter.http_api.context import ApiContext, api_context
from csms_adapter.http_api.errors import ApiError

_basic = HTTPBasic(auto_error=False, realm="depotctl", description="user `operator`, the operator password")
_CHALLENGE = {"WWW-Authenticate": 'Basic realm="depotctl", charset="UTF-8"'}

Ctx = Annotated[ApiContext, Depends(api_context)]
Credentials = Annotated[HTTPBasicCredentials | None, Depends(_basic)]


def _authorised(ctx: ApiContext, credentials: HTTPBasicCredentials | None) -> bool:
    return credentials is not None and ctx.auth.check_credentials(credentials.username, credentials.password)


async def reader(request: Request, ctx: Ctx, credentials: Credentials) -> ApiContext:
    client = request.client.host if request.client is not None else None
    if is_loopback(client) or _authorised(ctx, credentials):
        return ctx
    raise ApiError(401, "", "reads from outside this machine need the operator credentials", _CHALLENGE)


async def writer(ctx: Ctx, credentials: Credentials) -> ApiContext:
    if not ctx.auth.writes_enabled:
        raise ApiError(403, "", f"writes are disabled: set {PASSWORD_ENV} or {PASSWORD_SHA256_ENV} for the controller")
    if not _authorised(ctx, credentials):
        raise ApiError(401, "", "operator credentials required (HTTP Basic, user 'operator')", _CHALLENGE)
    return ctx


Reader = Annotated[ApiContext, Depends(reader)]
Writer = Annotated[ApiContext, Depends(writer)]
