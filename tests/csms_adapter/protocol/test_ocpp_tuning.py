"""The cached key conversion gives exactly what the library's does, for every property name in the bundled schemas
and for arbitrary (hostile) structures; the tuning is what the server installs."""

from __future__ import annotations

import contextlib
import inspect
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ocpp.charge_point
import ocpp.messages
from hypothesis import given
from hypothesis import strategies as st

from csms_adapter.protocol import ocpp_tuning
from csms_adapter.protocol.ocpp_tuning import (
    MAX_CACHED_KEY,
    camel_to_snake_case,
    serialize_as_dict,
    snake_to_camel_case,
)

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


# ------------------------------------------------------------------------------------ schemas, references resolved


def schema_files() -> list[Path]:
    return sorted(p for version in ("v16", "v201") for p in (SCHEMAS / version / "schemas").glob("*.json"))


def first_error(validator: Any, payload: Any) -> tuple[str, tuple[Any, ...], str] | None:
    """What ``validate`` raises (the first error): the keyword the library maps to an OCPP error, where, and why."""
    for error in validator.iter_errors(payload):
        return str(error.validator), tuple(error.absolute_path), error.message
    return None


def all_errors(validator: Any, payload: Any) -> list[tuple[str, tuple[Any, ...], str]]:
    return sorted((str(e.validator), tuple(map(str, e.absolute_path)), e.message)
                  for e in validator.iter_errors(payload))


def test_every_bundled_schema_resolves_to_one_without_references() -> None:
    for path in schema_files():
        schema = json.loads(path.read_text(encoding="utf-8-sig"))
        resolved = ocpp_tuning.resolved_schema(schema)
        assert resolved is not None, path.name
        assert '"$ref"' not in json.dumps(resolved, default=str), path.name


def test_a_recursive_or_remote_reference_keeps_the_library_validator() -> None:
    recursive = {"definitions": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/definitions/Node"}}}},
                 "$ref": "#/definitions/Node"}
    remote = {"properties": {"a": {"$ref": "http://example.com/schema.json"}}}
    missing = {"properties": {"a": {"$ref": "#/definitions/Nowhere"}}}
    assert ocpp_tuning.resolved_schema(recursive) is None
    assert ocpp_tuning.resolved_schema(remote) is None
    assert ocpp_tuning.resolved_schema(missing) is None


def library_and_resolved(path: Path) -> tuple[Any, Any]:
    schema = json.loads(path.read_text(encoding="utf-8-sig"))
    resolved = ocpp_tuning.resolved_schema(schema)
    assert resolved is not None
    return ocpp.messages.Draft4Validator(schema), ocpp.messages.Draft4Validator(resolved)


def garbage_for(schema: dict[str, Any]) -> list[Any]:
    """Payloads a hostile or broken charger might send for this schema: wrong shapes, each required property of
    the wrong type, an unknown property, overlong strings."""
    required = list(schema.get("required", []))
    probes: list[Any] = [{}, [], "text", 3, None, {"unknownProperty": 1}]
    for bad in (None, "x" * 600, -1, 1.5, [], {}, {"nested": [1, "a"]}, True):
        probes.append({name: bad for name in required})
        probes.append({**{name: bad for name in required}, "customData": {"vendorId": 7}})
    return probes


def test_resolved_schemas_find_the_same_first_error_as_the_library_for_garbage() -> None:
    for path in schema_files():
        library, resolved = library_and_resolved(path)
        for payload in garbage_for(library.schema):
            assert first_error(resolved, payload) == first_error(library, payload), (path.name, payload)
            assert all_errors(resolved, payload) == all_errors(library, payload), (path.name, payload)


@given(st.sampled_from(schema_files()), st.dictionaries(json_keys, json_values, max_size=6))
def test_resolved_schemas_judge_any_payload_as_the_library_does(path: Path, payload: dict[str, Any]) -> None:
    library, resolved = library_and_resolved(path)
    assert first_error(resolved, payload) == first_error(library, payload)


def test_resolved_schemas_accept_real_messages_and_refuse_broken_ones_as_the_library_does() -> None:
    from csms_adapter.emulator.monitoring201 import inventory

    report = snake_to_camel_case({"request_id": 7, "generated_at": "2026-12-07T08:00:00.000Z", "seq_no": 0,
                                  "tbc": False, "report_data": inventory({("SampledDataCtrlr", "Enabled"): "true"},
                                                                         [], {1: False, 2: True}, 24.5)})
    broken = json.loads(json.dumps(report))
    broken["reportData"][1]["variableAttribute"][0]["mutability"] = "Sometimes"
    too_long = json.loads(json.dumps(report))
    too_long["reportData"][0]["component"]["name"] = "C" * 51
    cases = [("v201/schemas/NotifyReportRequest.json", report, True),
             ("v201/schemas/NotifyReportRequest.json", broken, False),
             ("v201/schemas/NotifyReportRequest.json", too_long, False),
             ("v16/schemas/BootNotification.json", {"chargePointVendor": "V", "chargePointModel": "M"}, True),
             ("v16/schemas/BootNotification.json", {"chargePointVendor": "V" * 21, "chargePointModel": "M"}, False)]
    for name, payload, valid in cases:
        library, resolved = library_and_resolved(SCHEMAS / name)
        assert (first_error(library, payload) is None) is valid, name
        assert first_error(resolved, payload) == first_error(library, payload), name


