"""What the routes share: the controller, the auth settings, the recent history, the metrics, and the
broadcaster that fans one computed dashboard state out to every open event stream."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

from fastapi import Request

from csms_adapter.control.controller import Controller
from csms_adapter.http_api.auth import OperatorAuth
from csms_adapter.http_api.history import SiteHistory, TickLog
from csms_adapter.http_api.metrics import Metrics


class Broadcaster:
    """The latest dashboard state (JSON) with a version number; streams wait for a newer version. The state
    is computed once per push interval whatever the number of open dashboards."""

    def __init__(self) -> None:
        self.version = 0
        self.latest: str | None = None
        self.closed = False
        self._changed = asyncio.Condition()

    async def publish(self, payload: str) -> None:
        async with self._changed:
            self.version += 1
            self.latest = payload
            self._changed.notify_all()

    async def next(self, seen: int) -> tuple[int, str] | None:
        """The first state newer than version ``seen``; None once closed (the stream should end)."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.closed or (self.version > seen and self.latest is not None))
            if self.closed or self.latest is None:
                return None
            return self.version, self.latest

    async def close(self) -> None:
        async with self._changed:
            self.closed = True
            self._changed.notify_all()


@dataclass
class ApiContext:
    controller: Controller
    auth: OperatorAuth
    metrics: Metrics
    history: SiteHistory = field(default_factory=SiteHistory)
    ticks: TickLog = field(default_factory=TickLog)
    broadcaster: Broadcaster = field(default_factory=Broadcaster)

    def now(self) -> datetime:
        return self.controller.clock()


async def api_context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.api
    return ctx
