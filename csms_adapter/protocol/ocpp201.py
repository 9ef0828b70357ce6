"""OCPP 2.0.1: thin handlers that turn charger messages into events, and the ``ChargerLink`` calls.

An EVSE is what the site file calls a connector: ``evseId`` n is connector n of the charger. Handlers only
translate and answer (never call the charger from inside one). TransactionEvent and MeterValues skip schema
validation and are parsed tolerantly (docs/architecture.md, "OCPP rules the code follows").
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from ocpp.routing import after, on
from ocpp.v201 import ChargePoint, call, call_result, datatypes
from ocpp.v201.enums import (
    Action,
    ChargingProfileKindEnumType,
    ChargingProfilePurposeEnumType,
    OperationalStatusEnumType,
    RegistrationStatusEnumType,
)

from csms_adapter.errors import ChargerError, ProfileRejected
from csms_adapter.protocol import events as ev
from csms_adapter.protocol.authorization import id_token_info
from csms_adapter.protocol.conformance201 import Conformance201
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
    LinkContext,
    LinkPlumbing,
    SamplingResult,
    TransactionStatus,
    WireCall,
    availability_answer,
    is_not_supported,
    tenth_down,
    utc_iso,
)
from csms_adapter.protocol.monitoring201 import Monitoring201
from csms_adapter.protocol.telemetry import normalise_meter_values, parse_departure, safe_time
from optimizer.domain import RateUnit

log = logging.getLogger("depotctl.ocpp201")

OCPP_VERSION = "2.0.1"
SUBPROTOCOL = "ocpp2.0.1"
_PLUG = {
    "Available": ev.PlugState.AVAILABLE,
    "Occupied": ev.PlugState.OCCUPIED,
    "Reserved": ev.PlugState.RESERVED,
    "Unavailable": ev.PlugState.UNAVAILABLE,
    "Faulted": ev.PlugState.FAULTED,
}
_PHASES = {"AC_single_phase": 1, "AC_two_phase": 2, "AC_three_phase": 3}


def _num(raw: object) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    return float(raw)


def charging_needs_event(charger_id: str, evse_id: int, needs: Mapping[str, Any], now: datetime) -> ev.EvChargingNeeds:
    """ISO 15118 needs (snake_cased ``chargingNeeds``) in depotctl units; absent or odd fields stay None."""
    ac = needs.get("ac_charging_parameters")
    dc = needs.get("dc_charging_parameters")
    ac = ac if isinstance(ac, Mapping) else {}
    dc = dc if isinstance(dc, Mapping) else {}
    energy_wh = _num(ac.get("energy_amount")) if ac else _num(dc.get("energy_amount"))
    soc_pct = _num(dc.get("state_of_charge"))
    full_pct = _num(dc.get("full_soc"))
    capacity_wh = _num(dc.get("ev_energy_capacity"))
    max_power_w = _num(dc.get("ev_max_power"))
    return ev.EvChargingNeeds(
        charger_id=charger_id,
        connector_id=evse_id,
        time=now,
        energy_kwh=energy_wh / 1000.0 if energy_wh is not None and energy_wh >= 0 else None,
        departure=parse_departure(needs.get("departure_time"), now),
        max_power_kw=max_power_w / 1000.0 if max_power_w is not None and max_power_w > 0 else None,
        min_current_a=_num(ac.get("ev_min_current")),
        max_current_a=_num(ac.get("ev_max_current")) if ac else _num(dc.get("ev_max_current")),
        soc=soc_pct / 100.0 if soc_pct is not None and 0 <= soc_pct <= 100 else None,
        capacity_kwh=capacity_wh / 1000.0 if capacity_wh is not None and capacity_wh > 0 else None,
        full_soc=full_pct / 100.0 if full_pct is not None and 0 < full_pct <= 100 else None,
        phases=_PHASES.get(str(needs.get("requested_energy_transfer"))),
    )


def _profile(profile_id: int, stack: int, purpose: str, limit: float, unit: RateUnit, phases: int,
             start: datetime, duration_s: int | None, transaction_id: str | None = None,
             valid_to: datetime | None = None) -> dict[str, Any]:
    """A ``chargingProfile`` (Absolute, one schedule, one period) in its wire form (sent as a ``WireCall``)."""
    schedule: dict[str, Any] = {
        "id": profile_id,
        "chargingRateUnit": unit.value,
        # The 2.0.1 text still asks for one decimal; round down so a limit never grows.
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": tenth_down(limit), "numberPhases": phases}],
        "startSchedule": utc_iso(start),
    }
    if duration_s is not None:
        schedule["duration"] = duration_s
    profile: dict[str, Any] = {
        "id": profile_id,
        "stackLevel": stack,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": ChargingProfileKindEnumType.absolute.value,
        "chargingSchedule": [schedule],
    }
    if transaction_id is not None:
        profile["transactionId"] = transaction_id
    if valid_to is not None:
        profile["validTo"] = utc_iso(valid_to)
    return profile


class Ocpp201Link(Monitoring201, LinkPlumbing, Conformance201, ChargePoint):  # type: ignore[misc]
    """One 2.0.1 charging station connection (exactly one per websocket)."""

    ocpp_version = OCPP_VERSION

    def __init__(self, ctx: LinkContext, connection: Any) -> None:
        super().__init__(ctx, connection)
        self._evse_of_tx: dict[str, int] = {}  # Updated/Ended events may omit the evse
        self._tx_offered: dict[int, ev.LimitPeriod] = {}  # last accepted TxProfile per EVSE (Conformance201)
        self._last_seq: dict[str, int] = {}  # transaction → highest seqNo handled on this connection
        # The station's last seqNo of any transaction: a station may count one sequence over all its EVSEs (Edition 1
        # allows it; Edition 2 recommends one per transaction), and then a transaction's own seqNo jumps whenever
        # another EVSE reported in between.
        self._last_station_seq: int | None = None

    # ------------------------------------------------------------------------------ incoming

    @on(Action.boot_notification)
    def on_boot(self, charging_station: dict[str, Any], reason: str = "", **kwargs: Any) -> Any:
        now = self.ctx.clock()
        self.ctx.registered = True
        self._emit(ev.ChargerBooted(self.charger_id, OCPP_VERSION, str(charging_station.get("vendor_name", "")),
                                    str(charging_station.get("model", "")), charging_station.get("firmware_version"),
                                    now))
        return call_result.BootNotification(
            current_time=utc_iso(now), interval=self.ctx.heartbeat_s, status=RegistrationStatusEnumType.accepted
        )

    @after(Action.boot_notification)
    def after_boot(self, **kwargs: Any) -> None:
        if self.ctx.on_accepted is not None and not self.ctx.monitor_only:
            self.ctx.supervisor.spawn(self.ctx.on_accepted(self), f"{self.charger_id}:after-boot")

    @on(Action.heartbeat)
    def on_heartbeat(self, **kwargs: Any) -> Any:
        return call_result.Heartbeat(current_time=utc_iso(self.ctx.clock()))

    @on(Action.status_notification)
    def on_status(self, timestamp: str, connector_status: str, evse_id: int, connector_id: int, **kwargs: Any) -> Any:
        now = self.ctx.clock()
        plug = _PLUG.get(connector_status, ev.PlugState.UNAVAILABLE)
        self._emit(ev.StatusChanged(self.charger_id, evse_id, plug, connector_status, safe_time(timestamp, now),
                                    evse_id=evse_id))
        return call_result.StatusNotification()

    @on(Action.authorize)
    def on_authorize(self, id_token: dict[str, Any], **kwargs: Any) -> Any:
        token = str(id_token.get("id_token", ""))
        self._emit(ev.Authorize(self.charger_id, token, self.ctx.clock()))
        return call_result.Authorize(id_token_info=id_token_info(self.ctx.authorize(token)))

    @on(Action.transaction_event, skip_schema_validation=True)
    def on_transaction_event(self, event_type: Any = None, timestamp: Any = None, transaction_info: Any = None,
                             **kwargs: Any) -> Any:
        now = self.ctx.clock()
        when = safe_time(timestamp, now)
        info = transaction_info if isinstance(transaction_info, Mapping) else {}
        tx = str(info.get("transaction_id", ""))
        if tx and self._repeated(tx, kwargs.get("seq_no")):
            # The same message again (its answer was lost): already applied, so only answered.
            repeated = kwargs.get("id_token")
            repeated_tag = str(repeated.get("id_token")) if isinstance(repeated, Mapping) and repeated.get("id_token") else None
            return call_result.TransactionEvent(
                id_token_info=id_token_info(self.ctx.authorize(repeated_tag)) if repeated_tag is not None else None)
        evse = kwargs.get("evse")
        evse_id = evse.get("id") if isinstance(evse, Mapping) and isinstance(evse.get("id"), int) else None
        first_sight = bool(tx) and tx not in self._evse_of_tx
        if evse_id is not None and tx:
            self._evse_of_tx[tx] = evse_id
        connector = evse_id if evse_id is not None else self._evse_of_tx.get(tx, 0)
        data = normalise_meter_values(self.charger_id, connector, kwargs.get("meter_value"), now=now,
                                      transaction_id=tx or None)
        register = next((s.value for s in data.samples
                         if s.quantity is ev.Quantity.ENERGY_KWH and s.phase is None), None)
        token = kwargs.get("id_token")
        id_tag = str(token.get("id_token")) if isinstance(token, Mapping) and token.get("id_token") else None
        # A transaction first seen in an Updated event started before this connection (or before a controller
        # restart): adopt it, so it is controlled; the live state and the store ignore a start they already know.
        if tx and connector and (event_type == "Started" or (event_type == "Updated" and first_sight)):
            self._emit(ev.TransactionStarted(self.charger_id, connector, tx, id_tag, register, when))
        self._emit_all(data)
        if id_tag is not None and event_type != "Started":
            self._emit(ev.Authorize(self.charger_id, id_tag, when))  # a tag presented mid-transaction
        if event_type == "Ended" and tx:
            self._emit(ev.TransactionStopped(self.charger_id, tx, connector or None, register,
                                             info.get("stopped_reason"), when))
            self._evse_of_tx.pop(tx, None)
        # idTokenInfo answers a token in the request, by the same rule as Authorize (ocpp.authorize).
        return call_result.TransactionEvent(
            id_token_info=id_token_info(self.ctx.authorize(id_tag)) if id_tag is not None else None)

    def _repeated(self, tx: str, seq_no: Any) -> bool:
        """True for a TransactionEvent already handled (seqNo not above the last one of its transaction, E.FR);
        logs a gap (messages the station may still deliver, or lost)."""
        if isinstance(seq_no, bool) or not isinstance(seq_no, int):
            return False
        last = self._last_seq.get(tx)
        if last is not None and seq_no <= last:
            return True
        station_next = self._last_station_seq is not None and seq_no == self._last_station_seq + 1
        if last is not None and seq_no > last + 1 and not station_next:
            log.info("charger=%s transaction=%s seqNo jumped %d -> %d: %d event(s) missing", self.charger_id, tx,
                     last, seq_no, seq_no - last - 1)
        self._last_seq[tx] = seq_no
        self._last_station_seq = seq_no
        return False

    @on(Action.meter_values, skip_schema_validation=True)
    def on_meter_values(self, evse_id: Any = 0, meter_value: Any = None, **kwargs: Any) -> Any:
        connector = evse_id if isinstance(evse_id, int) and evse_id >= 0 else 0
        data = normalise_meter_values(self.charger_id, connector, meter_value, now=self.ctx.clock())
        self._emit_all(data)
        return call_result.MeterValues()

    @on(Action.notify_ev_charging_needs)
    def on_charging_needs(self, evse_id: int, charging_needs: dict[str, Any], **kwargs: Any) -> Any:
        self._emit(charging_needs_event(self.charger_id, evse_id, charging_needs, self.ctx.clock()))
        # K15: the TxProfile follows from the next tick, which the controller brings forward on this event.
        return call_result.NotifyEVChargingNeeds(status="Accepted")

    # ------------------------------------------------------------------------------ outgoing

    async def _set_profile(self, evse_id: int, profile: dict[str, Any], what: str) -> None:
        wire = WireCall("SetChargingProfile", {"evseId": evse_id, "chargingProfile": profile})
        try:
            answer = await self._call(wire)
        except ChargerError as exc:
            if is_not_supported(exc):
                raise ProfileRejected(self.charger_id, what, exc.reason, not_supported=True) from exc
            raise
        status = answer["status"]  # schema-checked: Accepted or Rejected
        if status != "Accepted":
            info = answer.get("statusInfo", {})
            reason = f"status {status} {info.get('reasonCode', '')}".strip()
            raise ProfileRejected(self.charger_id, what, reason)

    async def set_tx_limit(
        self, connector_id: int, limit: float, unit: RateUnit, phases: int, valid_s: float, transaction_id: str,
        now: datetime,
    ) -> None:
        profile = _profile(
            TX_PROFILE_ID_BASE + connector_id, TX_STACK_LEVEL, ChargingProfilePurposeEnumType.tx_profile, limit, unit,
            phases, now - timedelta(seconds=TX_START_BACKDATE_S), int(valid_s) + TX_START_BACKDATE_S,
            transaction_id=transaction_id, valid_to=now + timedelta(seconds=valid_s),
        )
        await self._set_profile(connector_id, profile, "TxProfile")
        self.remember_tx_offer(connector_id, tenth_down(limit), unit, phases, now, now + timedelta(seconds=valid_s))

    async def set_station_max(self, limit: float, unit: RateUnit, phases: int) -> None:
        profile = _profile(STATION_MAX_PROFILE_ID, FAILSAFE_STACK_LEVEL,
                           ChargingProfilePurposeEnumType.charging_station_max_profile, limit, unit, phases,
                           FAILSAFE_START, None)
        await self._set_profile(0, profile, "ChargingStationMaxProfile")

    async def set_live_station_max(self, limit: float, unit: RateUnit, phases: int, valid_s: float,
                                   now: datetime) -> None:
        # Always the same id: another id at this stack level, purpose and evse would be rejected (K01.FR.06).
        profile = _profile(LIVE_STATION_MAX_PROFILE_ID, LIVE_STATION_MAX_STACK_LEVEL,
                           ChargingProfilePurposeEnumType.charging_station_max_profile, limit, unit, phases,
                           now - timedelta(seconds=TX_START_BACKDATE_S), int(valid_s) + TX_START_BACKDATE_S,
                           valid_to=now + timedelta(seconds=valid_s))
        await self._set_profile(0, profile, "ChargingStationMaxProfile (live)")

    async def set_default_profile(self, limit: float, unit: RateUnit, phases: int) -> None:
        # evseId 0 applies to *each* EVSE (docs/architecture.md, "OCPP rules the code follows"); the caller sizes it per connector.
        profile = _profile(TX_DEFAULT_PROFILE_ID, FAILSAFE_STACK_LEVEL,
                           ChargingProfilePurposeEnumType.tx_default_profile, limit, unit, phases, FAILSAFE_START,
                           None)
        await self._set_profile(0, profile, "TxDefaultProfile")

    async def clear_tx_profiles(self) -> bool:
        """Remove every TxProfile (any EVSE, any stack level). True when some existed."""
        criteria = datatypes.ClearChargingProfileType(charging_profile_purpose=ChargingProfilePurposeEnumType.tx_profile)
        result = await self._call(call.ClearChargingProfile(charging_profile_criteria=criteria))
        return bool(result.status == "Accepted")

    async def _set_variables(self, component: str, values: dict[str, str]) -> dict[str, bool]:
        data = [
            datatypes.SetVariableDataType(attribute_value=value, component=datatypes.ComponentType(name=component),
                                          variable=datatypes.VariableType(name=name))
            for name, value in values.items()
        ]
        result = await self._call(call.SetVariables(set_variable_data=data))
        out: dict[str, bool] = {}
        for item in result.set_variable_result or []:
            name = str(item.get("variable", {}).get("name", ""))
            out[name] = item.get("attribute_status") in ("Accepted", "RebootRequired")
        return out

    async def configure_sampling(self, measurands: tuple[str, ...], interval_s: int) -> SamplingResult:
        wanted = tuple(m for m in measurands if m != "Temperature")  # no such measurand in 2.0.1 (§7.17)
        status = await self._set_variables("SampledDataCtrlr", {"TxUpdatedMeasurands": ",".join(wanted),
                                                                 "TxUpdatedInterval": str(int(interval_s))})
        accepted: list[str] = list(wanted)
        if not status.get("TxUpdatedMeasurands", False):
            accepted = []
            for measurand in wanted:
                trial = await self._set_variables("SampledDataCtrlr",
                                                  {"TxUpdatedMeasurands": ",".join([*accepted, measurand])})
                if trial.get("TxUpdatedMeasurands", False):
                    accepted.append(measurand)
        return SamplingResult(tuple(accepted), int(interval_s) if status.get("TxUpdatedInterval", False) else None)

    async def read_capabilities(self) -> Capabilities:
        names = [("Enabled", None), ("RateUnit", None), ("ProfileStackLevel", None), ("PeriodsPerSchedule", None),
                 ("Entries", "ChargingProfiles")]
        data = [
            datatypes.GetVariableDataType(component=datatypes.ComponentType(name="SmartChargingCtrlr"),
                                          variable=datatypes.VariableType(name=name, instance=instance))
            for name, instance in names
        ]
        result = await self._call(call.GetVariables(get_variable_data=data))
        values: dict[str, str] = {}
        for item in result.get_variable_result or []:
            if item.get("attribute_status") == "Accepted" and item.get("attribute_value") is not None:
                values[str(item.get("variable", {}).get("name", ""))] = str(item["attribute_value"])
        units = frozenset(RateUnit(u.strip()) for u in values.get("RateUnit", "").split(",") if u.strip() in ("A", "W"))
        enabled = values.get("Enabled")
        return Capabilities(
            smart_charging=enabled is None or enabled.lower() == "true",
            rate_units=units or Capabilities().rate_units,
            max_stack_level=_int_or_none(values.get("ProfileStackLevel")),
            max_periods=_int_or_none(values.get("PeriodsPerSchedule")),
            max_profiles=_int_or_none(values.get("Entries")),
        )

    async def composite_limit(self, connector_id: int, duration_s: int, unit: RateUnit) -> float | None:
        result = await self._call(
            call.GetCompositeSchedule(duration=duration_s, evse_id=connector_id, charging_rate_unit=unit.value)
        )
        schedule = result.schedule if isinstance(result.schedule, dict) else None
        if result.status != "Accepted" or schedule is None:
            return None
        periods = schedule.get("charging_schedule_period") or []
        limits = [float(p["limit"]) for p in periods if isinstance(p, dict) and "limit" in p]
        return limits[-1] if limits else None  # periods are in time order: the last is what remains

    async def trigger_status(self) -> None:
        await self._call(call.TriggerMessage(requested_message="StatusNotification"))

    async def change_availability(self, connector_id: int, operative: bool) -> str:
        # depotctl's connector k is the station's EVSE k (one connector each); 0 is the whole station (no evse).
        status = OperationalStatusEnumType.operative if operative else OperationalStatusEnumType.inoperative
        evse = datatypes.EVSEType(id=connector_id) if connector_id else None
        result = await self._call(call.ChangeAvailability(operational_status=status, evse=evse))
        return availability_answer(self.charger_id, result.status)

    async def transaction_status(self, transaction_id: str) -> TransactionStatus | None:
        result = await self._call(call.GetTransactionStatus(transaction_id=transaction_id))
        ongoing = result.ongoing_indicator
        return TransactionStatus(ongoing if isinstance(ongoing, bool) else None, bool(result.messages_in_queue))


def _int_or_none(raw: str | None) -> int | None:
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None
