"""The one domain model of depotctl: site, snapshot and plan as frozen values.

Everything here is plain data with units in the names. The YAML loader produces a ``Site``; the live
controller and the simulator produce ``Snapshot``s; strategies return ``Plan``s. Nothing in this module
does I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, time
from enum import StrEnum
from typing import Literal


class Phase(StrEnum):
    L1 = "L1"
    L2 = "L2"
    L3 = "L3"


ALL_PHASES: tuple[Phase, Phase, Phase] = (Phase.L1, Phase.L2, Phase.L3)


class RateUnit(StrEnum):
    AMPS = "A"
    WATTS = "W"


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


@dataclass(frozen=True, slots=True)
class ThermalModel:
    """First-order battery temperature model: dθ/dt = heating·P − cooling·(θ − θ_ambient).

    ``heating_c_per_kwh`` is the temperature rise per kWh charged (at the grid side) with no cooling;
    ``cooling_per_h`` is the rate (1/h) at which the battery relaxes towards ambient.
    """

    max_temp_c: float
    heating_c_per_kwh: float
    cooling_per_h: float

    @staticmethod
    def none() -> ThermalModel:
        """A battery with no heating model: charging never warms it and no ceiling applies."""
        return ThermalModel(max_temp_c=math.inf, heating_c_per_kwh=0.0, cooling_per_h=0.0)

    @property
    def is_modelled(self) -> bool:
        return self.heating_c_per_kwh > 0.0 and math.isfinite(self.max_temp_c)


# --------------------------------------------------------------------------------------------- site


@dataclass(frozen=True, slots=True)
class GridWindow:
    """A local-time window in which the import limit differs from the default (may wrap midnight)."""

    start_local: time
    end_local: time
    import_limit_kw: float


@dataclass(frozen=True, slots=True)
class Grid:
    import_limit_kw: float
    windows: tuple[GridWindow, ...] = ()


@dataclass(frozen=True, slots=True)
class BaseLoad:
    """Non-EV site load: a constant or 24 hourly local-time values (kW)."""

    profile_kw: tuple[float, ...]  # one value (constant) or 24 hourly values

    def at_hour(self, local_hour: int) -> float:
        if len(self.profile_kw) == 1:
            return self.profile_kw[0]
        return self.profile_kw[local_hour % 24]


@dataclass(frozen=True, slots=True)
class Tariff:
    """Energy price per kWh: one value or 24 hourly local-time values; demand charge per kW of peak."""

    price_per_kwh: tuple[float, ...] = (0.0,)
    demand_charge_per_kw: float = 0.0

    def at_hour(self, local_hour: int) -> float:
        if len(self.price_per_kwh) == 1:
            return self.price_per_kwh[0]
        return self.price_per_kwh[local_hour % 24]


@dataclass(frozen=True, slots=True)
class Ambient:
    """The site's outdoor temperature from the site file: one value or 24 hourly local-time values (°C); a live
    reading younger than ``max_age_s`` wins (csms_adapter.control.ambient_input)."""

    profile_c: tuple[float, ...] = (20.0,)
    max_age_s: float = 3600.0

    def at_hour(self, local_hour: int) -> float:
        if len(self.profile_c) == 1:
            return self.profile_c[0]
        return self.profile_c[local_hour % 24]


@dataclass(frozen=True, slots=True)
class Circuit:
    """A feeder, breaker or transformer. Limits are per phase (A) and/or total (kW) at the grid side."""

    id: str
    parent: str | None
    max_current_a: float | None
    max_kw: float | None
    chargers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ChargerAuth:
    password_sha256: str | None = None
    password_env: str | None = None


@dataclass(frozen=True, slots=True)
class Charger:
    """One charging station. Limits are per connector; ``phase_rotation`` maps charger phase k to a
    site phase (a 1-phase charger has one entry)."""

    id: str
    connectors: int
    phases: int
    phase_rotation: tuple[Phase, ...]
    max_current_a: float
    min_current_a: float
    max_power_kw: float
    rate_unit: RateUnit | None
    dc: bool
    efficiency: float
    auth: ChargerAuth | None
    voltage_v: float

    def power_kw_at(self, current_a: float, phases: int) -> float:
        """Grid-side power of ``current_a`` per phase on ``phases`` phases (AC only)."""
        return current_a * self.voltage_v * phases / 1000.0

    def current_a_at(self, power_kw: float, phases: int) -> float:
        return power_kw * 1000.0 / (self.voltage_v * phases)

    def max_power_kw_for(self, phases: int) -> float:
        if self.dc:
            return self.max_power_kw
        return min(self.max_power_kw, self.power_kw_at(self.max_current_a, phases))

    def min_power_kw_for(self, phases: int) -> float:
        if self.dc:
            return 0.0
        return self.power_kw_at(self.min_current_a, phases)


@dataclass(frozen=True, slots=True)
class VehicleProfile:
    """What the depot knows about a vehicle (roster entry or fleet defaults)."""

    id: str
    id_tags: tuple[str, ...]
    battery_kwh: float
    target_soc: float
    departure_local: time | None
    dwell_h: float
    max_power_kw: float
    thermal: ThermalModel
    knee_soc: float
    priority: float
    # Roster authorization (``ocpp.authorize: roster``): a blocked vehicle's tags answer Blocked, and past
    # ``valid_until`` (UTC) they answer Expired.
    blocked: bool = False
    valid_until: datetime | None = None
    # The SoC assumed on arrival for a vehicle that reports none (fleet.defaults.arrival_soc; only the
    # fleet defaults' value is used).
    arrival_soc: float = 0.2


@dataclass(frozen=True, slots=True)
class Objective:
    """Weights of the LP objective (docs/lp.md)."""

    unmet: float = 1000.0
    early: float = 1.0
    price: float = 1.0
    peak: float = 0.0
    # What 'unmet' is charged for. "session": the share of each session's need left undelivered (docs/lp.md, "Objective":
    # vehicles are finished, small needs are not starved; a fleet depot). "kwh": every missing kWh alike (the
    # most energy on a site that cannot serve everyone, e.g. a garage selling kWh; fewer vehicles finish).
    unmet_per: Literal["session", "kwh"] = "session"
    # Battery stress terms (optimizer.lp_stress), 0 = off: per kWh·h stored above 80 % SoC (defers a high target
    # to late in the stay), and per kWh × (temperature factor − 1)⁺ (avoids charging hot or very cold batteries).
    # Kept ≤ 1 so they never outweigh a kWh of unmet need (1000 / need per kWh).
    stress_high_soc: float = 0.0
    stress_temperature: float = 0.0


@dataclass(frozen=True, slots=True)
class ControlSettings:
    interval_s: float = 60.0
    step_min: float = 15.0
    horizon_h: float = 24.0
    strategy: str = "lp"
    objective: Objective = field(default_factory=Objective)
    uniform_steps: bool = False
    solver: str = "auto"  # auto | highs | pulp-highs | pulp-cbc
    solver_time_limit_s: float = 10.0


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """The server's certificates. ``cert_file``/``key_file`` and ``rsa_cert_file``/``rsa_key_file`` are the two
    chains OCPP asks for (one ECDSA, one RSA: A00.FR.317/318); either pair may hold either key type."""

    cert_file: str | None = None
    key_file: str | None = None
    ca_file: str | None = None
    rsa_cert_file: str | None = None
    rsa_key_file: str | None = None


@dataclass(frozen=True, slots=True)
class OcppLimits:
    """Limits on hostile or broken clients (csms_adapter.protocol.frame_guard). ``idle_timeout_s`` None: 3 × the
    heartbeat interval + 60 s."""

    max_frame_bytes: int = 256 * 1024
    rate_per_s: float = 20.0
    burst: int = 100
    close_after_throttled_s: float = 60.0
    max_connections_per_address: int = 256
    open_timeout_s: float = 10.0
    idle_timeout_s: float | None = None
    auth_failures_per_window: int = 10
    auth_window_s: float = 60.0


@dataclass(frozen=True, slots=True)
class OcppSettings:
    listen: str = "0.0.0.0:9000"
    security_profile: int = 1
    accept_unknown: bool = False
    tls: TlsSettings = field(default_factory=TlsSettings)
    heartbeat_s: int = 300
    meter_interval_s: int = 10
    profile_ttl_intervals: int = 3
    deadband_a: float = 0.5
    call_timeout_s: float = 10.0
    limits: OcppLimits = field(default_factory=OcppLimits)
    # Id tokens: "any" accepts every token (commissioning, or chargers with their own access control);
    # "roster" accepts only tokens of the fleet roster (docs/ocpp-conformance.md, Authorization).
    authorize: Literal["any", "roster"] = "any"
    # permessage-deflate (RFC 7692) offered to chargers: "deflate" (a 2.0.1 CSMS must support it; it saves bytes on
    # cellular links) or "none" (saves CPU on a LAN depot; docs/benchmarks.md, "Per-message compression").
    compression: Literal["deflate", "none"] = "deflate"


@dataclass(frozen=True, slots=True)
class HttpSettings:
    listen: str = "127.0.0.1:8080"


@dataclass(frozen=True, slots=True)
class StorageSettings:
    """Where the controller keeps its history. Raw meter samples are kept ``raw_days``, then as one-minute
    aggregates until ``aggregate_days``."""

    url: str = "sqlite:///depot.db"
    raw_days: float = 30.0
    aggregate_days: float = 400.0


@dataclass(frozen=True, slots=True)
class WebhookSpec:
    """One ``monitoring.webhooks`` entry: the receiver, the least severity it wants, and the name of the
    environment variable holding its HMAC secret (the secret itself never sits in the site file)."""

    url: str
    min_severity: str = "info"  # info | warning | critical
    secret_env: str | None = None


@dataclass(frozen=True, slots=True)
class MonitoringSettings:
    """Condition monitoring (docs/monitoring.md). ``debounce_s`` maps an incident kind to the seconds its
    condition must last before listeners hear of it; kinds not named are reported at once."""

    offline_after_s: float = 600.0  # connected but silent this long counts as offline
    debounce_s: tuple[tuple[str, float], ...] = (("offline", 120.0),)
    clear_after_s: float = 0.0  # hysteresis: a cleared condition must stay clear this long to resolve
    quiet_resolve_s: float = 3600.0  # a point event (security event) resolves after this long without a repeat
    retention_days: float = 90.0
    ignore_tolerance_kw: float = 1.0  # draw above the accepted limit tolerated before ignores_limit
    webhooks: tuple[WebhookSpec, ...] = ()

    def debounce_for(self, kind: str) -> float:
        for name, seconds in self.debounce_s:
            if name == kind:
                return seconds
        return 0.0


@dataclass(frozen=True, slots=True)
class Site:
    name: str
    timezone: str
    voltage_v: float
    grid: Grid
    base_load: BaseLoad
    tariff: Tariff
    circuits: tuple[Circuit, ...]
    chargers: tuple[Charger, ...]
    vehicles: tuple[VehicleProfile, ...]
    fleet_defaults: VehicleProfile
    control: ControlSettings
    ocpp: OcppSettings
    http: HttpSettings
    storage: StorageSettings
    source_file: str = "<memory>"
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)
    ambient: Ambient = field(default_factory=Ambient)
    # Lookup tables, built once: a thousand-charger site must not scan its lists per session.
    _chargers_by_id: dict[str, Charger] = field(init=False, repr=False, compare=False)
    _vehicles_by_tag: dict[str, VehicleProfile] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_chargers_by_id", {c.id: c for c in self.chargers})
        tags = {tag.upper(): v for v in self.vehicles for tag in v.id_tags}
        object.__setattr__(self, "_vehicles_by_tag", tags)

    def charger(self, charger_id: str) -> Charger:
        return self._chargers_by_id[charger_id]

    def has_charger(self, charger_id: str) -> bool:
        return charger_id in self._chargers_by_id

    def vehicle_for_tag(self, id_tag: str) -> VehicleProfile | None:
        return self._vehicles_by_tag.get(id_tag.upper())

    def vehicle_by_id(self, vehicle_id: str) -> VehicleProfile | None:
        for vehicle in self.vehicles:
            if vehicle.id == vehicle_id:
                return vehicle
        return None


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
