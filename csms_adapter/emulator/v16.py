"""OCPP 1.6J dialect of the emulated charger: turns queued events into calls and CSMS calls into
station operations. Handlers stay short and never call the CSMS themselves (docs/architecture.md, "OCPP rules the code follows")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.client import ClientConnection

from csms_adapter.emulator.clock import ocpp_time
from csms_adapter.emulator.events import (
    SUPPORTED_MEASURANDS,
    DeviceProblem,
    DeviceReportRequested,
    Heartbeat,
    MeterReading,
    MeterSample,
    Outbound,
    StatusChange,
    TransactionEnded,
    TransactionStarted,
    sampled_values,
)
from csms_adapter.emulator.profiles import ChargingProfile, ProfileKind, ProfilePurpose, SchedulePeriod
from csms_adapter.emulator.wire import WIRE_LOG, call_action, number, opt_time, skip_incoming_validation
from optimizer.domain import RateUnit

if TYPE_CHECKING:
    from csms_adapter.emulator.station import EmulatedCharger

_PURPOSE = {
    "ChargePointMaxProfile": ProfilePurpose.STATION_MAX,
    "TxDefaultProfile": ProfilePurpose.TX_DEFAULT,
    "TxProfile": ProfilePurpose.TX,
}
_READ_ONLY = {
    "NumberOfConnectors",
    "SupportedFeatureProfiles",
    "ChargeProfileMaxStackLevel",
    "ChargingScheduleAllowedChargingRateUnit",
    "ChargingScheduleMaxPeriods",
    "MaxChargingProfilesInstalled",
    "MeterValuesSampledDataMaxLength",
}


def meter_value(sample: MeterSample, measurands: tuple[str, ...], context: str) -> dict[str, Any]:
    values = []
    for sv in sampled_values(sample, measurands):
        # Fixed-point, never ``:g``: a register above 1 MWh would lose its last digits in exponent notation.
        value = f"{sv.value:.3f}".rstrip("0").rstrip(".")
        entry = {"value": value, "measurand": sv.measurand, "unit": sv.unit, "context": context}
        entry["location"] = "EV" if sv.measurand == "SoC" else "Outlet"
        if sv.phase is not None:
            entry["phase"] = sv.phase
        values.append(entry)
    return {"timestamp": ocpp_time(sample.at), "sampled_value": values}


def parse_profile(connector_id: int, raw: dict[str, Any], now_iso: str) -> ChargingProfile:
    """A 1.6 csChargingProfiles dict (snake_case, as the library hands it over) → ChargingProfile."""
    schedule = raw["charging_schedule"]
    kind = ProfileKind(raw["charging_profile_kind"])
    start = opt_time(schedule.get("start_schedule"))
    if start is None and kind is not ProfileKind.RELATIVE:
        start = opt_time(now_iso)  # 1.6 allows an Absolute profile without start: it starts now
    tx = raw.get("transaction_id")
    return ChargingProfile(
        id=int(raw["charging_profile_id"]),
        stack_level=int(raw["stack_level"]),
        purpose=_PURPOSE[raw["charging_profile_purpose"]],
        kind=kind,
        connector_id=connector_id,
        unit=RateUnit(schedule["charging_rate_unit"]),
        periods=tuple(
            SchedulePeriod(number(p["start_period"]), number(p["limit"]), p.get("number_phases"))
            for p in schedule["charging_schedule_period"]
        ),
        start_schedule=start,
        duration_s=number(schedule["duration"]) if schedule.get("duration") is not None else None,
        valid_from=opt_time(raw.get("valid_from")),
        valid_to=opt_time(raw.get("valid_to")),
        transaction_id=str(tx) if tx is not None else None,
        recurrency=raw.get("recurrency_kind"),
    )


class V16Link(ChargePoint):  # type: ignore[misc]
    def __init__(self, owner: EmulatedCharger, ws: ClientConnection) -> None:
        super().__init__(owner.identity, ws, response_timeout=owner.response_timeout_s, logger=WIRE_LOG)
        self.owner = owner
        if not owner.validate_schemas:
            skip_incoming_validation(self.route_map)

    async def call(self, *args: Any, **kwargs: Any) -> Any:
        if not self.owner.validate_schemas:
            kwargs["skip_schema_validation"] = True
        result = await super().call(*args, **kwargs)
        self.owner.calls_answered += 1  # every CALL the CSMS answered, boots included (load tests)
        return result

    async def route_message(self, raw_msg: str) -> None:
        action = call_action(raw_msg)
        if action is not None:
            self.owner.received_calls.append(action)
            if self.owner.quirks.silent:
                return  # the "answers nothing" quirk: the CSMS's call times out
        await super().route_message(raw_msg)

    # ---------------------------------------------------------------------------- outbound

    async def boot(self) -> tuple[str, int]:
        result = await self.call(
            call.BootNotification(
                charge_point_model=f"emu-{self.owner.charger.connectors}x{self.owner.charger.max_current_a:g}A",
                charge_point_vendor="depotctl-emulator",
                firmware_version="1.6-emu",
            ),
            suppress=False,
        )
        return str(result.status), int(result.interval)

    async def send(self, event: Outbound) -> None:
        owner = self.owner
        if isinstance(event, Heartbeat):
            await self.call(call.Heartbeat(), suppress=False)
        elif isinstance(event, StatusChange):
            await self.call(
                call.StatusNotification(
                    connector_id=event.connector_id,
                    error_code=event.error_code,
                    status=event.status.value,
                    timestamp=ocpp_time(event.at),
                    info=event.info,
                    vendor_error_code=event.vendor_error_code,
                ),
                suppress=False,
            )
        elif isinstance(event, TransactionStarted):
            await self.call(call.Authorize(id_tag=event.id_tag), suppress=False)
            result = await self.call(
                call.StartTransaction(
                    connector_id=event.connector_id,
                    id_tag=event.id_tag,
                    meter_start=int(event.sample.energy_wh),
                    timestamp=ocpp_time(event.sample.at),
                ),
                suppress=False,
            )
            owner.transaction_confirmed(event.local_tx, str(result.transaction_id))
        elif isinstance(event, MeterReading):
            tx_id = owner.csms_transaction_id(event.local_tx) if event.local_tx else None
            context = "Trigger" if event.triggered else "Sample.Periodic"
            await self.call(
                call.MeterValues(
                    connector_id=event.connector_id,
                    transaction_id=int(tx_id) if tx_id is not None else None,
                    meter_value=[meter_value(event.sample, owner.measurands, context)],
                ),
                suppress=False,
            )
        elif isinstance(event, DeviceProblem | DeviceReportRequested):
            return  # 2.0.1 only; a 1.6 charger says it all in StatusNotification
        elif isinstance(event, TransactionEnded):
            tx_id = owner.csms_transaction_id(event.local_tx)
            if tx_id is None:
                return  # the start never reached the CSMS; nothing to stop
            await self.call(
                call.StopTransaction(
                    meter_stop=int(event.sample.energy_wh),
                    timestamp=ocpp_time(event.sample.at),
                    transaction_id=int(tx_id),
                    reason="EVDisconnected",
                    id_tag=event.id_tag,
                    transaction_data=[meter_value(event.sample, owner.measurands, "Transaction.End")],
                ),
                suppress=False,
            )
            owner.forget_transaction(event.local_tx)

    # ----------------------------------------------------------------------------- handlers

    @on(Action.set_charging_profile)
    def on_set_charging_profile(
        self, connector_id: int, cs_charging_profiles: dict[str, Any], **_: Any
    ) -> call_result.SetChargingProfile:
        owner = self.owner
        if connector_id != 0 and connector_id not in owner.connectors:
            return call_result.SetChargingProfile(status="Rejected")
        profile = parse_profile(connector_id, cs_charging_profiles, ocpp_time(owner.clock.now()))
        result = owner.install_profile(profile)
        return call_result.SetChargingProfile(status="Accepted" if result.accepted else "Rejected")

    @on(Action.get_composite_schedule)
    def on_get_composite_schedule(
        self, connector_id: int, duration: int, charging_rate_unit: str | None = None, **_: Any
    ) -> call_result.GetCompositeSchedule:
        unit = RateUnit(charging_rate_unit) if charging_rate_unit else None
        result = self.owner.composite(connector_id, float(duration), unit)
        if result is None:
            return call_result.GetCompositeSchedule(status="Rejected")
        return call_result.GetCompositeSchedule(
            status="Accepted",
            connector_id=connector_id,
            schedule_start=ocpp_time(result.start),
            charging_schedule={
                "duration": int(result.duration_s),
                "start_schedule": ocpp_time(result.start),
                "charging_rate_unit": result.unit.value,
                "charging_schedule_period": [
                    {"start_period": int(offset), "limit": limit, "number_phases": phases}
                    for offset, limit, phases in result.periods
                ],
            },
        )

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(
        self,
        id: int | None = None,
        connector_id: int | None = None,
        charging_profile_purpose: str | None = None,
        stack_level: int | None = None,
        **_: Any,
    ) -> call_result.ClearChargingProfile:
        removed = self.owner.clear_profiles(
            profile_id=id,
            connector_id=connector_id,
            purpose=_PURPOSE[charging_profile_purpose] if charging_profile_purpose else None,
            stack_level=stack_level,
        )
        return call_result.ClearChargingProfile(status="Accepted" if removed else "Unknown")

    def _configuration(self) -> dict[str, str]:
        owner = self.owner
        units = {RateUnit.AMPS: "Current", RateUnit.WATTS: "Power"}
        return {
            "MeterValueSampleInterval": str(int(owner.meter_interval_s)),
            "MeterValuesSampledData": ",".join(owner.measurands),
            "MeterValuesSampledDataMaxLength": str(len(SUPPORTED_MEASURANDS)),
            "HeartbeatInterval": str(int(owner.heartbeat_s)),
            "NumberOfConnectors": str(len(owner.connectors)),
            "SupportedFeatureProfiles": "Core,SmartCharging,RemoteTrigger",
            "ChargeProfileMaxStackLevel": str(owner.profiles.max_stack_level),
            "ChargingScheduleAllowedChargingRateUnit": ",".join(
                units[u] for u in (RateUnit.AMPS, RateUnit.WATTS) if u in owner.profiles.units
            ),
            "ChargingScheduleMaxPeriods": str(owner.profiles.max_periods),
            "MaxChargingProfilesInstalled": str(owner.profiles.max_installed),
        }

    @on(Action.get_configuration)
    def on_get_configuration(self, key: list[str] | None = None, **_: Any) -> call_result.GetConfiguration:
        config = self._configuration()
        wanted = key or list(config)
        known = [{"key": k, "readonly": k in _READ_ONLY, "value": config[k]} for k in wanted if k in config]
        unknown = [k for k in wanted if k not in config]
        return call_result.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    @on(Action.change_configuration)
    def on_change_configuration(self, key: str, value: str, **_: Any) -> call_result.ChangeConfiguration:
        owner = self.owner
        if key in _READ_ONLY:
            return call_result.ChangeConfiguration(status="Rejected")
        try:
            if key == "MeterValueSampleInterval":
                owner.meter_interval_s = float(int(value))
            elif key == "HeartbeatInterval":
                owner.heartbeat_s = float(max(1, int(value)))
            elif key == "MeterValuesSampledData":
                wanted = tuple(m.strip() for m in value.split(",") if m.strip())
                # §3.16.4: one unsupported measurand rejects the whole list and changes nothing
                if not wanted or any(m.split(".L")[0] not in SUPPORTED_MEASURANDS for m in wanted):
                    return call_result.ChangeConfiguration(status="Rejected")
                owner.measurands = tuple(dict.fromkeys(m.split(".L")[0] for m in wanted))
            else:
                return call_result.ChangeConfiguration(status="NotSupported")
        except ValueError:
            return call_result.ChangeConfiguration(status="Rejected")
        return call_result.ChangeConfiguration(status="Accepted")

    @on(Action.trigger_message)
    def on_trigger_message(
        self, requested_message: str, connector_id: int | None = None, **_: Any
    ) -> call_result.TriggerMessage:
        if connector_id is not None and connector_id not in self.owner.connectors:
            return call_result.TriggerMessage(status="Rejected")
        if requested_message in ("MeterValues", "StatusNotification", "Heartbeat"):
            return call_result.TriggerMessage(status="Accepted")
        if requested_message == "BootNotification":
            return call_result.TriggerMessage(status="Rejected")  # errata 3.40: not after Accepted
        return call_result.TriggerMessage(status="NotImplemented")

    @on(Action.change_availability)
    def on_change_availability(self, connector_id: int, type: str, **_: Any) -> call_result.ChangeAvailability:
        return call_result.ChangeAvailability(status=self.owner.change_availability(connector_id, type == "Operative"))

    @after(Action.change_availability)
    def after_change_availability(self, connector_id: int, **_: Any) -> None:
        self.owner.announce_availability(connector_id)  # answered first, then the status notifications

    @after(Action.trigger_message)
    def after_trigger_message(self, requested_message: str, connector_id: int | None = None, **_: Any) -> None:
        # answered first, then sent (errata 3.46); the station's queue keeps the order
        self.owner.trigger(requested_message, connector_id)

