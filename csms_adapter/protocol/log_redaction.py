"""Keeps secrets out of the logs (docs/security.md, "What is logged").

The ``ocpp`` library logs every frame at INFO ("send [...]", "receive message [...]"), including 1.6
``ChangeConfiguration`` of ``AuthorizationKey`` and 2.0.1 ``SetVariables`` of ``BasicAuthPassword``;
websockets logs the HTTP request headers, ``Authorization`` included, at DEBUG. ``SecretRedactor`` rewrites
such records before any handler sees them. A logging filter on a logger only runs for records created on that
very logger (not for ones propagated from children), so ``install()`` puts it on each logger that logs frames.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

REDACTED = "[redacted]"
# Configuration keys / variables whose value is a secret (1.6 keys; 2.0.1 SecurityCtrlr variables). The security
# profile is not a secret but is listed so an attacker reading logs cannot learn which profile to downgrade to.
SECRET_NAMES = frozenset(k.lower() for k in (
    "AuthorizationKey", "BasicAuthPassword", "SecurityProfile", "password", "passwordString", "privateKey",
    "authorization", "certificate_private_key",
))
FRAME_LOGGERS = ("ocpp", "depotctl.ocpp.wire", "csms_adapter.emulator.wire", "websockets.server",
                 "websockets.client", "websockets")

_HEADER = re.compile(r"(?i)(authorization\s*[:=]\s*)(?:basic|bearer)?\s*[^\s'\",}\]]+")
# For text that is not a parseable frame (Python reprs in library error messages): a quoted secret name used as a
# key, or followed closely by a value entry.
_NAMES = "|".join(re.escape(n) for n in sorted(SECRET_NAMES))
_LOOSE = (
    re.compile(r"(?i)([\"'](?:" + _NAMES + r")[\"']\s*:\s*[\"'])[^\"']*"),
    re.compile(r"(?i)([\"'](?:" + _NAMES + r")[\"'][^\]]{0,160}?[\"'](?:value|attributeValue|attribute_value)[\"']"
               r"\s*:\s*[\"'])[^\"']*"),
)


def _secret_name(value: object) -> bool:
    return isinstance(value, str) and value.lower() in SECRET_NAMES


def _scrub(node: Any) -> tuple[Any, bool]:
    """(node with secret values replaced, whether anything changed)."""
    changed = False
    if isinstance(node, list):
        out_list = []
        for item in node:
            new, c = _scrub(item)
            out_list.append(new)
            changed |= c
        return out_list, changed
    if not isinstance(node, dict):
        return node, False
    out: dict[str, Any] = {}
    # {"key": "AuthorizationKey", "value": ...} (1.6) and {"variable": {"name": "BasicAuthPassword"},
    # "attributeValue": ...} (2.0.1)
    variable = node.get("variable")
    names = [node.get("key"), node.get("name"), variable.get("name") if isinstance(variable, dict) else None]
    secret_entry = any(_secret_name(n) for n in names)
    for key, value in node.items():
        if _secret_name(key) or (secret_entry and key in ("value", "attributeValue", "attribute_value")):
            out[key] = REDACTED
            changed = True
        else:
            out[key], c = _scrub(value)
            changed |= c
    return out, changed


def redact(text: str) -> str:
    """``text`` with secret values and Authorization headers replaced by ``[redacted]``."""
    text = _HEADER.sub(lambda m: m.group(1) + REDACTED, text)
    start, end = text.find("["), text.rfind("]")
    if 0 <= start < end:
        try:
            frame = json.loads(text[start:end + 1])
        except (ValueError, RecursionError):
            frame = None
        if frame is not None:
            scrubbed, changed = _scrub(frame)
            if changed:
                text = text[:start] + json.dumps(scrubbed, separators=(",", ":")) + text[end + 1:]
    for pattern in _LOOSE:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


class SecretRedactor(logging.Filter):
    """Rewrites a record's message (and drops its args) when it carries a secret; never drops the record.

    The args are checked too: websockets logs frames as objects whose text is shortened in the middle, so a
    secret can be cut (half a key still leaks) while the full frame stays in ``record.args`` for any handler
    that dumps them. Such a record is replaced by a notice."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        cleaned = redact(message)
        args_text = repr(record.args) if record.args else ""
        if args_text and redact(args_text) != args_text and cleaned == message:
            record.msg, record.args = f"[{record.name} record withheld: it carried a secret]", None
        elif cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_INSTALLED = SecretRedactor()


def install(names: tuple[str, ...] = FRAME_LOGGERS) -> None:
    """Attach the redactor to the frame-logging loggers (idempotent)."""
    for name in names:
        logger = logging.getLogger(name)
        if _INSTALLED not in logger.filters:
            logger.addFilter(_INSTALLED)
