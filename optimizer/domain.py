"""The one domain model of depotctl: site, snapshot and plan as frozen values.

Everything here is plain data with units in the names. The YAML loader produces a ``Site``; the live
controller and the simulator produce ``Snapshot``s; strategies return ``Plan``s. Nothing in this module
does I/O. The site's own values (``Site``, ``Charger``, ``Circuit``, the settings, ``Phase``, ``RateUnit``,
``ThermalModel``) are defined in ``optimizer.site_model`` and handed on from here under the same names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from optimizer.site_model import (
    ALL_PHASES,
    Ambient,
    BaseLoad,
    Charger,
    ChargerAuth,
    Circuit,
    ControlSettings,
    Grid,
    GridWindow,
    HttpSettings,
    MonitoringSettings,
    Objective,
    OcppLimits,
    OcppSettings,
    Phase,
    RateUnit,
    Site,
    StorageSettings,
    Tariff,
    ThermalModel,
    TlsSettings,
    VehicleProfile,
    WebhookSpec,
)

# Every name, the site's ones handed on from optimizer.site_model included.
__all__ = [
    "ALL_PHASES", "Ambient", "BaseLoad", "BatteryStress", "Charger", "ChargerAuth", "Circuit", "ConnectorPlan",
    "ControlSettings", "ExternalLimit", "Grid", "GridWindow", "HttpSettings", "LimitSource", "MonitoringSettings",
    "Objective", "OcppLimits", "OcppSettings", "Phase", "Plan", "PlanStatus", "PlugInAllowance", "PlugInSlot",
    "RateUnit", "SessionState", "Site", "Snapshot", "StorageSettings", "Tariff", "ThermalModel", "TlsSettings",
    "UncontrolledLoad", "ValueSource", "VehicleProfile", "WebhookSpec",
]


class ValueSource(StrEnum):
    """Where a session value came from, in falling order of trust."""

    ISO15118 = "iso15118"
    MEASURED = "measured"
    VEHICLE_DATA = "vehicle_data"
    ROSTER = "roster"
    DEFAULT = "default"
    ESTIMATED = "estimated"
    MODEL = "model"


class PlanStatus(StrEnum):
    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    INFEASIBLE_SAFE = "infeasible_safe"


# ----------------------------------------------------------------------------------------- snapshot


@dataclass(frozen=True, slots=True)
class SessionState:
    """One plugged-in vehicle as the controller sees it now. ``None`` means unknown: the optimizer
    fills it from ISO 15118 needs, the roster and site defaults (in that order of trust)."""

    charger_id: str
    connector_id: int
    soc: float | None = None
    soc_source: ValueSource = ValueSource.MEASURED
    energy_needed_kwh: float | None = None
    battery_kwh: float | None = None
    target_soc: float | None = None
    departure: datetime | None = None
    max_power_kw: float | None = None
    battery_temp_c: float | None = None
    temp_source: ValueSource = ValueSource.MEASURED
    priority: float | None = None
    id_tag: str | None = None
    vehicle_id: str | None = None
    knee_soc: float | None = None
    thermal: ThermalModel | None = None  # None: from roster/defaults; ThermalModel.none(): no model
    phases: int | None = None  # phases the vehicle actually draws on (1-phase EV on a 3-phase charger)
    # The site phases it was measured drawing on (None: not known; the worst case is planned, see
    # optimizer.circuits.phase_load) and the unit its charger is commanded in (None: the site file's, else A).
    site_phases: tuple[Phase, ...] | None = None
    rate_unit: RateUnit | None = None
    plugged_in_at: datetime | None = None
    energy_delivered_kwh: float = 0.0
    # How far the SoC can be trusted (optimizer.needs.need_margin_kwh): the reading's quantum (None: whole
    # percent, as ISO 15118 and the SoC measurand report it), how old the reading is, and the power the vehicle
    # draws now (None: unknown) so a vehicle believed done but still drawing is not cut off.
    soc_resolution: float | None = None
    soc_age_s: float | None = None
    power_kw: float | None = None
    # One standard deviation of ``soc`` when it was fitted to several readings (optimizer.soc_fusion); None: a
    # single reading, known to its quantum.
    soc_error: float | None = None
    # When the energy register and the battery temperature were read (None: at the snapshot's time). The thermal
    # fit pairs them only when they were read together: a meter whose values arrive late next to a fresh
    # telematics temperature would teach it a heating rate far below the real one.
    energy_at: datetime | None = None
    temp_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class UncontrolledLoad:
    """Power the optimizer cannot steer but must budget: a charger that ignores or rejects its limit, or
    one that is offline and assumed to draw its fail-safe limit. ``connector_id`` 0 = whole charger."""

    charger_id: str
    connector_id: int
    power_kw: float
    phases: int = 3
    reason: str = ""


@dataclass(frozen=True, slots=True)
class PlugInSlot:
    """A charger with free connectors: a vehicle plugging in there draws up to ``wanted_kw`` (its default profile)
    before the next tick can plan it. ``phases`` is the fewest phases that power may land on (the worst case for
    a per-phase current limit: 1 when the charger is limited in W and a 1-phase vehicle may arrive)."""

    charger_id: str
    wanted_kw: float
    phases: int = 3


class LimitSource(StrEnum):
    """Who set an external limit: OCPP 2.0.1 ChargingLimitSourceEnumType, plus the vehicle's own schedule."""

    EMS = "EMS"  # a local energy management system
    SO = "SO"  # the system (grid) operator
    CSO = "CSO"  # the charging station operator
    OTHER = "Other"
    EV = "EV"  # the vehicle's charging schedule (ISO 15118), where it asks for less than it was offered


