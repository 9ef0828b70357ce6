"""The site as its file describes it, as frozen values: grid, base load, tariff, ambient, the circuit tree, the
chargers, the vehicles (roster and fleet defaults, with their battery's thermal model) and the settings of each
part of the controller. ``optimizer.site_loader`` builds a ``Site`` from YAML; the snapshot and the plan
(``optimizer.domain``, which re-exports every name here) refer to it. Nothing in this module does I/O.
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
