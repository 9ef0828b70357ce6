"""``HttpApi``: the HTTP side of the controller, in the controller's own event loop.

uvicorn serves the app on a socket bound here (so port 0 works and the bound port is known before serving);
its signal handling is switched off because the process (``depotctl run``) owns SIGINT/SIGTERM and stops the
controller, which stops this. A sampler task builds the dashboard state once per push interval, records the
site-power history and hands the state to every open event stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from datetime import timedelta

import uvicorn

from csms_adapter.control.control_loop import TickResult
from csms_adapter.control.controller import Controller, split_listen
from csms_adapter.http_api import schemas as s
from csms_adapter.http_api.app import build_app
from csms_adapter.http_api.auth import OperatorAuth
from csms_adapter.http_api.context import ApiContext
from csms_adapter.http_api.metrics import Metrics
from csms_adapter.http_api.routes_read import dashboard_state
from csms_adapter.tasks import cancel_and_wait

log = logging.getLogger("depotctl.http")


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the host process handles signals; see the module docstring


class HttpApi:
    def __init__(self, controller: Controller, listen: str, auth: OperatorAuth, *, push_interval_s: float = 1.0,
                 history_resolution: timedelta | None = None) -> None:
        self.host, self.port = split_listen(listen)
        self.push_interval_s = push_interval_s
        self.ctx = ApiContext(controller, auth, Metrics(controller))
        if history_resolution is not None:
            self.ctx.history.resolution = history_resolution
        self.app = build_app(self.ctx)
        self._server: _EmbeddedServer | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._sampler: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/"

    def on_tick(self, tick: TickResult) -> None:
        self.ctx.ticks.add(tick)
        self.ctx.metrics.observe_tick(tick)

    async def start(self) -> int:
        """Bind and serve; returns the bound port. Raises OSError when the address is taken."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(128)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(self.app, log_config=None, access_log=False, lifespan="off",
                                timeout_graceful_shutdown=2, ws="none")
        self._server = _EmbeddedServer(config)
        self._serve_task = asyncio.create_task(self._server.serve(sockets=[sock]), name="http-server")
        while not self._server.started:
            if self._serve_task.done():
                self._serve_task.result()  # raises what stopped it
                raise OSError(f"HTTP server on {self.host}:{self.port} stopped at start-up")
            await asyncio.sleep(0.01)
        self._sampler = asyncio.create_task(self._sample(), name="http-sampler")
        log.info("dashboard url=%s writes=%s", self.url, "on" if self.ctx.auth.writes_enabled else "off")
        return self.port

    async def stop(self) -> None:
        if self._sampler is not None:
            await cancel_and_wait([self._sampler])
        await self.ctx.broadcaster.close()
        if self._server is not None and self._serve_task is not None:
            self._server.should_exit = True
            # uvicorn ends within its graceful timeout; should it not, it is cancelled rather than waited for.
            grace_s = (self._server.config.timeout_graceful_shutdown or 2) + 3
            _done, pending = await asyncio.wait({self._serve_task}, timeout=grace_s)
            if pending:
                log.warning("HTTP server did not stop in time; cancelling it")
            await cancel_and_wait([self._serve_task])
        self._server = self._serve_task = self._sampler = None

    async def publish_now(self) -> s.DashboardState:
        state = dashboard_state(self.ctx)
        status = state.status
        self.ctx.history.record(s.SeriesPoint(time=status.time, site_power_kw=status.site_power_kw,
                                              grid_limit_kw=status.grid_limit_kw))
        await self.ctx.broadcaster.publish(state.model_dump_json())
        return state

    async def _sample(self) -> None:
        while True:
            try:
                await self.publish_now()
            except Exception:  # a display bug must never take the HTTP side (or the controller) down
                log.exception("dashboard state failed")
            await asyncio.sleep(self.push_interval_s)


def attach_http_api(controller: Controller, listen: str) -> HttpApi:
    """Give ``controller`` its dashboard and JSON API on ``listen`` (host:port, port 0 = any), started and stopped
    with it. Operator credentials come from the controller's environment."""
    api = HttpApi(controller, listen, OperatorAuth.from_env(controller.env))
    controller.tick_listeners.append(api.on_tick)
    controller.services.append(api)
    return api
