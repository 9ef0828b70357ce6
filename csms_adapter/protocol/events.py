"""The version-independent event model: what the OCPP modules turn charger messages into.

Nothing outside ``ocpp16``/``ocpp201`` sees an OCPP payload; the live state, the store and the control loop
consume these frozen values only. Units are in the names and SI-ish: power kW, current A (per phase), energy
kWh, SoC a fraction 0..1, temperature °C. Every time is a timezone-aware UTC ``datetime``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from optimizer.domain import RateUnit


class Quantity(StrEnum):
    """A normalised measurand. The OCPP name is kept on the sample for the record."""

    POWER_KW = "power_kw"  # Power.Active.Import, grid → EV
    POWER_OFFERED_KW = "power_offered_kw"
    CURRENT_A = "current_a"  # Current.Import, per phase when ``phase`` is set
    CURRENT_OFFERED_A = "current_offered_a"  # the limit the charger applies now
    ENERGY_KWH = "energy_kwh"  # Energy.Active.Import.Register (monotonic)
    SOC = "soc"  # 0..1
    TEMPERATURE_C = "temperature_c"
    VOLTAGE_V = "voltage_v"


class PlugState(StrEnum):
    """Connector state, merged from 1.6 ChargePointStatus and 2.0.1 ConnectorStatus."""

    AVAILABLE = "available"  # nothing plugged in
    OCCUPIED = "occupied"  # a vehicle is plugged in (1.6 Preparing/Charging/Suspended*/Finishing)
    UNAVAILABLE = "unavailable"
    FAULTED = "faulted"
    RESERVED = "reserved"


class Source(StrEnum):
    """Where a measured value came from."""

    METER = "meter"  # the charger's meter (OCPP sampled value)
    EV = "ev"  # reported by the vehicle (location EV, ISO 15118)
    VENDOR = "vendor"  # vendor-specific data (2.0.1 customData)


@dataclass(frozen=True, slots=True)
class ChargerConnected:
    charger_id: str
    ocpp_version: str
    time: datetime
    monitor_only: bool = False


@dataclass(frozen=True, slots=True)
class ChargerDisconnected:
    charger_id: str
    time: datetime
    reason: str | None = None  # e.g. "closed by charger", "idle timeout", "replaced by a new connection"
    close_code: int | None = None  # websocket close code, when one was received or sent


@dataclass(frozen=True, slots=True)
class ChargerBooted:
    charger_id: str
    ocpp_version: str
    vendor: str
    model: str
    firmware: str | None
    time: datetime


@dataclass(frozen=True, slots=True)
class StatusChanged:
    """1.6 StatusNotification (all its fields) or 2.0.1 StatusNotification (connectorStatus; 2.0.1 carries its
    errors in NotifyEvent instead). ``time`` is the charger's timestamp when it gave a sane one."""

    charger_id: str
    connector_id: int  # 0 = the whole charger
    plug: PlugState
    raw_status: str
    time: datetime
    error_code: str | None = None  # 1.6 errorCode ("NoError" when fine)
    info: str | None = None
    vendor_id: str | None = None
    vendor_error_code: str | None = None
    evse_id: int | None = None  # 2.0.1: the EVSE; connector_id is then the EVSE id and this the same value


@dataclass(frozen=True, slots=True)
class Authorize:
    charger_id: str
    id_tag: str
    time: datetime


@dataclass(frozen=True, slots=True)
class TransactionStarted:
    charger_id: str
    connector_id: int
    transaction_id: str  # 1.6 integers are carried as their decimal string
    id_tag: str | None
    energy_register_kwh: float | None  # meter reading at start, if known
    time: datetime


@dataclass(frozen=True, slots=True)
class TransactionStopped:
    charger_id: str
    transaction_id: str
    connector_id: int | None  # 1.6 StopTransaction does not say; the live state knows
    energy_register_kwh: float | None
    reason: str | None
    time: datetime


@dataclass(frozen=True, slots=True)
class MeterSample:
    """One normalised value. ``phase`` is None for a total (or a phase-less quantity like SoC)."""

    charger_id: str
    connector_id: int
    quantity: Quantity
    value: float
    measurand: str  # the OCPP measurand name it came from
    time: datetime
    source: Source = Source.METER
    phase: str | None = None
    location: str = "Outlet"
    context: str = "Sample.Periodic"
    transaction_id: str | None = None


