"""What an emulated charger tells the CSMS, version-neutral: the station queues these and the
per-version link turns each into the right OCPP call. Queuing them (instead of calling at once) keeps
the order of transaction messages across a disconnect, as real chargers do (OCPP-J §5.4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

SUPPORTED_MEASURANDS: tuple[str, ...] = (
    "Energy.Active.Import.Register",
    "Power.Active.Import",
    "Current.Import",
    "Current.Offered",
    "Power.Offered",
    "Voltage",
    "SoC",
)
DEFAULT_MEASURANDS: tuple[str, ...] = (
    "Energy.Active.Import.Register",
    "Power.Active.Import",
    "Current.Import",
    "Current.Offered",
    "SoC",
)
PHASE_NAMES = ("L1", "L2", "L3")


class ConnectorStatus(StrEnum):
    """1.6 ChargePointStatus values; 2.0.1 folds all but Available into Occupied."""

    AVAILABLE = "Available"
    PREPARING = "Preparing"
    CHARGING = "Charging"
    SUSPENDED_EV = "SuspendedEV"
    SUSPENDED_EVSE = "SuspendedEVSE"
    FINISHING = "Finishing"
    FAULTED = "Faulted"  # injected (csms_adapter.emulator.faults); 2.0.1 sends it as is
    UNAVAILABLE = "Unavailable"


@dataclass(frozen=True, slots=True)
class MeterSample:
    """One reading of a connector's meter, in SI units; ``soc`` 0..1 or None when not reported."""

    at: datetime
    energy_wh: float
    power_w: float
    current_a: float  # per phase, on each of ``phases`` phases
    offered_a: float
    offered_w: float
    voltage_v: float
    phases: int
    soc: float | None
    # Phases the charger is wired with: a meter reports each of them, 0 A on those the vehicle does not use
    # (so a 1-phase vehicle on a 3-phase charger shows as one, not as a balanced load); 0: just ``phases``.
    wired_phases: int = 0


@dataclass(frozen=True, slots=True)
class SampledValue:
    measurand: str
    value: float
    unit: str
    phase: str | None = None


def sampled_values(sample: MeterSample, measurands: tuple[str, ...]) -> list[SampledValue]:
    """The values of ``sample`` for the configured measurands (SoC only when the vehicle reports it)."""
    out: list[SampledValue] = []
    for measurand in measurands:
        if measurand == "Energy.Active.Import.Register":
            out.append(SampledValue(measurand, round(sample.energy_wh, 1), "Wh"))
        elif measurand == "Power.Active.Import":
            out.append(SampledValue(measurand, round(sample.power_w, 1), "W"))
        elif measurand == "Current.Import":
            out.extend(
                SampledValue(measurand, round(sample.current_a, 2) if k < sample.phases else 0.0, "A", PHASE_NAMES[k])
                for k in range(max(sample.phases, sample.wired_phases))
            )
        elif measurand == "Current.Offered":
            out.append(SampledValue(measurand, round(sample.offered_a, 1), "A"))
        elif measurand == "Power.Offered":
            out.append(SampledValue(measurand, round(sample.offered_w, 1), "W"))
        elif measurand == "Voltage":
            out.extend(
                SampledValue(measurand, sample.voltage_v, "V", f"{PHASE_NAMES[k]}-N") for k in range(sample.phases)
            )
        elif measurand == "SoC" and sample.soc is not None:
            out.append(SampledValue(measurand, round(sample.soc * 100.0, 1), "Percent"))
    return out


@dataclass(frozen=True, slots=True)
class Heartbeat:
    pass


@dataclass(frozen=True, slots=True)
class StatusChange:
    connector_id: int
    status: ConnectorStatus
    at: datetime
    error_code: str = "NoError"  # 1.6 ChargePointErrorCode
    vendor_error_code: str | None = None
    info: str | None = None


@dataclass(frozen=True, slots=True)
class DeviceProblem:
    """2.0.1 only: a NotifyEvent ``Connector/Problem`` (``active`` False: the problem cleared)."""

    connector_id: int
    active: bool
    at: datetime
    tech_code: str | None = None
    tech_info: str | None = None


@dataclass(frozen=True, slots=True)
class TransactionStarted:
    connector_id: int
    local_tx: str  # the station's own id (2.0.1 transactionId); 1.6 gets its id from the CSMS
    id_tag: str
    sample: MeterSample
    offline: bool


@dataclass(frozen=True, slots=True)
class MeterReading:
    connector_id: int
    local_tx: str | None
    sample: MeterSample
    charging_state: ConnectorStatus
    triggered: bool
    offline: bool


@dataclass(frozen=True, slots=True)
class TransactionEnded:
    connector_id: int
    local_tx: str
    id_tag: str
    sample: MeterSample
    offline: bool


@dataclass(frozen=True, slots=True)
class DeviceReportRequested:
    """2.0.1 only: send the inventory (NotifyReport) a GetBaseReport asked for."""

    request_id: int


Outbound = (Heartbeat | StatusChange | TransactionStarted | MeterReading | TransactionEnded | DeviceProblem
            | DeviceReportRequested)
