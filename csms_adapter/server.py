"""The OCPP websocket server: handshake admission, subprotocol choice, one link object per connection.

Admission happens in ``check_handshake`` only (one function, so TLS client-certificate checks of security
profile 3 can be added there later): the identity is the last path segment; an identity not in the site file gets
HTTP 404 unless ``ocpp.accept_unknown`` (then it is monitored, never controlled); under security profile ≥ 1 a
site charger must present HTTP Basic credentials whose user is its identity (A00.FR.204) → else 401. The
Authorization header and passwords are never logged.

A second connection for an identity replaces the first only after it has passed admission.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from csms_adapter.link import LinkContext
from csms_adapter.ocpp16 import SUBPROTOCOL as OCPP16
from csms_adapter.ocpp16 import Ocpp16Link
from csms_adapter.ocpp201 import SUBPROTOCOL as OCPP201
from csms_adapter.ocpp201 import Ocpp201Link
from optimizer.domain import Charger, Site

log = logging.getLogger("depotctl.server")

# OCPP 2.1 is left out on purpose: ocpp 2.1.0 sends no reply to unhandled 2.1 actions and mis-serialises the
# per-phase profile fields (ocpp-notes §7.11). Clients offering ocpp2.1 and 1.6/2.0.1 still get one of those.
SUBPROTOCOLS: tuple[str, ...] = (OCPP201, OCPP16)
# identifierString (2.0.1 Part 4 §3.1.1) without ':' (the Basic-auth separator), at most 48 characters.
IDENTITY = re.compile(r"^[A-Za-z0-9*\-_=+|@.]{1,48}$")
MAX_FRAME_BYTES = 256 * 1024

Link = Ocpp16Link | Ocpp201Link


@dataclass(frozen=True, slots=True)
class Admission:
    charger_id: str
    monitor_only: bool


@dataclass(frozen=True, slots=True)
class Refusal:
    status: HTTPStatus
    reason: str


def identity_from_path(path: str) -> str | None:
    """The charger identity: last non-empty segment of the path (query ignored), percent-decoded."""
    segments = [s for s in urlsplit(path).path.split("/") if s]
    if not segments:
        return None
    identity = unquote(segments[-1])
    return identity if IDENTITY.match(identity) else None


def _basic_credentials(headers: Headers) -> tuple[str, bytes] | None:
    raw = headers.get("Authorization")
    if raw is None:
        return None
    scheme, _, token = raw.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    return user.decode("utf-8", errors="replace"), password


def _password_ok(charger: Charger, password: bytes, env: Mapping[str, str]) -> bool:
    """Constant-time check. 1.6 keys may arrive as raw bytes or as their hex text (ocpp-notes §4.1): both count."""
    forms = {password, password.hex().encode()}
    auth = charger.auth
    if auth is None:
        return False
    ok = False
    if auth.password_sha256 is not None:
        stored = auth.password_sha256.lower().encode()
        for form in forms:
            ok |= hmac.compare_digest(hashlib.sha256(form).hexdigest().encode(), stored)
    elif auth.password_env is not None:
        expected = env.get(auth.password_env)
        if expected:
            for form in forms:
                ok |= hmac.compare_digest(form, expected.encode())
    return ok


def check_handshake(site: Site, path: str, headers: Headers, env: Mapping[str, str]) -> Admission | Refusal:
    """Decide whether a websocket upgrade may proceed. The one place for admission rules."""
    identity = identity_from_path(path)
    if identity is None:
        return Refusal(HTTPStatus.NOT_FOUND, "no valid charger identity in the path")
    if not site.has_charger(identity):
        if site.ocpp.accept_unknown:
            return Admission(identity, monitor_only=True)
        return Refusal(HTTPStatus.NOT_FOUND, "unknown charger identity")
    if site.ocpp.security_profile == 0:
        return Admission(identity, monitor_only=False)
    credentials = _basic_credentials(headers)
    if credentials is None:
        return Refusal(HTTPStatus.UNAUTHORIZED, "basic credentials required")
    user, password = credentials
    user_ok = hmac.compare_digest(user.encode(), identity.encode())
    password_ok = _password_ok(site.charger(identity), password, env)
    if not (user_ok and password_ok):
        return Refusal(HTTPStatus.UNAUTHORIZED, "bad credentials")
    return Admission(identity, monitor_only=False)


def select_subprotocol(connection: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    """Honour the charger's order of preference; None lets the handler close (OCPP-J §3.2) instead of a 400."""
    return next((p for p in offered if p in SUBPROTOCOLS), None)


class OcppServer:
    """Accepts charger connections and runs one link per connection until it closes.

    ``make_context`` builds the link's dependencies; ``on_connected``/``on_disconnected`` tell the controller.
    """

    def __init__(
        self,
        site: Site,
        make_context: Callable[[Admission], LinkContext],
        on_connected: Callable[[Link, Admission], Awaitable[None]],
        on_disconnected: Callable[[Link], Awaitable[None]],
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.site = site
        self._make_context = make_context
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._env = env if env is not None else os.environ
        self._server: Server | None = None
        self.links: dict[str, Link] = {}

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port (useful with port 0)."""
        self._server = await serve(
            self._handle,
            host,
            port,
            subprotocols=[Subprotocol(p) for p in SUBPROTOCOLS],
            select_subprotocol=select_subprotocol,
            process_request=self._process_request,
            max_size=MAX_FRAME_BYTES,
            max_queue=16,
            ping_interval=20,
            ping_timeout=20,
        )
        sockets = list(self._server.sockets)
        return int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        decision = check_handshake(self.site, request.path, request.headers, self._env)
        if isinstance(decision, Refusal):
            identity = identity_from_path(request.path)
            log.warning("refused charger=%s status=%d reason=%s", identity, decision.status, decision.reason)
            response = connection.respond(decision.status, decision.reason + "\n")
            if decision.status == HTTPStatus.UNAUTHORIZED:
                response.headers["WWW-Authenticate"] = 'Basic realm="ocpp", charset="UTF-8"'
            return response
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        # websockets does not hand process_request's result to the handler; the check is cheap and pure, so it
        # is simply repeated (and a refusal here can only mean the site changed in between).
        decision = check_handshake(self.site, connection.request.path if connection.request else "",
                                   connection.request.headers if connection.request else Headers(), self._env)
        if isinstance(decision, Refusal) or connection.subprotocol is None:
            await connection.close(code=1002, reason="no common OCPP subprotocol")
            return
        ctx = self._make_context(decision)
        link: Link = (Ocpp16Link if connection.subprotocol == OCPP16 else Ocpp201Link)(ctx, connection)
        previous = self.links.get(decision.charger_id)
        self.links[decision.charger_id] = link
        if previous is not None:
            log.warning("charger=%s reconnected; closing the superseded connection", decision.charger_id)
            previous.mark_closed()
            ctx.supervisor.spawn(previous.close("superseded"), f"{decision.charger_id}:supersede")
        log.info("connected charger=%s ocpp=%s monitor_only=%s", decision.charger_id, link.ocpp_version,
                 decision.monitor_only)
        try:
            await self._on_connected(link, decision)
            await link.start()
        except ConnectionClosed:
            pass
        finally:
            link.mark_closed()
            if self.links.get(decision.charger_id) is link:
                del self.links[decision.charger_id]
                await self._on_disconnected(link)
            log.info("disconnected charger=%s", decision.charger_id)
