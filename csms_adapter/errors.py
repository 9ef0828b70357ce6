"""Errors raised when talking to a charger.

    DepotError (optimizer.errors)
    └── ChargerError           a call to a charger failed: it answered with a CallError, broke the schema,
        │                      or the connection is gone
        ├── ChargerTimeout     no answer within ``ocpp.call_timeout_s``
        └── ProfileRejected    the charger answered Rejected / NotSupported to a charging profile

Library exceptions (ocpp ``OCPPError``, ``asyncio.TimeoutError``, websockets ``ConnectionClosed``) are mapped to
these once, in ``csms_adapter.links``, with ``raise ... from exc``.
"""

from __future__ import annotations

from optimizer.errors import DepotError


class ChargerError(DepotError):
    """A call to charger ``charger_id`` failed."""

    def __init__(self, charger_id: str, action: str, reason: str) -> None:
        self.charger_id = charger_id
        self.action = action
        self.reason = reason
        super().__init__(f"{charger_id}: {action}: {reason}")


class ChargerTimeout(ChargerError):
    """The charger did not answer in time."""


class ProfileRejected(ChargerError):
    """The charger refused a charging profile (status Rejected or NotSupported, or a NotSupported CallError)."""

    def __init__(self, charger_id: str, action: str, reason: str, *, not_supported: bool = False) -> None:
        self.not_supported = not_supported
        super().__init__(charger_id, action, reason)