@dataclass(frozen=True, slots=True)
class EvChargingNeeds:
    """ISO 15118 charging needs (2.0.1 NotifyEVChargingNeeds), converted to kWh/kW/A/fraction."""

    charger_id: str
    connector_id: int  # the EVSE id
    time: datetime
    energy_kwh: float | None = None
    departure: datetime | None = None
    max_power_kw: float | None = None
    min_current_a: float | None = None
    max_current_a: float | None = None
    soc: float | None = None
    capacity_kwh: float | None = None
    full_soc: float | None = None
    phases: int | None = None


@dataclass(frozen=True, slots=True)
class RejectedValue:
    """A value the normaliser dropped, and why; the rest of its message was still used."""

    charger_id: str
    connector_id: int
    measurand: str
    raw: str
    reason: str
    time: datetime


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """One ``eventData`` item of a 2.0.1 NotifyEvent (a monitor or hard-wired event of the device model)."""

    charger_id: str
    time: datetime
    event_id: int
    trigger: str  # Alerting | Delta | Periodic
    component: str
    variable: str
    actual_value: str
    event_notification_type: str  # HardWiredNotification | HardWiredMonitor | PreconfiguredMonitor | CustomMonitor
    component_instance: str | None = None
    variable_instance: str | None = None
    evse_id: int | None = None
    connector_id: int | None = None
    cause: int | None = None
    tech_code: str | None = None
    tech_info: str | None = None
    cleared: bool | None = None
    transaction_id: str | None = None
    variable_monitoring_id: int | None = None


@dataclass(frozen=True, slots=True)
class SecurityEventReported:
    """1.6 (security extension) / 2.0.1 SecurityEventNotification."""

    charger_id: str
    time: datetime
    type: str
    tech_info: str | None = None


@dataclass(frozen=True, slots=True)
class FirmwareStatusReported:
    """1.6 / 2.0.1 FirmwareStatusNotification (1.6 security extension SignedFirmwareStatusNotification alike)."""

    charger_id: str
    time: datetime
    status: str
    request_id: int | None = None


@dataclass(frozen=True, slots=True)
class DiagnosticsStatusReported:
    """1.6 DiagnosticsStatusNotification (``kind`` "diagnostics") or LogStatusNotification (``kind`` "log")."""

    charger_id: str
    time: datetime
    status: str
    kind: str = "diagnostics"
    request_id: int | None = None


@dataclass(frozen=True, slots=True)
class LimitPeriod:
    """One period of a charging schedule a charger reported, in its own unit: ``limit`` A per phase or W, on
    ``phases`` phases (None: not said), from ``start`` until ``end`` (None: open-ended)."""

    start: datetime
    end: datetime | None
    limit: float
    unit: RateUnit
    phases: int | None = None


@dataclass(frozen=True, slots=True)
class ChargingLimitReported:
    """2.0.1 NotifyChargingLimit: a limit set outside depotctl (a local EMS, the grid operator). ``evse_id`` 0 is
    the whole charger; no ``periods`` means the charger did not say how much."""

    charger_id: str
    time: datetime
    source: str  # EMS | SO | CSO | Other
    evse_id: int
    periods: tuple[LimitPeriod, ...] = ()
    grid_critical: bool | None = None
    unusable: bool = False  # it came with schedules, none of which could be read


@dataclass(frozen=True, slots=True)
class ChargingLimitCleared:
    """2.0.1 ClearedChargingLimit: the external limit of ``source`` is gone (``evse_id`` None: the whole charger)."""

    charger_id: str
    time: datetime
    source: str
    evse_id: int | None = None


@dataclass(frozen=True, slots=True)
class EvScheduleReported:
    """2.0.1 NotifyEVChargingSchedule: what the vehicle plans to draw, and the TxProfile limit it was offered then
    (None: no TxProfile was sent for this EVSE on this connection). ``accepted`` is the answer depotctl gave."""

    charger_id: str
    time: datetime
    evse_id: int
    periods: tuple[LimitPeriod, ...]
    offered: LimitPeriod | None
    accepted: bool


Event = (
    ChargerConnected
    | ChargerDisconnected
    | ChargerBooted
    | StatusChanged
    | Authorize
    | TransactionStarted
    | TransactionStopped
    | MeterSample
    | EvChargingNeeds
    | RejectedValue
    | DeviceEvent
    | SecurityEventReported
    | FirmwareStatusReported
    | DiagnosticsStatusReported
    | ChargingLimitReported
    | ChargingLimitCleared
    | EvScheduleReported
)
