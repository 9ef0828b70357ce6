"""The fleet view's HTTP side: a read-only JSON API and one dashboard page over ``FleetReader``.

Access follows the site dashboard's rule: reads are open from this machine (loopback) and need the operator
credentials (HTTP Basic, user ``operator``, ``DEPOTCTL_OPERATOR_PASSWORD``/``…_SHA256``) from anywhere else."""

from __future__ import annotations

from datetime import datetime
from importlib.resources import files
from typing import Annotated, Any

import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from csms_adapter.fleet.reader import ChargerView, FleetReader, SiteSummary
from csms_adapter.http_api.auth import OperatorAuth, is_loopback
from csms_adapter.store.engine import StoreError

_basic = HTTPBasic(auto_error=False, realm="depotctl fleet")
_CHALLENGE = {"WWW-Authenticate": 'Basic realm="depotctl fleet", charset="UTF-8"'}


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def site_json(s: SiteSummary) -> dict[str, Any]:
    return {"site": s.site, "chargers_configured": s.chargers_configured, "chargers_online": s.chargers_online,
            "sessions": s.sessions, "power_kw": s.power_kw, "limit_kw": s.limit_kw,
            "open_incidents": s.open_incidents, "last_seen": _iso(s.last_seen),
            "availability_ratio": s.availability_ratio}


def charger_json(c: ChargerView) -> dict[str, Any]:
    return {"id": c.id, "online": c.online, "ocpp_version": c.ocpp_version, "vendor": c.vendor, "model": c.model,
            "firmware": c.firmware, "last_seen": _iso(c.last_seen), "open_sessions": c.open_sessions,
            "availability_ratio": c.availability_ratio,
            "connectors": [{"connector": k.connector, "status": k.status, "updated_at": _iso(k.updated_at)}
                           for k in c.connectors]}


def build_fleet_app(reader: FleetReader, auth: OperatorAuth) -> FastAPI:
    app = FastAPI(title="depotctl fleet view", docs_url=None, redoc_url=None)

    async def may_read(request: Request,
                       credentials: Annotated[HTTPBasicCredentials | None, Depends(_basic)]) -> None:
        client = request.client.host if request.client is not None else None
        if is_loopback(client):
            return
        if credentials is not None and auth.check_credentials(credentials.username, credentials.password):
            return
        raise _Refused()

    class _Refused(Exception):
        pass

    @app.exception_handler(_Refused)
    async def _refused(_request: Request, _exc: _Refused) -> JSONResponse:
        return JSONResponse({"detail": "reads from outside this machine need the operator credentials"},
                            status_code=401, headers=_CHALLENGE)

    @app.exception_handler(StoreError)
    async def _store_down(_request: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse({"detail": f"database unavailable: {exc.reason}"}, status_code=503)

    reads = [Depends(may_read)]

    @app.get("/api/sites", dependencies=reads)
    async def sites() -> list[dict[str, Any]]:
        return [site_json(s) for s in await anyio.to_thread.run_sync(reader.sites)]

    @app.get("/api/sites/{site}", dependencies=reads)
    async def site(site: str) -> JSONResponse:
        found = await anyio.to_thread.run_sync(reader.site, site)
        if found is None:
            return JSONResponse({"detail": f"no site '{site}' in this database"}, status_code=404)
        summary, chargers = found
        return JSONResponse({**site_json(summary), "chargers": [charger_json(c) for c in chargers]})

    @app.get("/", dependencies=reads, response_class=HTMLResponse)
    async def page() -> str:
        return files("csms_adapter.fleet").joinpath("fleet.html").read_text(encoding="utf-8")

    return app