def test_installed_validation_raises_the_ocpp_error_the_library_raises() -> None:
    from ocpp.exceptions import FormatViolationError, TypeConstraintViolationError
    from ocpp.messages import Call, _validate_payload

    ocpp_tuning.install()
    assert ocpp.messages.get_validator is ocpp_tuning.get_validator
    good = Call("1", "BootNotification", {"chargingStation": {"model": "M", "vendorName": "V"}, "reason": "PowerUp"})
    _validate_payload(good, "2.0.1")
    bad_type = Call("2", "BootNotification", {"chargingStation": {"model": 5, "vendorName": "V"}, "reason": "PowerUp"})
    extra = Call("3", "BootNotification", {"chargingStation": {"model": "M", "vendorName": "V"}, "reason": "PowerUp",
                                           "surprise": 1})
    for message, error in ((bad_type, TypeConstraintViolationError), (extra, FormatViolationError)):
        try:
            _validate_payload(message, "2.0.1")
        except error:
            pass
        else:
            raise AssertionError(f"{message.payload} was accepted")


def test_installed_validation_keeps_the_library_decimal_reading_of_1_6_profile_limits() -> None:
    from ocpp.exceptions import FormatViolationError
    from ocpp.messages import Call, _validate_payload

    ocpp_tuning.install()

    def profile(limit: float) -> Call:
        schedule = {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]}
        return Call("1", "SetChargingProfile", {"connectorId": 0, "csChargingProfiles": {
            "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "ChargePointMaxProfile",
            "chargingProfileKind": "Absolute", "chargingSchedule": schedule}})

    _validate_payload(profile(21.4), "1.6")  # 21.4 is a float just off a multiple of 0.1: valid as a decimal
    try:
        _validate_payload(profile(21.45), "1.6")
    except FormatViolationError:
        pass
    else:
        raise AssertionError("21.45 A is not a multiple of 0.1 and was accepted")


# ------------------------------------------------------------------------------------ payloads found valid


@contextmanager
def counted_library_checks() -> Iterator[list[str]]:
    """Count the library's own checks (under the remembered verdicts) for the duration."""
    seen: list[str] = []
    library = ocpp_tuning._library_validate_payload

    async def counting(message: Any, version: str) -> None:
        seen.append(message.action)
        await library(message, version)

    ocpp_tuning._library_validate_payload = counting
    ocpp_tuning._valid_payloads.clear()
    try:
        yield seen
    finally:
        ocpp_tuning._library_validate_payload = library
        ocpp_tuning._valid_payloads.clear()


async def test_a_payload_found_valid_is_not_checked_again_and_an_invalid_one_always_is() -> None:
    from ocpp.exceptions import FormatViolationError
    from ocpp.messages import Call, CallResult

    ocpp_tuning.install()
    assert ocpp.charge_point.validate_payload is ocpp_tuning.validate_payload
    with counted_library_checks() as checks:
        for _ in range(3):  # every charger of a boot storm gets this one
            await ocpp_tuning.validate_payload(Call("1", "ChangeConfiguration", {"key": "K", "value": "1"}), "1.6")
            await ocpp_tuning.validate_payload(CallResult("1", {"status": "Accepted"}, "ChangeConfiguration"), "1.6")
        assert checks == ["ChangeConfiguration", "ChangeConfiguration"]
        bad = Call("2", "ChangeConfiguration", {"key": "K", "value": "1", "surprise": True})
        for _ in range(2):
            try:
                await ocpp_tuning.validate_payload(bad, "1.6")
            except FormatViolationError:
                pass
            else:
                raise AssertionError("an invalid payload was let through")
        assert checks.count("ChangeConfiguration") == 4  # the invalid one was checked both times
        # The same payload under another action, version or message type is a different question.
        await ocpp_tuning.validate_payload(CallResult("3", {"status": "Accepted"}, "ClearChargingProfile"), "1.6")
        await ocpp_tuning.validate_payload(CallResult("4", {"status": "Accepted"}, "ClearChargingProfile"), "2.0.1")
        assert checks[-2:] == ["ClearChargingProfile", "ClearChargingProfile"]


