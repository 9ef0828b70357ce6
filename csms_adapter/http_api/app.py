"""The ASGI app: JSON API under ``/api``, the dashboard at ``/``, live updates at ``/api/events`` (server-sent
events), Prometheus metrics at ``/metrics``, the OpenAPI document at ``/openapi.json``.

FastAPI's interactive docs pages are off: they load their scripts from a CDN, and the depot's controller must
work on a network without internet access.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, Response
from fastapi.responses import FileResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST

from csms_adapter.http_api import (
    routes_availability,
    routes_limits,
    routes_monitoring,
    routes_read,
    routes_thermal,
    routes_write,
)
from csms_adapter.http_api.context import ApiContext
from csms_adapter.http_api.errors import install
from csms_adapter.http_api.guards import Reader

STATIC = Path(__file__).with_name("static")
RECONNECT_MS = 2000  # the browser's EventSource retry delay after the controller restarts


def build_app(ctx: ApiContext) -> FastAPI:
    app = FastAPI(
        title="depotctl",
        version="1",
        summary="EV depot site controller: live state, plans, operator inputs",
        docs_url=None,
        redoc_url=None,
    )
    app.state.api = ctx
    install(app)
    app.include_router(routes_read.router)
    app.include_router(routes_write.router)
    app.include_router(routes_limits.router)
    app.include_router(routes_monitoring.router)
    app.include_router(routes_thermal.router)
    app.include_router(routes_availability.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def dashboard(_ctx: Reader) -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/metrics", tags=["read"], response_class=Response,
             responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}})
    async def metrics(ctx: Reader) -> Response:
        """Prometheus metrics (docs/operations.md lists them)."""
        return Response(ctx.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/events", tags=["read"], response_class=StreamingResponse,
             responses={200: {"content": {"text/event-stream": {}},
                              "description": "`state` events, each a DashboardState as JSON"}})
    async def events(ctx: Reader) -> StreamingResponse:
        """Server-sent events: one ``state`` event (a ``DashboardState``) per push interval."""
        return StreamingResponse(_stream(ctx), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return app


async def _stream(ctx: ApiContext) -> AsyncIterator[str]:
    yield f"retry: {RECONNECT_MS}\n\n"
    seen = 0
    while True:
        update = await ctx.broadcaster.next(seen)
        if update is None:
            return  # the server is stopping: end the stream so shutdown does not wait on it
        seen, payload = update
        yield f"event: state\nid: {seen}\ndata: {payload}\n\n"
