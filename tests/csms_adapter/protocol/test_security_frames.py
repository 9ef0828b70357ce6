"""Malformed and hostile OCPP frames: the CALLERROR each gets (or why it gets none), on a live connection that
stays usable afterwards, and the counters that record them."""

from __future__ import annotations

import json

import pytest
from live_site import PASSWORD_A, PASSWORD_B
from security_helpers import exchange, raw_client

from csms_adapter.control.controller import Controller
from csms_adapter.protocol.frame_guard import screen

KNOWN = frozenset({"Heartbeat", "BootNotification", "DataTransfer", "MeterValues"})
HANDLED = frozenset({"Heartbeat", "BootNotification", "MeterValues"})
HB = '[2,"hb","Heartbeat",{}]'


@pytest.mark.parametrize(("frame", "v16", "v201", "reply_id"), [
    (b"\x00\x01", "FormationViolation", "RpcFrameworkError", "-1"),
    ("hello", "FormationViolation", "RpcFrameworkError", "-1"),
    ("[" * 5000 + "]" * 5000, "FormationViolation", "RpcFrameworkError", "-1"),
    ('{"a":1}', "FormationViolation", "RpcFrameworkError", "-1"),
    ("[]", "FormationViolation", "RpcFrameworkError", "-1"),
    ('["2","x","Heartbeat",{}]', "FormationViolation", "RpcFrameworkError", "-1"),
    ('[7,"x1","Heartbeat",{}]', "FormationViolation", "MessageTypeNotSupported", "x1"),
    ('[2,"' + "i" * 37 + '","Heartbeat",{}]', "FormationViolation", "RpcFrameworkError", "-1"),
    ('[2,"x2","Heartbeat",[]]', "FormationViolation", "FormatViolation", "x2"),
    ('[2,"x3","MeterValues",{"connectorId":1,"meterValue":[{"value":NaN}]}]', "FormationViolation",
     "FormatViolation", "x3"),
    ('[2,"x4","FooBar",{}]', "NotImplemented", "NotImplemented", "x4"),
    ('[2,"x5","DataTransfer",{"vendorId":"v"}]', "NotSupported", "NotSupported", "x5"),
])
def test_screen_answers_with_the_spec_code_per_version(frame: str | bytes, v16: str, v201: str,
                                                       reply_id: str) -> None:
    for version, code in (("1.6", v16), ("2.0.1", v201)):
        verdict = screen(frame, version, KNOWN, HANDLED, lambda _id: False)
        assert verdict.reply is not None and verdict.reason is not None
        assert json.loads(verdict.reply)[:3] == [4, reply_id, code]


@pytest.mark.parametrize("frame", ['[3,"nobody-asked",{}]', '[4,"x","GenericError","",{}]', '[3,"x"]',
                                   '[3,"x",{"a":NaN}]'])
def test_answers_nobody_waits_for_are_dropped_silently(frame: str) -> None:
    verdict = screen(frame, "2.0.1", KNOWN, HANDLED, lambda _id: False)
    assert verdict.reason is not None and verdict.reply is None


def test_an_expected_answer_and_a_good_call_pass() -> None:
    assert screen('[3,"mine",{}]', "1.6", KNOWN, HANDLED, lambda i: i == "mine").answer_id == "mine"
    assert screen(HB, "1.6", KNOWN, HANDLED, lambda _id: False).reason is None


