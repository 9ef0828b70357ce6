"""How depotctl runs the ``ocpp`` library on a busy event loop: validation in place and on schemas with their
references resolved, key conversion cached.

``install()`` (called once by the OCPP server and by each emulator process) makes five process-wide changes, all
invisible on the wire:

- Schema validation runs where the message is handled instead of in the default thread pool
  (``ocpp.messages.ASYNC_VALIDATION``, the library's own switch). The pool hop only ever saved the first read of
  each schema file; it yields mid-message, so in a burst of a thousand meter values every answer waited for the
  whole burst, and the pool's threads fought the event loop for the GIL. The CPU spent validating is the same.
- ``camel_to_snake_case`` / ``snake_to_camel_case`` cache their result per key. The library rewrites every key of
  every payload, both ways, with regular expressions or a dozen string replacements per key: a third of the time
  of a MeterValues. Keys repeat (a few hundred names per version), and each key is converted by the library's own
  function, called on a one-key dict, so the result is the library's by construction. Keys longer than any OCPP
  name bypass the cache, and the cache is bounded, so a charger sending random keys cannot grow it.
- Each schema is validated with its ``$ref`` pointers replaced by the definitions they name. The OCPP schemas
  are one file each with local, non-recursive definitions, so the schema means exactly the same; jsonschema
  resolves every ``$ref`` again at every use, which made up more than half the time of a 2.0.1 NotifyReport (a
  device report: tens of component/variable items, each a handful of references) and of most set-up answers. The
  library still picks, loads and caches the schema (and parses 1.6 decimals its way); a schema with a recursive
  reference, or one naming anything but a local definition, keeps the library's validator.
- A payload the schema found valid is remembered (by version, message type, action and the payload as canonical
  JSON) and not checked again: a boot storm sends every charger the same set-up requests (ChangeConfiguration,
  GetVariables, SetVariableMonitoring, ...) and identical chargers give the same answers, so most of a charger's
  set-up messages were checked hundreds of times over. Validity is a function of exactly that key, so the verdict
  is the library's; an invalid payload is never kept (it is checked, and refused, every time), and the memory is
  bounded in entry size and count. The three 1.6 messages the library re-reads with decimals before checking
  are always checked, so what the handlers get from them is unchanged.
- Two per-message chores of the library are done once instead of every time: the signature of a handler (which
  it inspects for every CALL handled, only to see whether the handler takes ``call_unique_id``) is looked up once
  per handler function, and a message dataclass is turned into a dict without first deep-copying every list of
  dicts in it (``dataclasses.asdict``'s copy, which the library then throws away: a 2.0.1 NotifyReport carries
  a few hundred). The dict is equal to the library's, value for value.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
from collections import OrderedDict
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


_library_get_validator = ocpp.messages.get_validator
# The library's validator (kept, so its id is never reused) -> the one used in its place.
_resolved: dict[int, tuple[Any, Any]] = {}
_LOCAL_REF = "#/definitions/"


class _Unresolvable(Exception):
    """A reference that is recursive or not a local definition: the schema keeps the library's validator."""


