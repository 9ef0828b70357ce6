"""Counters of refused, throttled and malformed traffic, for the operator surface (metrics, status page).

One ``SecurityCounters`` per OCPP server. Totals are kept per reason; per-charger counts only for identities in
the site file, so an attacker cycling through invented identities cannot grow memory. Everything runs on the
event loop, so plain counters suffice.
"""

from __future__ import annotations

from collections import Counter
from enum import StrEnum


class Reason(StrEnum):
    """Why a handshake, frame or value was refused (the label the operator surface shows)."""

    UNKNOWN_IDENTITY = "handshake_unknown_identity"  # 404
    BAD_CREDENTIALS = "handshake_bad_credentials"  # 401
    CERT_MISMATCH = "handshake_certificate_mismatch"  # 403: client certificate CN is another charger
    AUTH_LOCKOUT = "handshake_auth_lockout"  # 429: too many failed logins from one address
    ADDRESS_CAP = "handshake_address_cap"  # 503: too many connections from one address
    NO_SUBPROTOCOL = "handshake_no_subprotocol"
    SUPERSEDED = "connection_superseded"  # an authenticated reconnect replaced the old socket
    FRAME_TOO_BIG = "frame_too_big"  # websockets closed with 1009
    FRAME_BINARY = "frame_binary"
    FRAME_NOT_JSON = "frame_not_json"
    FRAME_NON_FINITE = "frame_nan_or_infinity"
    FRAME_NOT_OCPP = "frame_not_ocpp"  # valid JSON, not an OCPP-J message
    FRAME_BAD_MESSAGE_TYPE = "frame_bad_message_type"
    FRAME_UNEXPECTED_RESPONSE = "frame_unexpected_response"  # a CALLRESULT/CALLERROR for no call of ours
    UNKNOWN_ACTION = "call_unknown_action"
    UNSUPPORTED_ACTION = "call_unsupported_action"
    THROTTLED = "rate_throttled"
    RATE_CLOSED = "rate_closed"
    IDLE_CLOSED = "idle_closed"
    REJECTED_VALUE = "telemetry_rejected_value"


CALL_ERROR_PREFIX = "callerror_sent_"


class SecurityCounters:
    def __init__(self, known_chargers: frozenset[str] = frozenset()) -> None:
        self._known = known_chargers
        self.totals: Counter[str] = Counter()
        self.by_charger: dict[str, Counter[str]] = {}

    def add(self, reason: Reason | str, charger_id: str | None = None, n: int = 1) -> None:
        key = str(reason)
        self.totals[key] += n
        if charger_id is not None and charger_id in self._known:
            self.by_charger.setdefault(charger_id, Counter())[key] += n

    def call_error_sent(self, code: str, charger_id: str | None) -> None:
        """A CALLERROR went to a charger (ours or the library's schema check); ``code`` as on the wire."""
        self.add(CALL_ERROR_PREFIX + code, charger_id)

    def snapshot(self) -> dict[str, int]:
        """Totals, sorted by name (a copy)."""
        return dict(sorted(self.totals.items()))

    def of(self, charger_id: str) -> dict[str, int]:
        return dict(sorted(self.by_charger.get(charger_id, Counter()).items()))