# (frame, expected error code or None for a CallResult) on a live 1.6 link; schema errors come from the library,
# re-spelled the 1.6 way by the guard.
LIVE_16 = [
    ("not json at all", "FormationViolation"),
    ('{"valid": "json", "not": "ocpp"}', "FormationViolation"),
    ('[2,"a1","NoSuchAction",{}]', "NotImplemented"),
    ('[2,"a2","Reset",{"type":"Soft"}]', "NotSupported"),  # a known action a charger does not send
    ('[2,"a2b","DataTransfer",{"vendorId":"x"}]', None),  # answered UnknownVendorId (docs/ocpp-conformance.md)
    ('[2,"a3","StatusNotification",{"connectorId":"1","errorCode":"NoError","status":"Available"}]',
     "TypeConstraintViolation"),
    ('[2,"a4","StatusNotification",{"connectorId":1,"errorCode":"NoError"}]', "ProtocolError"),
    ('[2,"a5","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Available","x":1}]',
     "FormationViolation"),
    ('[2,"a6","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Exploded"}]',
     "FormationViolation"),
    ('[2,"a7","MeterValues",{"connectorId":1,"meterValue":[{"timestamp":"2020-01-01T00:00:00Z",'
     '"sampledValue":[{"value":NaN,"measurand":"SoC"}]}]}]', "FormationViolation"),
    # Telemetry is parsed tolerantly: answered, the bad values dropped (counted), never reaching the optimizer.
    ('[2,"a8","MeterValues",{"connectorId":1,"meterValue":[{"timestamp":"%NOW%","sampledValue":['
     '{"value":"150","measurand":"SoC","unit":"Percent"},{"value":"-7000","measurand":"Power.Active.Import"},'
     '{"value":"lots","measurand":"Current.Import"}]}]}]', None),
    ('[2,"a9","MeterValues",{"connectorId":1,"meterValue":[{"timestamp":"2999-01-01T00:00:00Z",'
     '"sampledValue":[{"value":"50","measurand":"SoC"}]},{"timestamp":"1999-01-01T00:00:00Z",'
     '"sampledValue":[{"value":"50","measurand":"SoC"}]}]}]', None),
]


async def test_hostile_frames_on_a_live_16_link_get_the_right_answer_and_the_link_survives(
        controller: Controller) -> None:
    now = controller.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
    ws = await raw_client(controller.url, "cp-a", PASSWORD_A)
    other = await raw_client(controller.url, "cp-b", PASSWORD_B, "ocpp2.0.1")
    try:
        for frame, code in LIVE_16:
            reply = await exchange(ws, frame.replace("%NOW%", now))
            assert reply is not None, frame
            if code is None:
                assert reply[0] == 3, (frame, reply)
            else:
                assert reply[0] == 4 and reply[2] == code, (frame, reply)
        assert (await exchange(ws, HB) or [])[0] == 3  # the same connection still works
        assert (await exchange(other, HB) or [])[0] == 3  # and so does everybody else's
    finally:
        await ws.close()
        await other.close()
    counts = controller.server.counters.of("cp-a")
    assert counts["frame_not_json"] == 1 and counts["frame_not_ocpp"] == 1
    assert counts["call_unknown_action"] == 1 and counts["call_unsupported_action"] == 1
    assert counts["frame_nan_or_infinity"] == 1
    assert counts["telemetry_rejected_value"] == 5  # SoC 150 %, negative power, "lots", future, past
    assert counts["callerror_sent_TypeConstraintViolation"] == 1
    assert counts["callerror_sent_FormationViolation"] >= 4
    connector = controller.live.charger("cp-a").connectors.get(1)
    assert connector is None or connector.readings.soc is None  # no bad SoC reached the live state


async def test_201_schema_errors_use_the_201_spelling(controller: Controller) -> None:
    ws = await raw_client(controller.url, "cp-b", PASSWORD_B, "ocpp2.0.1")
    try:
        bad_type = await exchange(ws, '[2,"b1","Heartbeat",{"customData":7}]')
        extra = await exchange(ws, '[2,"b2","StatusNotification",{"timestamp":"2024-01-01T00:00:00Z",'
                                   '"connectorStatus":"Available","evseId":1,"connectorId":1,"x":1}]')
        garbage = await exchange(ws, "]]")
    finally:
        await ws.close()
    assert bad_type is not None and bad_type[2] == "TypeConstraintViolation"
    assert extra is not None and extra[2] == "FormatViolation"
    assert garbage is not None and garbage[:3] == [4, "-1", "RpcFrameworkError"]
