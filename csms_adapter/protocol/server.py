"""The OCPP websocket server: handshake admission, subprotocol choice, one link object per connection.

Admission happens before the websocket opens, in two steps. ``OcppServer._process_request`` applies the
stateful limits (connections per remote address → 503, failed-login lockout per address → 429); then
``check_handshake``, one pure function, applies the identity rules: the identity is the last path segment; an
identity not in the site file gets HTTP 404 unless ``ocpp.accept_unknown`` (then it is monitored, never
controlled); under security profiles 1 and 2 a site charger must present HTTP Basic credentials whose user is its
identity (A00.FR.204) → else 401; under profile 3 the verified client certificate's CN must be the identity →
else 403. The Authorization header and passwords are never logged (``log_redaction``).

Each connection's frames pass through ``frame_guard.GuardedConnection`` (malformed input, floods, idle links).
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
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import unquote, urlsplit

from ocpp.v16.enums import Action as Action16
from ocpp.v201.enums import Action as Action201
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from csms_adapter.protocol import events as ev
from csms_adapter.protocol import log_redaction, ocpp_tuning
from csms_adapter.protocol.counters import Reason, SecurityCounters
from csms_adapter.protocol.frame_guard import GuardedConnection, GuardLimits
from csms_adapter.protocol.identity import IDENTITY
from csms_adapter.protocol.link import LinkContext
from csms_adapter.protocol.message_stats import CountingConnection, MessageStats
from csms_adapter.protocol.ocpp16 import SUBPROTOCOL as OCPP16
from csms_adapter.protocol.ocpp16 import Ocpp16Link
from csms_adapter.protocol.ocpp201 import SUBPROTOCOL as OCPP201
from csms_adapter.protocol.ocpp201 import Ocpp201Link
from csms_adapter.protocol.tls import peer_common_name, server_context
from optimizer.domain import Charger, Site

log = logging.getLogger("depotctl.server")

# OCPP 2.1 is left out on purpose: ocpp 2.1.0 sends no reply to unhandled 2.1 actions and mis-serialises the
# per-phase profile fields (docs/architecture.md, "OCPP rules the code follows"). Clients offering ocpp2.1 and
# 1.6/2.0.1 still get one of those.
SUBPROTOCOLS: tuple[str, ...] = (OCPP201, OCPP16)
MAX_FRAME_BYTES = GuardLimits().max_frame_bytes
# Known action names per subprotocol: a CALL outside these is answered NotImplemented by the frame guard.
_KNOWN_ACTIONS = {
    OCPP16: frozenset(a.value for a in Action16),
    OCPP201: frozenset(a.value for a in Action201),
}
_REFUSAL_REASON = {HTTPStatus.NOT_FOUND: Reason.UNKNOWN_IDENTITY, HTTPStatus.UNAUTHORIZED: Reason.BAD_CREDENTIALS,
                   HTTPStatus.FORBIDDEN: Reason.CERT_MISMATCH}

Link = Ocpp16Link | Ocpp201Link


def close_info(connection: ServerConnection) -> tuple[str, int | None]:
    """Why a websocket ended, for the charger's history: who closed it, the code and the reason given."""
    protocol = connection.protocol
    received, sent = protocol.close_rcvd, protocol.close_sent
    if received is not None and (sent is None or protocol.close_rcvd_then_sent):
        text = f"closed by the charger ({received.code}{': ' + received.reason if received.reason else ''})"
        return text, received.code
    if sent is not None:
        text = f"closed by the controller ({sent.code}{': ' + sent.reason if sent.reason else ''})"
        return text, sent.code
    return "connection lost (no close frame)", 1006


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


_HEX_KEY = re.compile(rb"^(?:[0-9a-fA-F]{2}){8,20}$")  # a 1.6 AuthorizationKey as text: 16-20 bytes in hex


def password_forms(password: bytes) -> set[bytes]:
    """The texts a received password may stand for. A 1.6 AuthorizationKey is configured as hex digits and sent
    either as that text (any case) or as the raw key bytes (OCPP-J 1.6 §6.2.2; docs/security.md); passwords are
    stored as (the hash of) the lower-case hex text, as ``depotctl password`` makes them."""
    forms = {password}
    if _HEX_KEY.match(password):
        forms.add(password.lower())
    if 16 <= len(password) <= 20:
        forms.add(password.hex().encode())
    return forms


