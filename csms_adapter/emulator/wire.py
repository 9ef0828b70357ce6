"""Small helpers shared by the two dialects of the emulator."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from csms_adapter.emulator.clock import parse_ocpp_time

# The ocpp library logs every frame at INFO; the emulator gets its own logger so an operator can
# silence 1,000 emulated chargers without silencing the controller's own "ocpp" logger.
WIRE_LOG = logging.getLogger("csms_adapter.emulator.wire")


def call_action(raw_msg: str | bytes) -> str | None:
    """The action name if ``raw_msg`` is an OCPP CALL frame, else None (never raises)."""
    try:
        frame = json.loads(raw_msg)
    except ValueError:
        return None
    if isinstance(frame, list) and len(frame) >= 3 and frame[0] == 2:
        return str(frame[2])
    return None


def skip_incoming_validation(route_map: dict[str, dict[str, Any]]) -> None:
    """Turn off the ``ocpp`` library's schema check of every CALL the CSMS sends and of the emulator's answers
    (``route_map`` is per connection: the library builds one for each ChargePoint)."""
    for hooks in route_map.values():
        hooks["_skip_schema_validation"] = True


def opt_time(value: Any) -> datetime | None:
    return parse_ocpp_time(str(value)) if value else None


def number(value: Any) -> float:
    """A wire number (1.6 SetChargingProfile limits arrive as ``Decimal``) as float."""
    return float(value)
