"""How depotctl runs the ``ocpp`` library on a busy event loop: validation in place, key conversion cached.

``install()`` (called once by the OCPP server) makes two process-wide changes, both invisible on the wire:

- Schema validation runs where the message is handled instead of in the default thread pool
  (``ocpp.messages.ASYNC_VALIDATION``, the library's own switch). The pool hop only ever saved the first read of
  each schema file; it yields mid-message, so in a burst of a thousand meter values every answer waited for the
  whole burst, and the pool's threads fought the event loop for the GIL. The CPU spent validating is the same.
- ``camel_to_snake_case`` / ``snake_to_camel_case`` cache their result per key. The library rewrites every key of
  every payload, both ways, with regular expressions or a dozen string replacements per key: a third of the time
  of a MeterValues. Keys repeat (a few hundred names per version), and each key is converted by the library's own
  function, called on a one-key dict, so the result is the library's by construction. Keys longer than any OCPP
  name bypass the cache, and the cache is bounded, so a charger sending random keys cannot grow it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import ocpp.charge_point
import ocpp.messages

MAX_CACHED_KEY = 64  # the longest OCPP 1.6/2.0.1 property name has 39 characters
CACHED_KEYS = 4096

_library_to_snake = ocpp.charge_point.camel_to_snake_case
_library_to_camel = ocpp.charge_point.snake_to_camel_case


@lru_cache(maxsize=CACHED_KEYS)
def _cached_snake_key(key: str) -> str:
    return str(next(iter(_library_to_snake({key: None}))))


@lru_cache(maxsize=CACHED_KEYS)
def _cached_camel_key(key: str) -> str:
    return str(next(iter(_library_to_camel({key: None}))))


def _snake_key(key: Any) -> Any:
    if isinstance(key, str) and len(key) <= MAX_CACHED_KEY:
        return _cached_snake_key(key)
    return next(iter(_library_to_snake({key: None})))


def _camel_key(key: Any) -> Any:
    if isinstance(key, str) and len(key) <= MAX_CACHED_KEY:
        return _cached_camel_key(key)
    return next(iter(_library_to_camel({key: None})))


def camel_to_snake_case(data: Any) -> Any:
    """``ocpp.charge_point.camel_to_snake_case``, with each key's conversion cached."""
    if isinstance(data, dict):
        return {_snake_key(k): camel_to_snake_case(v) for k, v in data.items()}
    if isinstance(data, list):
        return [camel_to_snake_case(v) for v in data]
    return data


def snake_to_camel_case(data: Any) -> Any:
    """``ocpp.charge_point.snake_to_camel_case``, with each key's conversion cached."""
    if isinstance(data, dict):
        return {_camel_key(k): snake_to_camel_case(v) for k, v in data.items()}
    if isinstance(data, list):
        return [snake_to_camel_case(v) for v in data]
    return data


def install() -> None:
    """Apply both changes (idempotent)."""
    ocpp.messages.ASYNC_VALIDATION = False
    ocpp.charge_point.camel_to_snake_case = camel_to_snake_case
    ocpp.charge_point.snake_to_camel_case = snake_to_camel_case
