"""A real HTTP receiver on 127.0.0.1 for the webhook tests: records each request with the emulated or wall time it
arrived, answers with scripted statuses."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    at: datetime | float  # what ``Receiver.clock`` read when it arrived

    def json(self) -> dict[str, object]:
        document: dict[str, object] = json.loads(self.body)
        return document


@dataclass
class Receiver:
    """A minimal HTTP/1.1 server (keep-alive, Content-Length bodies) that records requests and answers with the
    next status of ``statuses`` (then 200), or stalls for ``stall_s`` first."""

    statuses: list[int] = field(default_factory=list)
    stall_s: float = 0.0
    requests: list[Request] = field(default_factory=list)
    port: int = 0
    clock: Callable[[], datetime | float] = time.monotonic

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/T0KEN-in-path"

    def events(self) -> list[tuple[str, str, str]]:
        """(event, incident kind, charger) of every request, in arrival order."""
        out = []
        for request in self.requests:
            body = request.json()
            incident = body["incident"]
            assert isinstance(incident, dict)
            out.append((str(body["event"]), str(incident["kind"]), str(incident["charger"])))
        return out

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *lines = head.decode("latin-1").split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines if ln)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append(Request(request_line.split(" ")[1], headers, body, self.clock()))
                if self.stall_s:
                    await asyncio.sleep(self.stall_s)
                status = self.statuses.pop(0) if self.statuses else 200
                writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\n\r\nok".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def receiving(**kwargs: object) -> AsyncIterator[Receiver]:
    receiver = Receiver(**kwargs)  # type: ignore[arg-type]
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    receiver.port = server.sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1.0)