@dataclass(frozen=True, slots=True)
class ExternalLimit:
    """A limit on a charger's power that depotctl did not set and must plan under (OCPP 2.0.1
    NotifyChargingLimit, or an EV's NotifyEVChargingSchedule), in kW at the grid side. ``connector_id`` 0 is the
    whole charger (shared between its sessions). It applies from ``start`` (None: already) until ``until``
    (None: until cleared)."""

    charger_id: str
    connector_id: int
    limit_kw: float
    source: LimitSource
    start: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.limit_kw) or self.limit_kw < 0:
            raise ValueError(f"external limit {self.limit_kw!r} kW is not a power")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An immutable picture of the depot at ``time`` (timezone-aware UTC)."""

    time: datetime
    sessions: tuple[SessionState, ...] = ()
    ambient_c: float = 20.0
    base_load_kw: float | None = None
    grid_cap_kw: float | None = None  # external cap (e.g. a grid operator's curtailment), if any
    grid_cap_until: datetime | None = None  # the cap ends then (None: for the whole horizon)
    uncontrolled: tuple[UncontrolledLoad, ...] = ()
    ambient_forecast_c: tuple[float, ...] = ()  # hourly from ``time``; empty = constant ambient_c
    plug_in: tuple[PlugInSlot, ...] = ()  # chargers that may see a new vehicle before the next tick
    # The site's highest power so far in the demand-charge billing period (kW, base load included): power up to it
    # costs no demand charge any more, so the plan may use it (None: not known, the peak is priced from 0).
    peak_so_far_kw: float | None = None
    external_limits: tuple[ExternalLimit, ...] = ()  # limits set outside depotctl, honoured by every strategy
    # How long the first step's command may stand before the next tick replaces it (seconds; None: one step). A
    # live controller whose ticks run late holds each limit longer than the plan's first step: a battery near its
    # ceiling must stay under it for that whole time (``optimizer.thermal_hold``).
    command_hold_s: float | None = None

    def __post_init__(self) -> None:
        if self.time.tzinfo is None:
            raise ValueError("Snapshot.time must be timezone-aware")
        if self.command_hold_s is not None and not (math.isfinite(self.command_hold_s) and self.command_hold_s > 0):
            raise ValueError(f"command_hold_s {self.command_hold_s!r} is not a positive duration")


# --------------------------------------------------------------------------------------------- plan


@dataclass(frozen=True, slots=True)
class BatteryStress:
    """How hard a plan works one battery (``optimizer.battery_stress``): hours above 80 % SoC while plugged in,
    energy weighted by an Arrhenius temperature factor (kWh at 25 °C equivalent), highest C-rate (1/h)."""

    hours_above_high_soc: float
    arrhenius_kwh: float
    peak_c_rate: float


@dataclass(frozen=True, slots=True)
class ConnectorPlan:
    """The plan for one session. ``limit_kw``/``limit_a`` are what is commanded now: rounded down to
    what the charger accepts and either 0 or at least the minimum current."""

    charger_id: str
    connector_id: int
    limit_kw: float
    limit_a: float | None
    phases: int
    schedule_kw: tuple[float, ...]
    energy_needed_kwh: float
    energy_planned_kwh: float
    expected_soc_at_departure: float | None
    expected_max_temp_c: float | None
    departure: datetime
    soc_source: ValueSource
    temperature_trajectory_c: tuple[float, ...] = ()
    stress: BatteryStress | None = None


@dataclass(frozen=True, slots=True)
class PlugInAllowance:
    """What a charger may draw for vehicles that plug in before the next tick, on top of its planned connectors:
    taken only from first-step capacity that no session was planned (so it can never push a limit over)."""

    charger_id: str
    limit_kw: float
    phases: int = 3


@dataclass(frozen=True, slots=True)
class Plan:
    status: PlanStatus
    strategy: str
    time: datetime
    step_s: float
    schedule_step_s: tuple[float, ...]
    connectors: tuple[ConnectorPlan, ...]
    solve_ms: float = 0.0
    build_ms: float = 0.0
    objective: float | None = None
    binding: tuple[str, ...] = ()
    reason: str | None = None
    solver: str = ""
    min_current_rounds: int = 0
    import_limit_kw: tuple[float, ...] = ()  # effective EV+base limit per step, for display and checks
    base_load_kw: tuple[float, ...] = ()
    plug_in: tuple[PlugInAllowance, ...] = ()  # one per Snapshot.plug_in slot, 0 when the site is full

    @property
    def total_limit_kw(self) -> float:
        return sum(c.limit_kw for c in self.connectors)

    def for_connector(self, charger_id: str, connector_id: int) -> ConnectorPlan | None:
        for c in self.connectors:
            if c.charger_id == charger_id and c.connector_id == connector_id:
                return c
        return None
