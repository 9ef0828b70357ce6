"""OCPP 1.6J: thin handlers that turn charger messages into events, and the ``ChargerLink`` calls.

Handlers only translate and answer; they never call the charger (that deadlocks the receive loop) and never block.
Telemetry routes skip schema validation and are parsed tolerantly: real chargers send non-conformant meter
values, and a CallError makes them retry for ever (docs/architecture.md, "OCPP rules the code follows").
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import (
    Action,
    AvailabilityType,
    ChargingProfileKindType,
    ChargingProfilePurposeType,
    ChargingProfileStatus,
    ConfigurationStatus,
    RegistrationStatus,
)

from csms_adapter.errors import ChargerError, ProfileRejected
from csms_adapter.protocol import events as ev
from csms_adapter.protocol.authorization import id_tag_info
from csms_adapter.protocol.conformance16 import Conformance16
from csms_adapter.protocol.link import (
    FAILSAFE_STACK_LEVEL,
    FAILSAFE_START,
    LIVE_STATION_MAX_PROFILE_ID,
    LIVE_STATION_MAX_STACK_LEVEL,
    STATION_MAX_PROFILE_ID,
    TX_DEFAULT_PROFILE_ID,
    TX_PROFILE_ID_BASE,
    TX_STACK_LEVEL,
    TX_START_BACKDATE_S,
    Capabilities,
    LinkPlumbing,
    SamplingResult,
    TransactionStatus,
    WireCall,
    availability_answer,
    is_not_supported,
    tenth_down,
    utc_iso,
)
from csms_adapter.protocol.monitoring16 import Monitoring16
from csms_adapter.protocol.telemetry import normalise_meter_values, safe_time
from optimizer.domain import RateUnit

OCPP_VERSION = "1.6"
SUBPROTOCOL = "ocpp1.6"
# 1.6 ChargePointStatus -> plug state. Preparing..Finishing all mean a vehicle is plugged in.
_PLUG = {
    "Available": ev.PlugState.AVAILABLE,
    "Preparing": ev.PlugState.OCCUPIED,
    "Charging": ev.PlugState.OCCUPIED,
    "SuspendedEVSE": ev.PlugState.OCCUPIED,
    "SuspendedEV": ev.PlugState.OCCUPIED,
    "Finishing": ev.PlugState.OCCUPIED,
    "Reserved": ev.PlugState.RESERVED,
    "Unavailable": ev.PlugState.UNAVAILABLE,
    "Faulted": ev.PlugState.FAULTED,
}
_UNIT_NAMES = {"Current": RateUnit.AMPS, "Power": RateUnit.WATTS}  # 1.6 spells rate units this way in config


def _schedule(limit: float, unit: RateUnit, phases: int, start: datetime, duration_s: int | None) -> dict[str, Any]:
    schedule: dict[str, Any] = {
        "chargingRateUnit": unit.value,
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": tenth_down(limit), "numberPhases": phases}],
        "startSchedule": utc_iso(start),
    }
    if duration_s is not None:
        schedule["duration"] = duration_s
    return schedule


def charging_profile(profile_id: int, stack_level: int, purpose: str, schedule: dict[str, Any], *,
                     transaction_id: int | None = None, valid_to: datetime | None = None) -> dict[str, Any]:
    """A 1.6 ``csChargingProfiles`` object (Absolute) in its wire form (sent as a ``WireCall``)."""
    profile: dict[str, Any] = {
        "chargingProfileId": profile_id,
        "stackLevel": stack_level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": ChargingProfileKindType.absolute.value,
        "chargingSchedule": schedule,
    }
    if transaction_id is not None:
        profile["transactionId"] = transaction_id
    if valid_to is not None:
        profile["validTo"] = utc_iso(valid_to)
    return profile


class Ocpp16Link(Monitoring16, LinkPlumbing, Conformance16, ChargePoint):  # type: ignore[misc]
    """One 1.6J charger connection (exactly one per websocket: docs/architecture.md, "OCPP rules the code follows")."""

    ocpp_version = OCPP_VERSION

    # ------------------------------------------------------------------------------ incoming

    @on(Action.boot_notification)
    def on_boot(self, charge_point_vendor: str, charge_point_model: str, **kwargs: Any) -> Any:
        now = self.ctx.clock()
        self.ctx.registered = True
        self._emit(ev.ChargerBooted(self.charger_id, OCPP_VERSION, charge_point_vendor, charge_point_model,
                                    kwargs.get("firmware_version"), now))
        return call_result.BootNotification(
            current_time=utc_iso(now), interval=self.ctx.heartbeat_s, status=RegistrationStatus.accepted
        )

    @after(Action.boot_notification)
    def after_boot(self, **kwargs: Any) -> None:
        # Runs after the Accepted answer is sent; the setup calls the charger, so it must not run inside a handler.
        if self.ctx.on_accepted is not None and not self.ctx.monitor_only:
            self.ctx.supervisor.spawn(self.ctx.on_accepted(self), f"{self.charger_id}:after-boot")

    @on(Action.heartbeat)
    def on_heartbeat(self, **kwargs: Any) -> Any:
        return call_result.Heartbeat(current_time=utc_iso(self.ctx.clock()))

    @on(Action.status_notification)
    def on_status(self, connector_id: int, status: str, error_code: str = "", **kwargs: Any) -> Any:
        now = self.ctx.clock()
        plug = _PLUG.get(status, ev.PlugState.UNAVAILABLE)
        when = safe_time(kwargs.get("timestamp"), now)
        self._emit(ev.StatusChanged(self.charger_id, connector_id, plug, status, when, error_code or None,
                                    kwargs.get("info"), kwargs.get("vendor_id"), kwargs.get("vendor_error_code")))
        return call_result.StatusNotification()

    @on(Action.authorize)
    def on_authorize(self, id_tag: str, **kwargs: Any) -> Any:
        # ocpp.authorize decides (authorization.py); the tag also identifies the vehicle.
        self._emit(ev.Authorize(self.charger_id, id_tag, self.ctx.clock()))
        return call_result.Authorize(id_tag_info=id_tag_info(self.ctx.authorize(id_tag)))

    @on(Action.start_transaction)
    def on_start(self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **kwargs: Any) -> Any:
        now = self.ctx.clock()
        tx = self.ctx.next_transaction_id()
        self._emit(ev.TransactionStarted(self.charger_id, connector_id, str(tx), id_tag, meter_start / 1000.0,
                                         safe_time(timestamp, now)))
        # A transaction id even for a refused tag: the charge point then stops it (StopTransactionOnInvalidId).
        return call_result.StartTransaction(transaction_id=tx, id_tag_info=id_tag_info(self.ctx.authorize(id_tag)))

    @on(Action.stop_transaction, skip_schema_validation=True)
    def on_stop(self, transaction_id: Any = None, meter_stop: Any = None, timestamp: Any = None, **kwargs: Any) -> Any:
        now = self.ctx.clock()
        tx = str(transaction_id) if transaction_id is not None else ""
        data = normalise_meter_values(self.charger_id, 0, kwargs.get("transaction_data"), now=now, transaction_id=tx)
        self._emit_all(data)
        register = meter_stop / 1000.0 if isinstance(meter_stop, int | float) and meter_stop >= 0 else None
        self._emit(ev.TransactionStopped(self.charger_id, tx, None, register, kwargs.get("reason"),
                                         safe_time(timestamp, now)))
        # idTagInfo only for a stop with a tag (it is optional: a transaction may stop without one).
        id_tag = kwargs.get("id_tag")
        return call_result.StopTransaction(
            id_tag_info=id_tag_info(self.ctx.authorize(id_tag)) if isinstance(id_tag, str) and id_tag else None)

    @on(Action.meter_values, skip_schema_validation=True)
    def on_meter_values(self, connector_id: Any = 0, meter_value: Any = None, **kwargs: Any) -> Any:
        tx_raw = kwargs.get("transaction_id")
        connector = connector_id if isinstance(connector_id, int) and connector_id >= 0 else 0
        data = normalise_meter_values(self.charger_id, connector, meter_value, now=self.ctx.clock(),
                                      transaction_id=str(tx_raw) if tx_raw is not None else None)
        self._emit_all(data)
        return call_result.MeterValues()

    # ------------------------------------------------------------------------------ outgoing

    async def _set_profile(self, connector_id: int, profile: dict[str, Any], what: str) -> None:
        wire = WireCall("SetChargingProfile", {"connectorId": connector_id, "csChargingProfiles": profile})
        try:
            answer = await self._call(wire)
        except ChargerError as exc:
            if is_not_supported(exc):
                raise ProfileRejected(self.charger_id, what, exc.reason, not_supported=True) from exc
            raise
        status = answer["status"]  # schema-checked: one of the three
        if status != ChargingProfileStatus.accepted:
            raise ProfileRejected(self.charger_id, what, f"status {status}",
                                  not_supported=status == ChargingProfileStatus.not_supported)

    async def set_tx_limit(
        self, connector_id: int, limit: float, unit: RateUnit, phases: int, valid_s: float, transaction_id: str,
        now: datetime,
    ) -> None:
        if not transaction_id.isdigit():
            reason = f"transaction id {transaction_id!r} is not a 1.6 integer"
            raise ProfileRejected(self.charger_id, "TxProfile", reason)
        start = now - timedelta(seconds=TX_START_BACKDATE_S)
        profile = charging_profile(
            TX_PROFILE_ID_BASE + connector_id, TX_STACK_LEVEL, ChargingProfilePurposeType.tx_profile.value,
            _schedule(limit, unit, phases, start, int(valid_s) + TX_START_BACKDATE_S),
            transaction_id=int(transaction_id), valid_to=now + timedelta(seconds=valid_s),
        )
        await self._set_profile(connector_id, profile, "TxProfile")

    async def set_station_max(self, limit: float, unit: RateUnit, phases: int) -> None:
        profile = charging_profile(STATION_MAX_PROFILE_ID, FAILSAFE_STACK_LEVEL,
                                   ChargingProfilePurposeType.charge_point_max_profile.value,
                                   _schedule(limit, unit, phases, FAILSAFE_START, None))
        await self._set_profile(0, profile, "ChargePointMaxProfile")

    async def set_live_station_max(self, limit: float, unit: RateUnit, phases: int, valid_s: float,
                                   now: datetime) -> None:
        start = now - timedelta(seconds=TX_START_BACKDATE_S)
        # validTo and duration both end it: firmware that ignores one still honours the other.
        profile = charging_profile(
            LIVE_STATION_MAX_PROFILE_ID, LIVE_STATION_MAX_STACK_LEVEL,
            ChargingProfilePurposeType.charge_point_max_profile.value,
            _schedule(limit, unit, phases, start, int(valid_s) + TX_START_BACKDATE_S),
            valid_to=now + timedelta(seconds=valid_s),
        )
        await self._set_profile(0, profile, "ChargePointMaxProfile (live)")

    async def set_default_profile(self, limit: float, unit: RateUnit, phases: int) -> None:
        profile = charging_profile(TX_DEFAULT_PROFILE_ID, FAILSAFE_STACK_LEVEL,
                                   ChargingProfilePurposeType.tx_default_profile.value,
                                   _schedule(limit, unit, phases, FAILSAFE_START, None))
        await self._set_profile(0, profile, "TxDefaultProfile")

    async def clear_tx_profiles(self) -> bool:
        """Remove every TxProfile (any connector, any stack level). True when some existed."""
        result = await self._call(call.ClearChargingProfile(
            charging_profile_purpose=ChargingProfilePurposeType.tx_profile))
        return bool(result.status == "Accepted")

    async def _change(self, key: str, value: str) -> bool:
        result = await self._call(call.ChangeConfiguration(key=key, value=value))
        return result.status in (ConfigurationStatus.accepted, ConfigurationStatus.reboot_required)

    async def configure_sampling(self, measurands: tuple[str, ...], interval_s: int) -> SamplingResult:
        wanted = (*measurands, "Temperature") if "Temperature" not in measurands else measurands
        # §3.16.4: one unsupported measurand rejects the whole list, so fall back to growing it one at a time.
        if await self._change("MeterValuesSampledData", ",".join(wanted)):
            accepted = list(wanted)
        else:
            accepted = []
            for measurand in wanted:
                if await self._change("MeterValuesSampledData", ",".join([*accepted, measurand])):
                    accepted.append(measurand)
        interval_ok = await self._change("MeterValueSampleInterval", str(int(interval_s)))
        return SamplingResult(tuple(accepted), int(interval_s) if interval_ok else None)

    async def read_capabilities(self) -> Capabilities:
        keys = [
            "SupportedFeatureProfiles",
            "ChargingScheduleAllowedChargingRateUnit",
            "ChargeProfileMaxStackLevel",
            "ChargingScheduleMaxPeriods",
            "MaxChargingProfilesInstalled",
        ]
        result = await self._call(call.GetConfiguration(key=keys))
        values = {
            str(item.get("key")): str(item.get("value", ""))
            for item in (result.configuration_key or [])
            if isinstance(item, dict)
        }
        profiles = values.get("SupportedFeatureProfiles")
        units = frozenset(
            _UNIT_NAMES[u.strip()] for u in values.get("ChargingScheduleAllowedChargingRateUnit", "").split(",")
            if u.strip() in _UNIT_NAMES
        )
        return Capabilities(
            smart_charging=profiles is None or "SmartCharging" in profiles,
            rate_units=units or Capabilities().rate_units,
            max_stack_level=_int_or_none(values.get("ChargeProfileMaxStackLevel")),
            max_periods=_int_or_none(values.get("ChargingScheduleMaxPeriods")),
            max_profiles=_int_or_none(values.get("MaxChargingProfilesInstalled")),
        )

    async def composite_limit(self, connector_id: int, duration_s: int, unit: RateUnit) -> float | None:
        result = await self._call(
            call.GetCompositeSchedule(connector_id=connector_id, duration=duration_s, charging_rate_unit=unit.value)
        )
        if result.status != "Accepted" or not isinstance(result.charging_schedule, dict):
            return None
        periods = result.charging_schedule.get("charging_schedule_period") or []
        limits = [float(p["limit"]) for p in periods if isinstance(p, dict) and "limit" in p]
        return limits[-1] if limits else None  # periods are in time order: the last is what remains

    async def trigger_status(self) -> None:
        await self._call(call.TriggerMessage(requested_message="StatusNotification"))

    async def change_availability(self, connector_id: int, operative: bool) -> str:
        kind = AvailabilityType.operative if operative else AvailabilityType.inoperative
        result = await self._call(call.ChangeAvailability(connector_id=connector_id, type=kind))
        return availability_answer(self.charger_id, result.status)

    async def transaction_status(self, transaction_id: str) -> TransactionStatus | None:
        return None  # 1.6 has no such question: the status notifications tell which connectors still charge


def _int_or_none(raw: str | None) -> int | None:
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None