def _password_ok(charger: Charger, password: bytes, env: Mapping[str, str]) -> bool:
    """Constant-time comparison of every accepted form of ``password`` against the stored hash or secret."""
    forms = password_forms(password)
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


def check_handshake(site: Site, path: str, headers: Headers, env: Mapping[str, str], *,
                    peer_cn: str | None = None) -> Admission | Refusal:
    """Decide whether a websocket upgrade may proceed. The one place for identity rules. ``peer_cn`` is the
    subject CN of the client certificate TLS verified (profile 3)."""
    identity = identity_from_path(path)
    if identity is None:
        return Refusal(HTTPStatus.NOT_FOUND, "no valid charger identity in the path")
    if not site.has_charger(identity):
        if site.ocpp.accept_unknown:
            return Admission(identity, monitor_only=True)
        return Refusal(HTTPStatus.NOT_FOUND, "unknown charger identity")
    if site.ocpp.security_profile == 0:
        return Admission(identity, monitor_only=False)
    if site.ocpp.security_profile >= 3:
        # The chain was verified by TLS; what is left is binding the certificate to this identity (A00.FR.403-405).
        if peer_cn is None or not hmac.compare_digest(peer_cn.encode(), identity.encode()):
            return Refusal(HTTPStatus.FORBIDDEN, "client certificate is not this charger's")
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


class AddressGate:
    """Per remote address: a cap on open connections and a lockout after repeated failed logins (a guessed
    password must not be cheap to retry; CVE-2026-24445 was a CSMS without this)."""

    def __init__(self, limits: GuardLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}

    def locked_out(self, address: str) -> bool:
        failures = self._failures.get(address)
        if not failures:
            return False
        horizon = self.clock() - self.limits.auth_window_s
        while failures and failures[0] < horizon:
            failures.popleft()
        if not failures:
            del self._failures[address]
        return len(failures) >= self.limits.auth_failures_per_window

    def failed(self, address: str) -> None:
        failures = self._failures.setdefault(address, deque(maxlen=self.limits.auth_failures_per_window))
        failures.append(self.clock())


def _address(connection: ServerConnection) -> str:
    remote = connection.remote_address
    return str(remote[0]) if isinstance(remote, tuple) and remote else str(remote)


