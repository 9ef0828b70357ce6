"""Minimal OCPP 1.6J / 2.0.1 chargers for controller tests: they record every call the controller makes,
answer it with a configurable status, and send what a test tells them to."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint as Cp16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v201 import ChargePoint as Cp201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from websockets.asyncio.client import ClientConnection, connect


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class Recorder:
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    profile_status: str = "Accepted"
    tx_profile_status: str = "Accepted"
    availability_status: str = "Accepted"  # the answer to ChangeAvailability (any string: garbage tests)
    delay_s: float = 0.0
    received: asyncio.Event = field(default_factory=asyncio.Event)

    async def enter(self, action: str, payload: dict[str, Any]) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.calls.append((action, payload))
        self.received.set()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        self.in_flight -= 1

    def of(self, action: str) -> list[dict[str, Any]]:
        return [p for a, p in self.calls if a == action]

    def tx_profiles(self) -> list[dict[str, Any]]:
        out = []
        for p in self.of("SetChargingProfile"):
            profile = p.get("cs_charging_profiles") or p.get("charging_profile") or {}
            if profile.get("charging_profile_purpose") == "TxProfile":
                out.append(profile)
        return out

    async def wait_for(self, predicate: Any, timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not predicate():
                self.received.clear()
                await self.received.wait()


class Charger16(Cp16):  # type: ignore[misc]
    def __init__(self, identity: str, connection: Any, rec: Recorder) -> None:
        super().__init__(identity, connection, response_timeout=10)
        self.rec = rec

    @on("SetChargingProfile")
    async def on_scp(self, connector_id: int, cs_charging_profiles: dict[str, Any], **kw: Any) -> Any:
        await self.rec.enter("SetChargingProfile", {"connector_id": connector_id,
                                                    "cs_charging_profiles": cs_charging_profiles})
        purpose = cs_charging_profiles["charging_profile_purpose"]
        status = self.rec.tx_profile_status if purpose == "TxProfile" else self.rec.profile_status
        return result16.SetChargingProfile(status=status)

    @on("ClearChargingProfile")
    async def on_clear(self, **kw: Any) -> Any:
        await self.rec.enter("ClearChargingProfile", kw)
        return result16.ClearChargingProfile(status="Unknown")

    @on("ChangeConfiguration")
    async def on_cc(self, key: str, value: str, **kw: Any) -> Any:
        await self.rec.enter("ChangeConfiguration", {"key": key, "value": value})
        return result16.ChangeConfiguration(status="Accepted")

    @on("GetConfiguration")
    async def on_gc(self, key: list[str] | None = None, **kw: Any) -> Any:
        await self.rec.enter("GetConfiguration", {"key": key})
        return result16.GetConfiguration(configuration_key=[
            {"key": "SupportedFeatureProfiles", "readonly": True, "value": "Core,SmartCharging,RemoteTrigger"},
            {"key": "ChargingScheduleAllowedChargingRateUnit", "readonly": True, "value": "Current"},
            {"key": "ChargeProfileMaxStackLevel", "readonly": True, "value": "3"},
        ])

    @on("GetCompositeSchedule")
    async def on_gcs(self, connector_id: int, duration: int, **kw: Any) -> Any:
        await self.rec.enter("GetCompositeSchedule", {"connector_id": connector_id})
        return result16.GetCompositeSchedule(status="Rejected")

    @on("TriggerMessage")
    async def on_trigger(self, requested_message: str, **kw: Any) -> Any:
        await self.rec.enter("TriggerMessage", {"requested_message": requested_message})
        return result16.TriggerMessage(status="Accepted")

    async def boot(self) -> Any:
        return await self.call(call16.BootNotification(charge_point_model="T1", charge_point_vendor="Test"))

    async def status(self, connector_id: int, status: str) -> None:
        await self.call(call16.StatusNotification(connector_id=connector_id, error_code="NoError", status=status,
                                                  timestamp=now_iso()))

    async def start_tx(self, connector_id: int, id_tag: str, meter_start_wh: int) -> int:
        result = await self.call(call16.StartTransaction(connector_id=connector_id, id_tag=id_tag,
                                                         meter_start=meter_start_wh, timestamp=now_iso()))
        return int(result.transaction_id)

    async def meter(self, connector_id: int, tx: int | None, values: list[dict[str, Any]]) -> None:
        await self.call(call16.MeterValues(connector_id=connector_id, transaction_id=tx,
                                           meter_value=[{"timestamp": now_iso(), "sampled_value": values}]))

    @on("ChangeAvailability", skip_schema_validation=True)
    async def on_change_availability(self, **kw: Any) -> Any:
        await self.rec.enter("ChangeAvailability", kw)
        return result16.ChangeAvailability(status=self.rec.availability_status)

    async def stop_tx(self, tx: int, meter_stop_wh: int) -> None:
        await self.call(call16.StopTransaction(meter_stop=meter_stop_wh, timestamp=now_iso(), transaction_id=tx))


class Charger201(Cp201):  # type: ignore[misc]
    def __init__(self, identity: str, connection: Any, rec: Recorder) -> None:
        super().__init__(identity, connection, response_timeout=10)
        self.rec = rec
        self.seq = 0

    @on("ChangeAvailability", skip_schema_validation=True)
    async def on_change_availability(self, **kw: Any) -> Any:
        await self.rec.enter("ChangeAvailability", kw)
        return result201.ChangeAvailability(status=self.rec.availability_status)

    @on("SetChargingProfile")
    async def on_scp(self, evse_id: int, charging_profile: dict[str, Any], **kw: Any) -> Any:
        await self.rec.enter("SetChargingProfile", {"evse_id": evse_id, "charging_profile": charging_profile})
        purpose = charging_profile["charging_profile_purpose"]
        status = self.rec.tx_profile_status if purpose == "TxProfile" else self.rec.profile_status
        return result201.SetChargingProfile(status=status)

    @on("ClearChargingProfile")
    async def on_clear(self, **kw: Any) -> Any:
        await self.rec.enter("ClearChargingProfile", kw)
        return result201.ClearChargingProfile(status="Unknown")

    @on("SetVariables")
    async def on_sv(self, set_variable_data: list[dict[str, Any]], **kw: Any) -> Any:
        await self.rec.enter("SetVariables", {"set_variable_data": set_variable_data})
        return result201.SetVariables(set_variable_result=[
            {"attribute_status": "Accepted", "component": d["component"], "variable": d["variable"]}
            for d in set_variable_data
        ])

    @on("GetVariables")
    async def on_gv(self, get_variable_data: list[dict[str, Any]], **kw: Any) -> Any:
        await self.rec.enter("GetVariables", {"get_variable_data": get_variable_data})
        values = {"RateUnit": "W", "Enabled": "true", "ProfileStackLevel": "4"}
        return result201.GetVariables(get_variable_result=[
            {"attribute_status": "Accepted" if d["variable"]["name"] in values else "UnknownVariable",
             "attribute_value": values.get(d["variable"]["name"]),
             "component": d["component"], "variable": d["variable"]}
            for d in get_variable_data
        ])

    @on("GetCompositeSchedule")
    async def on_gcs(self, duration: int, evse_id: int, **kw: Any) -> Any:
        await self.rec.enter("GetCompositeSchedule", {"evse_id": evse_id})
        return result201.GetCompositeSchedule(status="Rejected")

    @on("TriggerMessage")
    async def on_trigger(self, requested_message: str, **kw: Any) -> Any:
        await self.rec.enter("TriggerMessage", {"requested_message": requested_message})
        return result201.TriggerMessage(status="Accepted")

    async def boot(self) -> Any:
        return await self.call(call201.BootNotification(charging_station={"model": "T2", "vendor_name": "Test"},
                                                        reason="PowerUp"))

    async def status(self, evse_id: int, status: str) -> None:
        await self.call(call201.StatusNotification(timestamp=now_iso(), connector_status=status, evse_id=evse_id,
                                                   connector_id=1))

    async def tx_event(self, event_type: str, tx: str, evse_id: int, values: list[dict[str, Any]] | None = None,
                       trigger: str = "MeterValuePeriodic", id_token: str | None = None) -> None:
        self.seq += 1
        await self.call(call201.TransactionEvent(
            event_type=event_type, timestamp=now_iso(), trigger_reason=trigger, seq_no=self.seq,
            transaction_info={"transaction_id": tx},
            evse={"id": evse_id, "connector_id": 1},
            id_token={"id_token": id_token, "type": "ISO14443"} if id_token else None,
            meter_value=[{"timestamp": now_iso(), "sampled_value": values}] if values else None,
        ))


def basic(identity: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{identity}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@contextlib.asynccontextmanager
async def charger(url: str, identity: str, password: str, version: str, rec: Recorder | None = None
                  ) -> AsyncIterator[Charger16 | Charger201]:
    """A connected fake charger whose receive loop runs in a task; closed and awaited on exit."""
    rec = rec or Recorder()
    subprotocol = "ocpp1.6" if version == "1.6" else "ocpp2.0.1"
    ws: ClientConnection = await connect(url + identity, subprotocols=[subprotocol],  # type: ignore[list-item]
                                         additional_headers=basic(identity, password), open_timeout=5)
    cp: Charger16 | Charger201 = (Charger16 if version == "1.6" else Charger201)(identity, ws, rec)
    task = asyncio.create_task(cp.start())
    try:
        yield cp
    finally:
        await ws.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
