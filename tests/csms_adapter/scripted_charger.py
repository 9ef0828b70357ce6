"""A charger made of raw OCPP-J frames (no library): records every frame the controller sends, in order, and
answers its CALLs from a table, so tests can check what went on the wire and when."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from websockets.asyncio.client import ClientConnection

BOOT16 = {"chargePointVendor": "Acme", "chargePointModel": "Scripted"}
BOOT201 = {"reason": "PowerUp", "chargingStation": {"vendorName": "Acme", "model": "Scripted"}}
# What the scripted charger answers to each CSMS call (enough for every set-up step to succeed).
ANSWERS: dict[str, dict[str, Any]] = {
    "SetChargingProfile": {"status": "Accepted"},
    "ClearChargingProfile": {"status": "Unknown"},
    "TriggerMessage": {"status": "Accepted"},
    "GetConfiguration": {"configurationKey": []},
    "ChangeConfiguration": {"status": "Accepted"},
    "GetCompositeSchedule": {"status": "Rejected"},
    "GetTransactionStatus": {"messagesInQueue": False, "ongoingIndicator": False},
}


class Scripted:
    """A charger from frames: records every frame the controller sends (in order) and answers its CALLs."""

    def __init__(self, ws: ClientConnection, answers: dict[str, dict[str, Any]] | None = None) -> None:
        self.ws = ws
        self.answers = {**ANSWERS, **(answers or {})}
        self.log: list[tuple[str, str, Any]] = []  # (kind "call"|"result"|"error", action or id, payload)
        self._waiting: dict[str, asyncio.Future[list[Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            frame = json.loads(raw)
            if frame[0] == 2:
                _, unique_id, action, payload = frame
                self.log.append(("call", action, payload))
                await self.ws.send(json.dumps([3, unique_id, self.answers.get(action, {})]))
            else:
                self.log.append(("result" if frame[0] == 3 else "error", frame[1], frame[2:]))
                waiter = self._waiting.pop(frame[1], None)
                if waiter is not None:
                    waiter.set_result(frame)

    async def call(self, action: str, payload: dict[str, Any]) -> list[Any]:
        unique_id = str(uuid.uuid4())
        self._waiting[unique_id] = asyncio.get_running_loop().create_future()
        self.log.append(("sent", action, unique_id))
        await self.ws.send(json.dumps([2, unique_id, action, payload]))
        async with asyncio.timeout(10):
            return await self._waiting[unique_id]

    def calls(self, action: str | None = None) -> list[Any]:
        return [p for kind, a, p in self.log if kind == "call" and (action is None or a == action)]

    def calls_before(self, unique_id: str) -> list[str]:
        """Actions the controller called before it answered our call ``unique_id``."""
        out = []
        for kind, key, _ in self.log:
            if kind in ("result", "error") and key == unique_id:
                return out
            if kind == "call":
                out.append(key)
        raise AssertionError(f"no answer to {unique_id}")

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.gather(self._reader, return_exceptions=True)


async def settle(scripted: Scripted, quiet_s: float = 1.0, timeout_s: float = 30.0) -> None:
    """Until the controller has sent nothing for ``quiet_s``: its set-up is over."""
    async with asyncio.timeout(timeout_s):
        seen = -1
        while seen != len(scripted.log):
            seen = len(scripted.log)
            await asyncio.sleep(quiet_s)


def purposes(scripted: Scripted) -> list[str]:
    out = []
    for payload in scripted.calls("SetChargingProfile"):
        profile = payload.get("csChargingProfiles") or payload.get("chargingProfile")
        out.append(f"{profile['chargingProfilePurpose']}/{profile['stackLevel']}")
    return out