class OcppServer:
    """Accepts charger connections and runs one link per connection until it closes.

    ``make_context`` builds the link's dependencies; ``on_connected``/``on_disconnected`` tell the controller.
    ``counters`` counts what was refused, for the operator surface.
    """

    def __init__(
        self,
        site: Site,
        make_context: Callable[[Admission], LinkContext],
        on_connected: Callable[[Link, Admission], Awaitable[None]],
        on_disconnected: Callable[[Link], Awaitable[None]],
        env: Mapping[str, str] | None = None,
        limits: GuardLimits | None = None,
    ) -> None:
        self.site = site
        self._make_context = make_context
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._env = env if env is not None else os.environ
        self.limits = limits or GuardLimits()
        self.counters = SecurityCounters(frozenset(c.id for c in site.chargers))
        self.stats = MessageStats()  # every frame, by action (issue 6's /metrics); ``counters``: what was refused
        self._gate = AddressGate(self.limits)
        self._server: Server | None = None
        self.links: dict[str, Link] = {}

    @property
    def scheme(self) -> str:
        return "wss" if self.site.ocpp.security_profile >= 2 else "ws"

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port (useful with port 0). Raises ``TlsConfigError`` for bad TLS files."""
        log_redaction.install()
        ocpp_tuning.install()
        self._server = await serve(
            self._handle,
            host,
            port,
            ssl=server_context(self.site.ocpp.tls, self.site.ocpp.security_profile),
            subprotocols=[Subprotocol(p) for p in SUBPROTOCOLS],
            select_subprotocol=select_subprotocol,
            process_request=self._process_request,
            max_size=self.limits.max_frame_bytes,
            max_queue=16,
            ping_interval=20,
            ping_timeout=20,
            open_timeout=self.limits.open_timeout_s,
            compression=None if self.site.ocpp.compression == "none" else "deflate",
        )
        sockets = list(self._server.sockets)
        return int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def _refuse(self, connection: ServerConnection, status: HTTPStatus, reason: str, counted: Reason,
                identity: str | None) -> Response:
        self.counters.add(counted, identity)
        log.warning("refused charger=%s address=%s status=%d reason=%s", identity, _address(connection), status,
                    reason)
        response = connection.respond(status, reason + "\n")
        if status == HTTPStatus.UNAUTHORIZED:
            response.headers["WWW-Authenticate"] = 'Basic realm="ocpp", charset="UTF-8"'
        elif status in (HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE):
            response.headers["Retry-After"] = str(int(self.limits.auth_window_s))
        return response

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        address = _address(connection)
        identity = identity_from_path(request.path)
        assert self._server is not None
        # Open websockets from this address (websockets registers a connection once its handshake is done;
        # sockets still in the handshake are bounded by open_timeout instead).
        same_address = sum(1 for c in self._server.all_connections if _address(c) == address)
        if same_address >= self.limits.max_connections_per_address:
            return self._refuse(connection, HTTPStatus.SERVICE_UNAVAILABLE, "too many connections from this address",
                                Reason.ADDRESS_CAP, identity)
        if self._gate.locked_out(address):
            return self._refuse(connection, HTTPStatus.TOO_MANY_REQUESTS, "too many failed logins; retry later",
                                Reason.AUTH_LOCKOUT, identity)
        decision = check_handshake(self.site, request.path, request.headers, self._env,
                                   peer_cn=peer_common_name(connection.transport))
        if isinstance(decision, Refusal):
            if decision.status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
                self._gate.failed(address)
            return self._refuse(connection, decision.status, decision.reason, _REFUSAL_REASON[decision.status],
                                identity)
        return None

    def _count_rejected_values(self, ctx: LinkContext) -> None:
        sink, counters, charger_id = ctx.sink, self.counters, ctx.charger_id

        def counted(event: ev.Event) -> None:
            if isinstance(event, ev.RejectedValue):
                counters.add(Reason.REJECTED_VALUE, charger_id)
            sink(event)

        ctx.sink = counted

    async def _handle(self, connection: ServerConnection) -> None:
        # websockets does not hand process_request's result to the handler; the check is cheap and pure, so it
        # is simply repeated (and a refusal here can only mean the site changed in between).
        request = connection.request
        decision = check_handshake(self.site, request.path if request else "", request.headers if request else Headers(),
                                   self._env, peer_cn=peer_common_name(connection.transport))
        if isinstance(decision, Refusal) or connection.subprotocol is None:
            self.counters.add(Reason.NO_SUBPROTOCOL)
            await connection.close(code=1002, reason="no common OCPP subprotocol")
            return
        ctx = self._make_context(decision)
        self._count_rejected_values(ctx)
        idle_s = self.limits.idle_timeout_s or 3 * self.site.ocpp.heartbeat_s + 60
        # The counting wrapper sits under the guard so /metrics also sees the frames the guard refuses.
        version = "1.6" if connection.subprotocol == OCPP16 else "2.0.1"
        guarded = GuardedConnection(CountingConnection(connection, self.stats), decision.charger_id, version,
                                    _KNOWN_ACTIONS[connection.subprotocol], self.limits, self.counters, idle_s)
        link: Link = (Ocpp16Link if connection.subprotocol == OCPP16 else Ocpp201Link)(ctx, guarded)
        guarded.handled = frozenset(action for action, hooks in link.route_map.items() if "_on_action" in hooks)
        previous = self.links.get(decision.charger_id)
        self.links[decision.charger_id] = link
        if previous is not None:
            log.warning("charger=%s reconnected; closing the superseded connection", decision.charger_id)
            self.counters.add(Reason.SUPERSEDED, decision.charger_id)
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
            link.close_reason, link.close_code = close_info(connection)
            sent = connection.protocol.close_sent
            if sent is not None and sent.code == 1009:
                self.counters.add(Reason.FRAME_TOO_BIG, decision.charger_id)
            if self.links.get(decision.charger_id) is link:
                del self.links[decision.charger_id]
                await self._on_disconnected(link)
            log.info("disconnected charger=%s", decision.charger_id)