async def test_decimal_read_large_and_non_json_payloads_are_checked_every_time() -> None:
    from ocpp.messages import Call, CallResult

    composite = {"status": "Accepted", "connectorId": 0, "scheduleStart": "2026-12-07T08:00:00.000Z",
                 "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0,
                                                                                            "limit": 16.1}]}}
    report = snake_to_camel_case({"request_id": 1, "generated_at": "2026-12-07T08:00:00.000Z", "seq_no": 0,
                                  "report_data": [{"component": {"name": f"C{i}"}, "variable": {"name": "V"},
                                                   "variable_attribute": [{"value": "x" * 40}]} for i in range(30)]})
    with counted_library_checks() as checks:
        for _ in range(2):
            message = CallResult("1", dict(composite), "GetCompositeSchedule")
            await ocpp_tuning.validate_payload(message, "1.6")
            assert type(message.payload["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"]).__name__ == "Decimal"
            await ocpp_tuning.validate_payload(Call("2", "NotifyReport", report), "2.0.1")
            with contextlib.suppress(Exception):  # what the library makes of it; here only that it was asked
                await ocpp_tuning.validate_payload(Call("3", "Heartbeat", {"x": float("nan")}), "1.6")
        assert checks == ["GetCompositeSchedule", "NotifyReport", "Heartbeat"] * 2


async def test_the_remembered_verdicts_are_bounded() -> None:
    from ocpp.messages import Call

    with counted_library_checks():
        for k in range(ocpp_tuning.VALID_PAYLOADS_KEPT + 50):
            await ocpp_tuning.validate_payload(Call(str(k), "ChangeConfiguration", {"key": f"K{k}", "value": "1"}),
                                               "1.6")
        assert len(ocpp_tuning._valid_payloads) == ocpp_tuning.VALID_PAYLOADS_KEPT


# ------------------------------------------------------------------------------------ handler signatures, dicts


def library_serialize(message: Any) -> Any:
    installed = ocpp.charge_point.serialize_as_dict
    original = ocpp_tuning._library_serialize_as_dict
    ocpp.charge_point.serialize_as_dict = original  # its recursion must reach its own
    try:
        return original(message)
    finally:
        ocpp.charge_point.serialize_as_dict = installed


def real_messages() -> list[Any]:
    from ocpp.v16 import call as call16
    from ocpp.v16 import call_result as result16
    from ocpp.v201 import call as call201
    from ocpp.v201 import call_result as result201
    from ocpp.v201 import datatypes

    from csms_adapter.emulator.monitoring201 import inventory

    report = inventory({("SampledDataCtrlr", "Enabled"): "true"}, [], {1: False, 2: True}, 24.5)
    return [
        call16.BootNotification(charge_point_vendor="V", charge_point_model="M"),
        call16.GetConfiguration(key=["A", "B"]),
        result16.GetConfiguration(configuration_key=[{"key": "A", "readonly": True, "value": "1"}]),
        call201.BootNotification(charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp"),
        call201.NotifyReport(request_id=1, generated_at="2026-12-07T08:00:00.000Z", seq_no=0, report_data=report,
                             tbc=False),
        call201.GetVariables(get_variable_data=[datatypes.GetVariableDataType(
            component=datatypes.ComponentType(name="C", evse=datatypes.EVSEType(id=1)),
            variable=datatypes.VariableType(name="V"))]),
        result201.SetChargingProfile(status="Accepted", status_info=datatypes.StatusInfoType(reason_code="R")),
        result201.Heartbeat(current_time="2026-12-07T08:00:00.000Z"),
    ]


def test_messages_become_the_dicts_the_library_makes_of_them() -> None:
    for message in real_messages():
        assert serialize_as_dict(message) == library_serialize(message), type(message).__name__


@dataclass
class Inner:
    a: Any = None
    b: list[Any] | None = None


@dataclass
class Outer:
    x: Any = None
    items: list[Any] | None = None
    inner: Inner | None = None
    pair: tuple[Any, ...] | None = None


@given(json_values, st.lists(st.one_of(json_values, st.builds(Inner, json_values, st.none())), max_size=4),
       st.one_of(st.none(), st.builds(Inner, json_values, st.lists(json_values, max_size=3))),
       st.one_of(st.none(), st.tuples(json_values, st.builds(Inner, json_values, st.none()))))
def test_any_message_shape_becomes_the_dict_the_library_makes(x: Any, items: list[Any], inner: Inner | None,
                                                              pair: tuple[Any, ...] | None) -> None:
    message = Outer({"nested": x, "inner": Inner(x)}, items, inner, pair)
    assert serialize_as_dict(message) == library_serialize(message)


def test_a_handler_signature_is_the_one_inspect_gives() -> None:
    ocpp_tuning.install()

    class Handlers:
        def plain(self, a: int, **kwargs: Any) -> None: ...

        def wants_id(self, a: int, call_unique_id: str) -> None: ...

    def free(call_unique_id: str) -> None: ...

    first, second = Handlers(), Handlers()
    replacement = ocpp.charge_point.inspect
    for handler in (first.plain, second.plain, first.wants_id, second.wants_id, free, print):
        assert replacement.signature(handler) == inspect.signature(handler)
    assert "call_unique_id" in replacement.signature(second.wants_id).parameters
    assert "call_unique_id" not in replacement.signature(first.plain).parameters
    assert replacement.isawaitable is inspect.isawaitable and replacement.iscoroutine is inspect.iscoroutine
