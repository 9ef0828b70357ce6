"""Charging profiles go out in their wire form, without the library's per-call schema check (``WireCall``). So:
every profile the links build is checked against the OCPP schemas here, the frame equals what the library made
of the same profile before, and the charger's answer is still checked as strictly as the library checked it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.messages import Call, _validate_payload
from ocpp.v16 import call as call16
from ocpp.v16 import datatypes as dt16
from ocpp.v201 import call as call201
from ocpp.v201 import datatypes as dt201

from csms_adapter.errors import ChargerError, ProfileRejected
from csms_adapter.protocol.link import TX_PROFILE_ID_BASE, LinkContext, Supervisor, utc_iso
from csms_adapter.protocol.ocpp16 import Ocpp16Link
from csms_adapter.protocol.ocpp201 import Ocpp201Link
from optimizer.domain import RateUnit

NOW = datetime(2025, 3, 3, 18, 0, 7, 250_000, tzinfo=UTC)
Link = Ocpp16Link | Ocpp201Link


class ScriptedConnection:
    """The websocket as the link sees it: records each CALL and answers it with ``answer(action)``, a CALLRESULT
    payload or a whole CALLERROR frame (``[4, ...]`` with the id filled in)."""

    def __init__(self, answer: Callable[[str], Any]) -> None:
        self.answer = answer
        self.sent: list[list[Any]] = []
        self._inbox: asyncio.Queue[str] = asyncio.Queue()

    async def recv(self) -> str:
        return await self._inbox.get()

    async def send(self, message: str) -> None:
        frame = json.loads(message)
        self.sent.append(frame)
        if frame[0] == 2:
            answer = self.answer(frame[2])
            if isinstance(answer, list):
                self._inbox.put_nowait(json.dumps([4, frame[1], *answer[2:]]))
            else:
                self._inbox.put_nowait(json.dumps([3, frame[1], answer]))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        pass


async def linked(cls: type[Link], answer: Callable[[str], Any]) -> tuple[Link, ScriptedConnection, Supervisor]:
    supervisor = Supervisor("test")
    ctx = LinkContext("cp-x", lambda _e: None, lambda: NOW, supervisor, call_timeout_s=2, heartbeat_s=300,
                      next_transaction_id=lambda: 1)
    connection = ScriptedConnection(answer)
    link = cls(ctx, connection)
    supervisor.spawn(link.start(), "receive")
    return link, connection, supervisor


@pytest.fixture
async def supervisors() -> AsyncIterator[list[Supervisor]]:
    made: list[Supervisor] = []
    yield made
    for supervisor in made:
        await supervisor.close()


async def send_every_profile(link: Link, limit: float, unit: RateUnit) -> None:
    await link.set_tx_limit(1, limit, unit, 3, 180.0, "4711", NOW)
    await link.set_live_station_max(limit, unit, 3, 180.0, NOW)
    await link.set_station_max(limit, unit, 1)
    await link.set_default_profile(limit, unit, 3)


@pytest.mark.parametrize("cls", [Ocpp16Link, Ocpp201Link])
@pytest.mark.parametrize(("limit", "unit"), [(16.0, RateUnit.AMPS), (6.37, RateUnit.AMPS), (0.0, RateUnit.AMPS),
                                             (31.99999, RateUnit.AMPS), (22_000.0, RateUnit.WATTS),
                                             (3_456.789, RateUnit.WATTS)])
async def test_every_profile_sent_is_valid_against_the_schema(cls: type[Link], limit: float, unit: RateUnit,
                                                             supervisors: list[Supervisor]) -> None:
    link, connection, supervisor = await linked(cls, lambda _action: {"status": "Accepted"})
    supervisors.append(supervisor)
    await send_every_profile(link, limit, unit)
    assert len(connection.sent) == 4
    for _kind, unique_id, action, payload in connection.sent:
        assert action == "SetChargingProfile"
        # The library's own request check, 1.6 multipleOf 0.1 (as Decimal) included; raises when invalid.
        _validate_payload(Call(unique_id, action, json.loads(json.dumps(payload))), link.ocpp_version)


async def test_the_16_tx_profile_frame_is_what_the_library_made_of_the_same_profile(
        supervisors: list[Supervisor]) -> None:
    link, connection, supervisor = await linked(Ocpp16Link, lambda _action: {"status": "Accepted"})
    supervisors.append(supervisor)
    await link.set_tx_limit(2, 12.34, RateUnit.AMPS, 3, 180.0, "4711", NOW)
    before = call16.SetChargingProfile(connector_id=2, cs_charging_profiles=dt16.ChargingProfile(
        charging_profile_id=TX_PROFILE_ID_BASE + 2, stack_level=1, charging_profile_purpose="TxProfile",
        charging_profile_kind="Absolute", transaction_id=4711, valid_to=utc_iso(NOW + timedelta(seconds=180)),
        charging_schedule=dt16.ChargingSchedule(
            charging_rate_unit="A", duration=185, start_schedule=utc_iso(NOW - timedelta(seconds=5)),
            charging_schedule_period=[dt16.ChargingSchedulePeriod(start_period=0, limit=12.3, number_phases=3)])))
    assert connection.sent[0][3] == remove_nones(snake_to_camel_case(serialize_as_dict(before)))


async def test_the_201_tx_profile_frame_is_what_the_library_made_of_the_same_profile(
        supervisors: list[Supervisor]) -> None:
    link, connection, supervisor = await linked(Ocpp201Link, lambda _action: {"status": "Accepted"})
    supervisors.append(supervisor)
    await link.set_tx_limit(1, 7400.0, RateUnit.WATTS, 3, 180.0, "tx-abc", NOW)
    before = call201.SetChargingProfile(evse_id=1, charging_profile=dt201.ChargingProfileType(
        id=TX_PROFILE_ID_BASE + 1, stack_level=1, charging_profile_purpose="TxProfile",
        charging_profile_kind="Absolute", transaction_id="tx-abc", valid_to=utc_iso(NOW + timedelta(seconds=180)),
        charging_schedule=[dt201.ChargingScheduleType(
            id=TX_PROFILE_ID_BASE + 1, charging_rate_unit="W", duration=185,
            start_schedule=utc_iso(NOW - timedelta(seconds=5)),
            charging_schedule_period=[dt201.ChargingSchedulePeriodType(start_period=0, limit=7400.0,
                                                                      number_phases=3)])]))
    assert connection.sent[0][3] == remove_nones(snake_to_camel_case(serialize_as_dict(before)))


@pytest.mark.parametrize(("cls", "answer", "expected", "reason_part"), [
    (Ocpp16Link, {"status": "Rejected"}, ProfileRejected, "status Rejected"),
    (Ocpp16Link, {"status": "NotSupported"}, ProfileRejected, "status NotSupported"),
    (Ocpp201Link, {"status": "Rejected", "statusInfo": {"reasonCode": "TxNotFound"}}, ProfileRejected,
     "status Rejected TxNotFound"),
    (Ocpp16Link, [4, "", "NotSupported", "no smart charging", {}], ProfileRejected, "not supported"),
    # Malformed answers fail the call as the library's check of the answer always made them fail.
    (Ocpp16Link, {"status": "Accepted", "extra": 1}, ChargerError, "FormatViolation"),
    (Ocpp16Link, {"status": "Bogus"}, ChargerError, "FormatViolation"),
    (Ocpp16Link, {"status": 5}, ChargerError, "TypeConstraintViolation"),
    (Ocpp16Link, {}, ChargerError, "ProtocolError"),
    (Ocpp201Link, {"status": "NotSupported"}, ChargerError, "FormatViolation"),
    (Ocpp201Link, {"status": "Accepted", "statusInfo": "fine"}, ChargerError, "TypeConstraintViolation"),
])
async def test_the_answer_is_checked_as_strictly_as_before(cls: type[Link], answer: Any, expected: type[Exception],
                                                           reason_part: str, supervisors: list[Supervisor]) -> None:
    link, _connection, supervisor = await linked(cls, lambda _action: answer)
    supervisors.append(supervisor)
    with pytest.raises(expected) as info:
        await link.set_tx_limit(1, 16.0, RateUnit.AMPS, 3, 180.0, "4711", NOW)
    assert type(info.value) is expected and reason_part in str(info.value)
    if "NotSupported" in json.dumps(answer) and cls is Ocpp16Link:
        assert isinstance(info.value, ProfileRejected) and info.value.not_supported
