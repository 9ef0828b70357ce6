"""OCPP 2.0.1 dialect of the emulated charger. Transactions are named by the station, meter values
travel in TransactionEvent(Updated) (MeterValues outside a transaction), configuration is the device
model (SetVariables/GetVariables)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ocpp.routing import after, on
from ocpp.v201 import ChargePoint, call, call_result
from ocpp.v201.call import TransactionEvent as TransactionEventCall  # inside the link, ``call`` is its method
from ocpp.v201.enums import Action
from websockets.asyncio.client import ClientConnection

from csms_adapter.emulator.clock import ocpp_time
from csms_adapter.emulator.events import (
    SUPPORTED_MEASURANDS,
    ConnectorStatus,
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
from csms_adapter.emulator.monitoring201 import inventory, set_monitors
from csms_adapter.emulator.profiles import ChargingProfile, ProfileKind, ProfilePurpose, SchedulePeriod
from csms_adapter.emulator.wire import WIRE_LOG, call_action, number, opt_time, skip_incoming_validation
from optimizer.domain import RateUnit

if TYPE_CHECKING:
    from csms_adapter.emulator.station import EmulatedCharger

_PURPOSE = {
    "ChargingStationMaxProfile": ProfilePurpose.STATION_MAX,
    "TxDefaultProfile": ProfilePurpose.TX_DEFAULT,
    "TxProfile": ProfilePurpose.TX,
}
_CHARGING_STATE = {
    ConnectorStatus.CHARGING: "Charging",
    ConnectorStatus.SUSPENDED_EV: "SuspendedEV",
    ConnectorStatus.SUSPENDED_EVSE: "SuspendedEVSE",
    ConnectorStatus.PREPARING: "EVConnected",
    ConnectorStatus.FINISHING: "EVConnected",
    ConnectorStatus.AVAILABLE: "Idle",
    ConnectorStatus.FAULTED: "SuspendedEVSE",
    ConnectorStatus.UNAVAILABLE: "SuspendedEVSE",
}
_CONNECTOR_STATUS = {  # 2.0.1 ConnectorStatusEnumType; every 1.6 state of a plugged vehicle is Occupied
    ConnectorStatus.AVAILABLE: "Available",
    ConnectorStatus.FAULTED: "Faulted",
    ConnectorStatus.UNAVAILABLE: "Unavailable",
}


def meter_value(sample: MeterSample, measurands: tuple[str, ...], context: str) -> dict[str, Any]:
    values = []
    for sv in sampled_values(sample, measurands):
        entry: dict[str, Any] = {
            "value": sv.value,
            "measurand": sv.measurand,
            "context": context,
            "location": "EV" if sv.measurand == "SoC" else "Outlet",
            "unit_of_measure": {"unit": sv.unit},
        }
        if sv.phase is not None:
            entry["phase"] = sv.phase
        values.append(entry)
    return {"timestamp": ocpp_time(sample.at), "sampled_value": values}


def parse_profile(evse_id: int, raw: dict[str, Any]) -> ChargingProfile | None:
    """A 2.0.1 chargingProfile dict (snake_case) → ChargingProfile; None for a purpose a CSMS may not
    set (ChargingStationExternalConstraints, K01.FR.22)."""
    purpose = _PURPOSE.get(raw["charging_profile_purpose"])
    if purpose is None:
        return None
    schedule = raw["charging_schedule"][0]  # AC stations use one schedule
    tx = raw.get("transaction_id")
    return ChargingProfile(
        id=int(raw["id"]),
        stack_level=int(raw["stack_level"]),
        purpose=purpose,
        kind=ProfileKind(raw["charging_profile_kind"]),
        connector_id=evse_id,
        unit=RateUnit(schedule["charging_rate_unit"]),
        periods=tuple(
            SchedulePeriod(number(p["start_period"]), number(p["limit"]), p.get("number_phases"))
            for p in schedule["charging_schedule_period"]
        ),
        start_schedule=opt_time(schedule.get("start_schedule")),
        duration_s=number(schedule["duration"]) if schedule.get("duration") is not None else None,
        valid_from=opt_time(raw.get("valid_from")),
        valid_to=opt_time(raw.get("valid_to")),
        transaction_id=str(tx) if tx is not None else None,
        recurrency=raw.get("recurrency_kind"),
    )


class V201Link(ChargePoint):  # type: ignore[misc]
    def __init__(self, owner: EmulatedCharger, ws: ClientConnection) -> None:
        super().__init__(owner.identity, ws, response_timeout=owner.response_timeout_s, logger=WIRE_LOG)
        self.owner = owner
        if not owner.validate_schemas:
            skip_incoming_validation(self.route_map)
        self._variables = self._device_model()

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
                return  # the "answers nothing" quirk
        await super().route_message(raw_msg)

    # ---------------------------------------------------------------------------- outbound

    async def boot(self) -> tuple[str, int]:
        charger = self.owner.charger
        result = await self.call(
            call.BootNotification(
                charging_station={
                    "model": f"emu-{charger.connectors}x{charger.max_current_a:g}A",
                    "vendor_name": "depotctl-emulator",
                    "firmware_version": "2.0.1-emu",
                },
                reason="PowerUp",
            ),
            suppress=False,
        )
        return str(result.status), int(result.interval)

    def _tx_event(self, event_type: str, trigger: str, tx_info: dict[str, Any], **extra: Any) -> TransactionEventCall:
        self.owner.seq_no += 1
        return call.TransactionEvent(
            event_type=event_type,
            timestamp=extra.pop("timestamp"),
            trigger_reason=trigger,
            seq_no=self.owner.seq_no,
            transaction_info=tx_info,
            **extra,
        )

    async def send(self, event: Outbound) -> None:
        owner = self.owner
        measurands = owner.measurands
        if isinstance(event, Heartbeat):
            await self.call(call.Heartbeat(), suppress=False)
        elif isinstance(event, StatusChange):
            status = _CONNECTOR_STATUS.get(event.status, "Occupied")
            await self.call(
                call.StatusNotification(
                    timestamp=ocpp_time(event.at), connector_status=status, evse_id=event.connector_id, connector_id=1
                ),
                suppress=False,
            )
        elif isinstance(event, TransactionStarted):
            token = {"id_token": event.id_tag, "type": "ISO14443"}
            await self.call(call.Authorize(id_token=token), suppress=False)
            await self.call(
                self._tx_event(
                    "Started",
                    "CablePluggedIn",
                    {"transaction_id": event.local_tx, "charging_state": "EVConnected"},
                    timestamp=ocpp_time(event.sample.at),
                    id_token=token,
                    evse={"id": event.connector_id, "connector_id": 1},
                    meter_value=[meter_value(event.sample, measurands, "Transaction.Begin")],
                    offline=event.offline or None,
                ),
                suppress=False,
            )
        elif isinstance(event, MeterReading):
            context = "Trigger" if event.triggered else "Sample.Periodic"
            if event.local_tx is None:
                await self.call(
                    call.MeterValues(
                        evse_id=event.connector_id, meter_value=[meter_value(event.sample, measurands, context)]
                    ),
                    suppress=False,
                )
                return
            await self.call(
                self._tx_event(
                    "Updated",
                    "Trigger" if event.triggered else "MeterValuePeriodic",
                    {"transaction_id": event.local_tx, "charging_state": _CHARGING_STATE[event.charging_state]},
                    timestamp=ocpp_time(event.sample.at),
                    meter_value=[meter_value(event.sample, measurands, context)],
                    offline=event.offline or None,
                ),
                suppress=False,
            )
        elif isinstance(event, DeviceReportRequested):
            settings = {key: getter() for key, (getter, _) in self._variables.items()}
            writable = [key for key, (_, setter) in self._variables.items() if setter is not None]
            problems = {cid: rt.outage is not None for cid, rt in owner.connectors.items()}
            await self.call(
                call.NotifyReport(request_id=event.request_id, generated_at=ocpp_time(owner.clock.now()), seq_no=0,
                                  report_data=inventory(settings, writable, problems, owner.station_temp_c()),
                                  tbc=False),
                suppress=False,
            )
        elif isinstance(event, DeviceProblem):
            owner.event_id += 1
            monitor = next((m for m in owner.monitors if m.component == "Connector" and m.variable == "Problem"
                            and m.evse_id == event.connector_id), None)
            await self.call(
                call.NotifyEvent(
                    generated_at=ocpp_time(event.at),
                    seq_no=0,
                    event_data=[{
                        "event_id": owner.event_id,
                        "timestamp": ocpp_time(event.at),
                        "trigger": "Delta",
                        "actual_value": "true" if event.active else "false",
                        "tech_code": event.tech_code,
                        "tech_info": event.tech_info,
                        "cleared": None if event.active else True,
                        "event_notification_type": "CustomMonitor" if monitor else "HardWiredNotification",
                        "variable_monitoring_id": monitor.id if monitor else None,
                        "component": {"name": "Connector", "evse": {"id": event.connector_id, "connector_id": 1}},
                        "variable": {"name": "Problem"},
                    }],
                ),
                suppress=False,
            )
        elif isinstance(event, TransactionEnded):
            await self.call(
                self._tx_event(
                    "Ended",
                    "EVDeparted",
                    {"transaction_id": event.local_tx, "charging_state": "Idle", "stopped_reason": "EVDisconnected"},
                    timestamp=ocpp_time(event.sample.at),
                    evse={"id": event.connector_id, "connector_id": 1},
                    meter_value=[meter_value(event.sample, measurands, "Transaction.End")],
                    offline=event.offline or None,
                ),
                suppress=False,
            )
            owner.forget_transaction(event.local_tx)

    # ------------------------------------------------------------------------ smart charging

    @on(Action.set_charging_profile)
    def on_set_charging_profile(
        self, evse_id: int, charging_profile: dict[str, Any], **_: Any
    ) -> call_result.SetChargingProfile:
        owner = self.owner
        profile = parse_profile(evse_id, charging_profile)
        if profile is None or (evse_id != 0 and evse_id not in owner.connectors):
            return _rejected(call_result.SetChargingProfile, "purpose or evse not accepted")
        if profile.purpose is ProfilePurpose.TX and profile.transaction_id is None:
            return _rejected(call_result.SetChargingProfile, "TxProfile needs a transactionId")  # K01.FR.03
        result = owner.install_profile(profile)
        if not result.accepted:
            return _rejected(call_result.SetChargingProfile, result.reason)
        return call_result.SetChargingProfile(status="Accepted")

    @on(Action.get_composite_schedule)
    def on_get_composite_schedule(
        self, duration: int, evse_id: int, charging_rate_unit: str | None = None, **_: Any
    ) -> call_result.GetCompositeSchedule:
        unit = RateUnit(charging_rate_unit) if charging_rate_unit else None
        result = self.owner.composite(evse_id, float(duration), unit)
        if result is None:
            return call_result.GetCompositeSchedule(status="Rejected")
        return call_result.GetCompositeSchedule(
            status="Accepted",
            schedule={
                "evse_id": evse_id,
                "duration": int(result.duration_s),
                "schedule_start": ocpp_time(result.start),
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
        charging_profile_id: int | None = None,
        charging_profile_criteria: dict[str, Any] | None = None,
        **_: Any,
    ) -> call_result.ClearChargingProfile:
        criteria = charging_profile_criteria or {}
        purpose = criteria.get("charging_profile_purpose")
        removed = self.owner.clear_profiles(
            profile_id=charging_profile_id,
            connector_id=criteria.get("evse_id"),
            purpose=_PURPOSE.get(purpose) if purpose else None,
            stack_level=criteria.get("stack_level"),
        )
        return call_result.ClearChargingProfile(status="Accepted" if removed else "Unknown")

    # --------------------------------------------------------------------------- device model

    def _device_model(self) -> dict[tuple[str, str], tuple[Callable[[], str], Callable[[str], bool] | None]]:
        owner = self.owner
        units = ",".join(u.value for u in (RateUnit.AMPS, RateUnit.WATTS) if u in owner.profiles.units)

        def set_interval(value: str) -> bool:
            owner.meter_interval_s = float(int(value))
            return True

        def set_measurands(value: str) -> bool:
            wanted = tuple(m.strip() for m in value.split(",") if m.strip())
            if not wanted or any(m not in SUPPORTED_MEASURANDS for m in wanted):
                return False
            owner.measurands = wanted
            return True

        def set_heartbeat(value: str) -> bool:
            owner.heartbeat_s = float(max(1, int(value)))
            return True

        return {
            ("SampledDataCtrlr", "TxUpdatedInterval"): (lambda: str(int(owner.meter_interval_s)), set_interval),
            ("SampledDataCtrlr", "TxUpdatedMeasurands"): (lambda: ",".join(owner.measurands), set_measurands),
            ("SampledDataCtrlr", "Enabled"): (lambda: "true", None),
            ("OCPPCommCtrlr", "HeartbeatInterval"): (lambda: str(int(owner.heartbeat_s)), set_heartbeat),
            ("SmartChargingCtrlr", "Enabled"): (lambda: "true", None),
            ("SmartChargingCtrlr", "RateUnit"): (lambda: units, None),
            ("SmartChargingCtrlr", "ProfileStackLevel"): (lambda: str(owner.profiles.max_stack_level), None),
            ("SmartChargingCtrlr", "PeriodsPerSchedule"): (lambda: str(owner.profiles.max_periods), None),
            ("SmartChargingCtrlr", "Entries"): (lambda: str(owner.profiles.max_installed), None),
            ("SmartChargingCtrlr", "ACPhaseSwitchingSupported"): (lambda: "false", None),
        }

    def _lookup(self, component: dict[str, Any], variable: dict[str, Any]) -> tuple[str, Any]:
        key = (component.get("name", ""), variable.get("name", ""))
        if key in self._variables:
            return "Accepted", self._variables[key]
        if not any(c == key[0] for c, _ in self._variables):
            return "UnknownComponent", None
        return "UnknownVariable", None

    @on(Action.set_variables)
    def on_set_variables(self, set_variable_data: list[dict[str, Any]], **_: Any) -> call_result.SetVariables:
        results = []
        for item in set_variable_data:
            status, entry = self._lookup(item["component"], item["variable"])
            if entry is not None:
                setter = entry[1]
                try:
                    ok = setter is not None and setter(str(item["attribute_value"]))
                except ValueError:
                    ok = False
                status = "Accepted" if ok else "Rejected"
            results.append({"attribute_status": status, "component": item["component"], "variable": item["variable"]})
        return call_result.SetVariables(set_variable_result=results)

    @on(Action.get_variables)
    def on_get_variables(self, get_variable_data: list[dict[str, Any]], **_: Any) -> call_result.GetVariables:
        results = []
        for item in get_variable_data:
            status, entry = self._lookup(item["component"], item["variable"])
            result = {"attribute_status": status, "component": item["component"], "variable": item["variable"]}
            if entry is not None:
                result["attribute_value"] = entry[0]()
            results.append(result)
        return call_result.GetVariables(get_variable_result=results)

    # ------------------------------------------------------------------------------- transactions

    @on(Action.get_transaction_status)
    def on_get_transaction_status(self, transaction_id: str | None = None, **_: Any) -> call_result.GetTransactionStatus:
        owner = self.owner
        if transaction_id is None:  # E14.FR.06: only whether anything transaction-related is queued
            return call_result.GetTransactionStatus(messages_in_queue=owner.has_queued())
        ongoing = any(rt.local_tx == transaction_id for rt in owner.connectors.values())
        return call_result.GetTransactionStatus(messages_in_queue=owner.has_queued(transaction_id),
                                                ongoing_indicator=ongoing)
    # ------------------------------------------------------------------------------- monitoring

    @on(Action.get_base_report)
    def on_get_base_report(self, request_id: int, report_base: str, **_: Any) -> call_result.GetBaseReport:
        if report_base not in ("FullInventory", "ConfigurationInventory", "SummaryInventory"):
            return call_result.GetBaseReport(status="NotSupported")
        return call_result.GetBaseReport(status="Accepted")

    @after(Action.get_base_report)
    def after_get_base_report(self, request_id: int, report_base: str, **_: Any) -> None:
        if report_base in ("FullInventory", "ConfigurationInventory", "SummaryInventory"):
            self.owner.enqueue(DeviceReportRequested(request_id))

    @on(Action.set_variable_monitoring)
    def on_set_variable_monitoring(self, set_monitoring_data: list[dict[str, Any]], **_: Any,
                                   ) -> call_result.SetVariableMonitoring:
        owner = self.owner
        results, accepted = set_monitors(set_monitoring_data, owner.connectors, owner.next_monitor_id)
        owner.next_monitor_id += len(accepted)
        kept = {m.id for m in accepted}
        owner.monitors = [m for m in owner.monitors if m.id not in kept] + accepted
        return call_result.SetVariableMonitoring(set_monitoring_result=results)

    # ------------------------------------------------------------------------------- trigger

    @on(Action.trigger_message)
    def on_trigger_message(
        self, requested_message: str, evse: dict[str, Any] | None = None, **_: Any
    ) -> call_result.TriggerMessage:
        evse_id = evse.get("id") if evse else None
        if evse_id is not None and evse_id not in self.owner.connectors:
            return call_result.TriggerMessage(status="Rejected")
        if requested_message == "TransactionEvent" and not self.owner.active_transactions():
            return call_result.TriggerMessage(status="Rejected")
        if requested_message in ("MeterValues", "StatusNotification", "Heartbeat", "TransactionEvent"):
            return call_result.TriggerMessage(status="Accepted")
        if requested_message == "BootNotification":
            return call_result.TriggerMessage(status="Rejected")  # F06.FR.17: not after Accepted
        return call_result.TriggerMessage(status="NotImplemented")

    @on(Action.change_availability)
    def on_change_availability(self, operational_status: str, evse: dict[str, Any] | None = None,
                               **_: Any) -> call_result.ChangeAvailability:
        # EVSE k is connector k here (one connector each); no evse: the whole station. A connector other than
        # the EVSE's one does not exist.
        evse_id = int(evse["id"]) if evse else 0
        if evse and evse.get("connector_id") not in (None, 1):
            return call_result.ChangeAvailability(status="Rejected")
        status = self.owner.change_availability(evse_id, operational_status == "Operative")
        return call_result.ChangeAvailability(status=status)

    @after(Action.change_availability)
    def after_change_availability(self, evse: dict[str, Any] | None = None, **_: Any) -> None:
        self.owner.announce_availability(int(evse["id"]) if evse else 0)

    @after(Action.trigger_message)
    def after_trigger_message(self, requested_message: str, evse: dict[str, Any] | None = None, **_: Any) -> None:
        self.owner.trigger(requested_message, evse.get("id") if evse else None)


def _rejected(result_type: Any, reason: str) -> Any:
    return result_type(status="Rejected", status_info={"reason_code": "InvalidValue", "additional_info": reason[:512]})