def _resolve(node: Any, definitions: dict[str, Any], expanding: tuple[str, ...]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if ref is not None:
            # Draft 4: a $ref object is replaced by its target; any keyword beside it is ignored.
            if not isinstance(ref, str) or not ref.startswith(_LOCAL_REF):
                raise _Unresolvable(ref)
            name = ref[len(_LOCAL_REF):]
            if name in expanding or name not in definitions:
                raise _Unresolvable(ref)
            return _resolve(definitions[name], definitions, (*expanding, name))
        return {key: _resolve(value, definitions, expanding) for key, value in node.items()
                if key != "definitions"}
    if isinstance(node, list):
        return [_resolve(value, definitions, expanding) for value in node]
    return node


def resolved_schema(schema: dict[str, Any]) -> dict[str, Any] | None:
    """``schema`` with every ``$ref`` replaced by the local definition it names (and ``definitions`` dropped);
    None when a reference is recursive or not a local definition."""
    definitions = schema.get("definitions")
    try:
        resolved = _resolve(schema, definitions if isinstance(definitions, dict) else {}, ())
    except _Unresolvable:
        return None
    return resolved if isinstance(resolved, dict) else None


def get_validator(message_type_id: int, action: str, ocpp_version: str, parse_float: Any = float) -> Any:
    """``ocpp.messages.get_validator``, on the same schema with its references resolved (``resolved_schema``)."""
    library = _library_get_validator(message_type_id, action, ocpp_version, parse_float=parse_float)
    known = _resolved.get(id(library))
    if known is None:
        schema = resolved_schema(library.schema) if isinstance(library.schema, dict) else None
        known = _resolved[id(library)] = (library, library if schema is None else ocpp.messages.Draft4Validator(schema))
    return known[1]


_library_validate_payload = ocpp.messages.validate_payload
VALID_PAYLOADS_KEPT = 1024
VALID_PAYLOAD_MAX_CHARS = 1024
# (version, message type, action, payload as canonical JSON) of payloads found valid, oldest first.
_valid_payloads: OrderedDict[tuple[str, int, str, str], None] = OrderedDict()
# The library re-reads these 1.6 payloads with decimals before it checks them (and hands that on): always checked.
_DECIMAL_PAYLOADS = frozenset({(2, "SetChargingProfile"), (2, "RemoteStartTransaction"), (3, "GetCompositeSchedule")})


def _payload_key(message: Any, ocpp_version: str) -> tuple[str, int, str, str] | None:
    kind, action = getattr(message, "message_type_id", None), getattr(message, "action", None)
    if not isinstance(kind, int) or not isinstance(action, str):
        return None
    if ocpp_version == "1.6" and (kind, action) in _DECIMAL_PAYLOADS:
        return None
    try:
        text = json.dumps(message.payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return None  # not plain JSON: the library decides, every time
    return (ocpp_version, kind, action, text) if len(text) <= VALID_PAYLOAD_MAX_CHARS else None


async def validate_payload(message: Any, ocpp_version: str) -> None:
    """``ocpp.messages.validate_payload``, skipped for a payload already found valid (``VALID_PAYLOADS_KEPT``)."""
    key = _payload_key(message, ocpp_version)
    if key is not None and key in _valid_payloads:
        _valid_payloads.move_to_end(key)
        return
    await _library_validate_payload(message, ocpp_version)  # raises for an invalid payload: never kept
    if key is not None:
        _valid_payloads[key] = None
        while len(_valid_payloads) > VALID_PAYLOADS_KEPT:
            _valid_payloads.popitem(last=False)


_library_serialize_as_dict = ocpp.charge_point.serialize_as_dict
_ATOMIC = (str, int, float, bool, type(None))


def _plain(value: Any) -> Any:
    """``dataclasses.asdict``'s conversion of a value (dataclasses to dicts, containers rebuilt, anything else
    deep-copied), without copying what cannot change (strings, numbers, None)."""
    if isinstance(value, _ATOMIC):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*[_plain(v) for v in value])
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return type(value)((_plain(k), _plain(v)) for k, v in value.items())
    return copy.deepcopy(value)


def serialize_as_dict(message: Any) -> dict[str, Any]:
    """``ocpp.charge_point.serialize_as_dict``: the message dataclass as a dict, nested dataclasses as dicts; the
    items of a list field that are not dataclasses are the message's own (as the library's are)."""
    out: dict[str, Any] = {}
    for field in dataclasses.fields(message):
        value = getattr(message, field.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out[field.name] = serialize_as_dict(value)
        elif isinstance(value, list):
            out[field.name] = [serialize_as_dict(item) if dataclasses.is_dataclass(item)
                               and not isinstance(item, type) else item for item in value]
        else:
            out[field.name] = _plain(value)
    return out


@lru_cache(maxsize=1024)
def _signature_of(function: Any, bound: bool) -> inspect.Signature:
    signature = inspect.signature(function)
    if bound:  # a bound method's signature is its function's without the first parameter, whatever the instance
        return signature.replace(parameters=list(signature.parameters.values())[1:])
    return signature


class _InspectForHandlers:
    """What ``ocpp.charge_point`` uses of ``inspect``, with a handler's signature looked up once per function."""

    isawaitable = staticmethod(inspect.isawaitable)

    @staticmethod
    def signature(handler: Any) -> inspect.Signature:
        function = getattr(handler, "__func__", None)
        try:
            if function is not None and getattr(handler, "__self__", None) is not None:
                return _signature_of(function, True)
            return _signature_of(handler, False)
        except TypeError:  # unhashable: not worth remembering
            return inspect.signature(handler)

    def __getattr__(self, name: str) -> Any:
        return getattr(inspect, name)


def install() -> None:
    """Apply the five changes (idempotent)."""
    ocpp.messages.ASYNC_VALIDATION = False
    ocpp.messages.get_validator = get_validator
    ocpp.charge_point.validate_payload = validate_payload
    ocpp.charge_point.serialize_as_dict = serialize_as_dict
    ocpp.charge_point.inspect = _InspectForHandlers()
    ocpp.charge_point.camel_to_snake_case = camel_to_snake_case
    ocpp.charge_point.snake_to_camel_case = snake_to_camel_case
