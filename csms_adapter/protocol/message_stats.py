"""Counts of OCPP messages and errors by action, for ``/metrics``.

The server wraps each charger's websocket in a ``CountingConnection`` before the link sees it, so every frame in
both directions is counted without touching the version modules (which must stay thin translators). Only the
head of a frame is read (message type, unique id, action or error code), never the payload: frames may carry
secrets and a meter frame can be large. A CALLRESULT or CALLERROR carries no action, so the action of each
outstanding CALL is remembered by its unique id until the answer comes (bounded, so a charger that never answers
cannot grow it without end).
"""

from __future__ import annotations

import re
from collections import Counter, OrderedDict
from typing import Any

_HEAD = re.compile(r'^\s*\[\s*([234])\s*,\s*"((?:[^"\\]|\\.){0,64})"\s*(?:,\s*"([A-Za-z0-9_.]{1,64})")?')
_MAX_PENDING = 256  # outstanding CALLs remembered per connection
_KIND = {"2": "call", "3": "result", "4": "error"}


class MessageStats:
    """Process-wide counters: ``messages[(direction, action, kind)]`` and ``errors[(direction, action)]``.

    ``direction`` is ``in`` (charger → controller) or ``out``; ``kind`` is ``call``, ``result`` or ``error``; an
    error is a CALLERROR in either direction or a frame that is not OCPP-J at all (action ``malformed``)."""

    def __init__(self) -> None:
        self.messages: Counter[tuple[str, str, str]] = Counter()
        self.errors: Counter[tuple[str, str]] = Counter()

    def count(self, direction: str, action: str, kind: str) -> None:
        self.messages[(direction, action, kind)] += 1
        if kind == "error":
            self.errors[(direction, action)] += 1


class FrameCounter:
    """Counts the frames of one connection; keeps the actions of CALLs awaiting an answer, per direction."""

    def __init__(self, stats: MessageStats) -> None:
        self.stats = stats
        # CALLs sent by one side are answered by the other: answers going out match CALLs that came in.
        self._pending: dict[str, OrderedDict[str, str]] = {"in": OrderedDict(), "out": OrderedDict()}

    def frame(self, direction: str, raw: str | bytes) -> None:
        text = raw.decode("utf-8", "replace")[:200] if isinstance(raw, bytes) else raw[:200]
        head = _HEAD.match(text)
        if head is None:
            self.stats.count(direction, "malformed", "error")
            return
        kind, unique_id, action = _KIND[head.group(1)], head.group(2), head.group(3)
        if kind == "call":
            pending = self._pending[direction]
            pending[unique_id] = action or "unknown"
            while len(pending) > _MAX_PENDING:
                pending.popitem(last=False)
            self.stats.count(direction, action or "unknown", kind)
            return
        asked = self._pending["out" if direction == "in" else "in"].pop(unique_id, "unknown")
        self.stats.count(direction, asked, kind)


class CountingConnection:
    """A websocket connection that counts what passes through ``recv`` and ``send``; everything else (close,
    request, remote address, ...) is the wrapped connection's."""

    def __init__(self, connection: Any, stats: MessageStats) -> None:
        self._inner = connection
        self._counter = FrameCounter(stats)

    async def recv(self) -> Any:
        message = await self._inner.recv()
        self._counter.frame("in", message)
        return message

    async def send(self, message: Any) -> None:
        await self._inner.send(message)
        self._counter.frame("out", message)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
