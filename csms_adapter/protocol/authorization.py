"""Whether an id token may charge: one rule for Authorize, StartTransaction and TransactionEvent, 1.6 and 2.0.1.

``ocpp.authorize: any`` accepts every token (commissioning, or chargers with their own access control): depotctl
manages energy, and the token only identifies the vehicle. ``roster`` accepts the tokens of the fleet roster only:
a token of no vehicle is ``Invalid``, a vehicle marked ``blocked`` gives ``Blocked``, one past its ``valid_until``
gives ``Expired``. The answer carries the expiry, so a charger's authorization cache forgets the token in time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from optimizer.domain import Site


class TokenStatus(StrEnum):
    """The statuses both versions share (1.6 AuthorizationStatus, 2.0.1 AuthorizationStatusEnumType)."""

    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"


@dataclass(frozen=True, slots=True)
class TokenDecision:
    status: TokenStatus
    expires: datetime | None = None  # the roster's valid_until, when it has one

    @property
    def accepted(self) -> bool:
        return self.status is TokenStatus.ACCEPTED


ACCEPT_ALL = TokenDecision(TokenStatus.ACCEPTED)


def decide(site: Site, token: str, now: datetime) -> TokenDecision:
    """The decision for ``token`` at ``now`` (aware UTC) under the site's ``ocpp.authorize``."""
    if site.ocpp.authorize == "any":
        return ACCEPT_ALL
    vehicle = site.vehicle_for_tag(token) if token else None
    if vehicle is None:
        return TokenDecision(TokenStatus.INVALID)
    if vehicle.blocked:
        return TokenDecision(TokenStatus.BLOCKED, vehicle.valid_until)
    if vehicle.valid_until is not None and now >= vehicle.valid_until:
        return TokenDecision(TokenStatus.EXPIRED, vehicle.valid_until)
    return TokenDecision(TokenStatus.ACCEPTED, vehicle.valid_until)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def id_tag_info(decision: TokenDecision) -> dict[str, Any]:
    """1.6 ``idTagInfo`` (snake_case, as the library's call_result dataclasses take it)."""
    info: dict[str, Any] = {"status": decision.status.value}
    if decision.expires is not None:
        info["expiry_date"] = _iso(decision.expires)
    return info


def id_token_info(decision: TokenDecision) -> dict[str, Any]:
    """2.0.1 ``idTokenInfo`` (snake_case)."""
    info: dict[str, Any] = {"status": decision.status.value}
    if decision.expires is not None:
        info["cache_expiry_date_time"] = _iso(decision.expires)
    return info
