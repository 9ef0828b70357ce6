"""``depotctl fleet``: serve the fleet view until stopped (SIGINT/SIGTERM)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import uvicorn

from csms_adapter.control.controller import split_listen
from csms_adapter.fleet import DEFAULT_LISTEN
from csms_adapter.fleet.app import build_fleet_app
from csms_adapter.fleet.reader import FleetReader
from csms_adapter.http_api.auth import OperatorAuth

__all__ = ["DEFAULT_LISTEN", "bind", "serve"]


def bind(listen: str) -> socket.socket:
    """A listening socket on ``listen`` (port 0 = any); OSError names the address when it is taken."""
    host, port = split_listen(listen)
    sock = socket.create_server((host, port), reuse_port=False)
    sock.setblocking(False)
    return sock


async def serve(url: str, sock: socket.socket, on_ready: Callable[[str], None]) -> None:
    reader = FleetReader.open(url)
    try:
        app = build_fleet_app(reader, OperatorAuth.from_env(os.environ))
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        server = uvicorn.Server(config)  # uvicorn stops on SIGINT/SIGTERM itself
        host, port = sock.getsockname()[:2]
        on_ready(f"http://{host}:{port}/")
        await server.serve(sockets=[sock])
    finally:
        reader.close()
