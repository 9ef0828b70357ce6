"""An independent OCPP-J charger for conformance tests: raw ``websockets`` and ``json``, built from the OCPP 1.6J and
2.0.1 specifications and their JSON schemas, sharing nothing with depotctl's emulator or the ``ocpp`` library.

It speaks camelCase on the wire as real firmware does, sends the message shapes real chargers send (optional fields
left out, timestamps with offsets and without fractions, energy in kWh, per-phase values), keeps OCPP-J's rule of one
CALL of its own in flight at a time, and answers what the CSMS asks like a plain station would: set-up calls are
accepted, a TriggerMessage for StatusNotification is followed by the triggered notifications, a 2.0.1 GetBaseReport
by its NotifyReport parts, and anything it does not implement gets the CALLERROR the specification names.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

CALL, CALLRESULT, CALLERROR = 2, 3, 4
ANSWER_TIMEOUT_S = 10.0


def wire_time(at: datetime | None = None, offset_h: int = 0) -> str:
    """A timestamp as many firmwares write it: whole seconds, and a numeric offset instead of ``Z``."""
    at = (at or datetime.now(UTC)).astimezone(timezone(timedelta(hours=offset_h)))
    return at.replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class Answer:
    """What the CSMS answered to one of our CALLs: a result payload, or a CALLERROR code and description."""

    payload: dict[str, Any] | None = None
    error_code: str | None = None
    error_description: str = ""

    @property
    def ok(self) -> bool:
        return self.error_code is None


@dataclass
class Station:
    """The state a real station would keep to answer the CSMS: connector statuses and its device model."""

    connector_status: dict[int, str] = field(default_factory=dict)  # 1.6 status / 2.0.1 connectorStatus per connector
    monitoring_enabled: bool = True


class OutsiderCharger:
    """One connected charger. ``received`` keeps every CALL the CSMS made (action, payload), in order."""

    def __init__(self, ws: ClientConnection, version: str, station: Station) -> None:
        self.ws = ws
        self.version = version
        self.station = station
        self.received: list[tuple[str, dict[str, Any]]] = []
        self._ids = itertools.count(1)
        self._waiting: dict[str, asyncio.Future[list[Any]]] = {}
        self._one_call = asyncio.Lock()  # OCPP-J: our next CALL only after the previous one was answered
        self._followups: set[asyncio.Task[None]] = set()
        self._reader = asyncio.create_task(self._read())

    # ------------------------------------------------------------------------------ sending

    async def call(self, action: str, payload: dict[str, Any]) -> Answer:
        async with self._one_call:
            message_id = f"{action[:8]}-{next(self._ids)}"
            return await self._exchange(message_id, json.dumps([CALL, message_id, action, payload]))

    async def send_raw(self, text: str | bytes, message_id: str) -> Answer:
        """Send a frame as it is (garbage included) and wait for the answer carrying ``message_id``."""
        async with self._one_call:
            return await self._exchange(message_id, text)

    async def _exchange(self, message_id: str, frame: str | bytes) -> Answer:
        waiter = self._waiting[message_id] = asyncio.get_running_loop().create_future()
        try:
            await self.ws.send(frame)
            async with asyncio.timeout(ANSWER_TIMEOUT_S):
                reply = await waiter
        finally:
            self._waiting.pop(message_id, None)
        if reply[0] == CALLRESULT:
            return Answer(payload=reply[2])
        return Answer(error_code=reply[2], error_description=reply[3])

    # ------------------------------------------------------------------------------ receiving

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.ws:
                frame = json.loads(raw)
                if frame[0] == CALL:
                    _, message_id, action, payload = frame
                    self.received.append((action, payload))
                    await self.ws.send(json.dumps(self._answer(message_id, action, payload)))
                    self._follow_up(action, payload)
                else:
                    waiter = self._waiting.get(frame[1])
                    if waiter is not None and not waiter.done():
                        waiter.set_result(frame)

    def _answer(self, message_id: str, action: str, payload: dict[str, Any]) -> list[Any]:
        answers = ANSWERS_16 if self.version == "1.6" else ANSWERS_201
        make = answers.get(action)
        if make is None:
            # Both specifications: NotImplemented = the action is not known to the receiver.
            return [CALLERROR, message_id, "NotImplemented", f"{action} is not implemented", {}]
        return [CALLRESULT, message_id, make(payload)]

    def _follow_up(self, action: str, payload: dict[str, Any]) -> None:
        """What a station sends after answering: the triggered message, or its report."""
        if action == "TriggerMessage" and payload.get("requestedMessage") == "StatusNotification":
            self._spawn(self._resend_statuses())
        elif action == "GetBaseReport" and self.version == "2.0.1":
            self._spawn(self._send_report(payload["requestId"]))
        elif action == "ChangeAvailability":
            self._spawn(self._change_availability(payload))

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._followups.add(task)
        task.add_done_callback(self._followups.discard)

    async def _resend_statuses(self, only: list[int] | None = None) -> None:
        for connector, status in sorted(self.station.connector_status.items()):
            if only is not None and connector not in only:
                continue
            if self.version == "1.6":
                await self.call("StatusNotification", {"connectorId": connector, "errorCode": "NoError",
                                                       "status": status})
            else:
                await self.call("StatusNotification", {"timestamp": wire_time(), "connectorStatus": status,
                                                       "evseId": connector, "connectorId": 1})

    async def _change_availability(self, payload: dict[str, Any]) -> None:
        """Accepted: the connector (0: every one) changes state and says so, as a station does after answering."""
        if self.version == "1.6":
            operative, connector = payload["type"] == "Operative", payload["connectorId"]
        else:
            operative = payload["operationalStatus"] == "Operative"
            connector = (payload.get("evse") or {}).get("id", 0)
        status = ("Available" if operative else "Unavailable")
        targets = sorted(self.station.connector_status) if connector == 0 else [connector]
        for target in targets:
            self.station.connector_status[target] = status
        await self._resend_statuses(targets)

    async def _send_report(self, request_id: int) -> None:
        def variable(component: dict[str, Any], name: str, value: str) -> dict[str, Any]:
            return {"component": component, "variable": {"name": name},
                    "variableAttribute": [{"type": "Actual", "value": value, "mutability": "ReadOnly"}]}

        parts = [
            [variable({"name": "MonitoringCtrlr"}, "Enabled", "true" if self.station.monitoring_enabled else "false"),
             variable({"name": "ChargingStation"}, "Problem", "false")],
            [variable({"name": "Connector", "evse": {"id": 1, "connectorId": 1}}, "Problem", "false")],
        ]
        for seq_no, data in enumerate(parts):
            message: dict[str, Any] = {"requestId": request_id, "generatedAt": wire_time(), "seqNo": seq_no,
                                       "reportData": data}
            if seq_no < len(parts) - 1:
                message["tbc"] = True  # left out on the last part: false is its default
            await self.call("NotifyReport", message)

    async def close(self) -> None:
        for task in list(self._followups):
            task.cancel()
        await asyncio.gather(*self._followups, return_exceptions=True)
        await self.ws.close()
        await asyncio.gather(self._reader, return_exceptions=True)

    # ------------------------------------------------------------------------------ common messages

    async def boot(self) -> Answer:
        if self.version == "1.6":
            return await self.call("BootNotification", {
                "chargePointVendor": "Outsider", "chargePointModel": "OX-22", "firmwareVersion": "4.2.0"})
        return await self.call("BootNotification", {
            "reason": "PowerUp", "chargingStation": {"model": "OX-22", "vendorName": "Outsider"}})


def _configuration(payload: dict[str, Any]) -> dict[str, Any]:
    asked = payload.get("key") or []
    return {"configurationKey": [], "unknownKey": asked} if asked else {"configurationKey": []}


ANSWERS_16: dict[str, Any] = {
    "GetConfiguration": _configuration,
    "ChangeConfiguration": lambda p: {"status": "Accepted"},
    "SetChargingProfile": lambda p: {"status": "Accepted"},
    "ClearChargingProfile": lambda p: {"status": "Accepted"},
    "TriggerMessage": lambda p: {"status": "Accepted"},
    "GetCompositeSchedule": lambda p: {"status": "Rejected"},
    "ChangeAvailability": lambda p: {"status": "Accepted"},
}

ANSWERS_201: dict[str, Any] = {
    "GetVariables": lambda p: {"getVariableResult": [
        {"attributeStatus": "UnknownVariable", "component": d["component"], "variable": d["variable"]}
        for d in p["getVariableData"]]},
    "SetVariables": lambda p: {"setVariableResult": [
        {"attributeStatus": "Accepted", "component": d["component"], "variable": d["variable"]}
        for d in p["setVariableData"]]},
    "GetBaseReport": lambda p: {"status": "Accepted"},
    "SetVariableMonitoring": lambda p: {"setMonitoringResult": [
        {"id": n + 1, "status": "Accepted", "type": d["type"], "severity": d["severity"], "component": d["component"],
         "variable": d["variable"]} for n, d in enumerate(p["setMonitoringData"])]},
    "SetChargingProfile": lambda p: {"status": "Accepted"},
    "ClearChargingProfile": lambda p: {"status": "Accepted"},
    "TriggerMessage": lambda p: {"status": "Accepted"},
    "GetCompositeSchedule": lambda p: {"status": "Rejected"},
    "GetTransactionStatus": lambda p: {"messagesInQueue": False},
    "ChangeAvailability": lambda p: {"status": "Accepted"},
}


def basic_auth(identity: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{identity}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@contextlib.asynccontextmanager
async def outsider(url: str, identity: str, password: str, version: str,
                   station: Station | None = None) -> AsyncIterator[OutsiderCharger]:
    """A connected charger (``url`` ends with ``/``); closed, and its tasks awaited, on exit."""
    subprotocol = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1"}[version]
    ws = await connect(url + identity, subprotocols=[subprotocol],  # type: ignore[list-item]
                       additional_headers=basic_auth(identity, password), open_timeout=5)
    assert ws.subprotocol == subprotocol
    charger = OutsiderCharger(ws, version, station or Station())
    try:
        yield charger
    finally:
        await charger.close()
