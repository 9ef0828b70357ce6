"""The cached key conversion gives exactly what the library's does, for every property name in the bundled schemas
and for arbitrary (hostile) structures; the tuning is what the server installs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ocpp.charge_point
import ocpp.messages
from hypothesis import given
from hypothesis import strategies as st

from csms_adapter.protocol import ocpp_tuning
from csms_adapter.protocol.ocpp_tuning import MAX_CACHED_KEY, camel_to_snake_case, snake_to_camel_case

SCHEMAS = Path(ocpp.charge_point.__file__).parent


@contextmanager
def library_functions() -> Iterator[None]:
    """The library's own functions, recursion included (once installed, their recursion would reach ours)."""
    installed = ocpp.charge_point.camel_to_snake_case, ocpp.charge_point.snake_to_camel_case
    ocpp.charge_point.camel_to_snake_case = ocpp_tuning._library_to_snake
    ocpp.charge_point.snake_to_camel_case = ocpp_tuning._library_to_camel
    try:
        yield
    finally:
        ocpp.charge_point.camel_to_snake_case, ocpp.charge_point.snake_to_camel_case = installed


def library_to_snake(data: Any) -> Any:
    with library_functions():
        return ocpp_tuning._library_to_snake(data)


def library_to_camel(data: Any) -> Any:
    with library_functions():
        return ocpp_tuning._library_to_camel(data)


def property_names(node: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                names |= set(value)
            names |= property_names(value)
    elif isinstance(node, list):
        for value in node:
            names |= property_names(value)
    return names


def all_property_names() -> set[str]:
    names: set[str] = set()
    for version in ("v16", "v201", "v21"):
        for path in (SCHEMAS / version / "schemas").glob("*.json"):
            names |= property_names(json.loads(path.read_text(encoding="utf-8-sig")))
    return names


def test_every_schema_property_name_converts_as_the_library_converts_it() -> None:
    names = all_property_names()
    assert len(names) > 300 and max(len(n) for n in names) <= MAX_CACHED_KEY
    camel = {name: None for name in names}
    assert camel_to_snake_case(camel) == library_to_snake(camel)
    snake = library_to_snake(camel)
    assert snake_to_camel_case(snake) == library_to_camel(snake)


json_keys = st.one_of(st.text(max_size=12), st.text(alphabet="aAbBsScCoO_vV2xXgGuUrRlL", max_size=90))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(json_keys, children, max_size=5),
    max_leaves=30,
)


@given(json_values)
def test_any_payload_converts_as_the_library_converts_it(payload: Any) -> None:
    assert camel_to_snake_case(payload) == library_to_snake(payload)
    assert snake_to_camel_case(payload) == library_to_camel(payload)


def test_install_switches_the_library_to_in_place_validation_and_cached_conversion() -> None:
    ocpp_tuning.install()
    assert ocpp.messages.ASYNC_VALIDATION is False
    assert ocpp.charge_point.camel_to_snake_case is camel_to_snake_case
    assert ocpp.charge_point.snake_to_camel_case is snake_to_camel_case
