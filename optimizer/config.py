"""Pydantic models of the site file (docs/site-file.md). They check shape and ranges of single values;
the loader (``site_loader``) checks the relations between them and builds the domain ``Site``."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

PositiveKw = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]
# OCPP 1.6 IdToken is CiString20; 2.0.1 allows 36. Printable ASCII without spaces.
IdTag = Annotated[str, Field(min_length=1, max_length=36, pattern=r"^[\x21-\x7E]+$")]
LocalTime = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")]
PHASE_ROTATION = re.compile(r"^(L[123])(L[123])?(L[123])?$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class GridWindowModel(Strict):
    from_: LocalTime = Field(alias="from")
    to: LocalTime
    import_limit_kw: NonNegative


class GridModel(Strict):
    import_limit_kw: PositiveKw
    schedule: list[GridWindowModel] = []


class BaseLoadModel(Strict):
    kw: NonNegative | None = None
    profile_kw: list[NonNegative] | None = None

    @model_validator(mode="after")
    def one_form(self) -> BaseLoadModel:
        if self.kw is not None and self.profile_kw is not None:
            raise ValueError("give either kw or profile_kw, not both")
        if self.profile_kw is not None and len(self.profile_kw) != 24:
            raise ValueError(f"profile_kw needs 24 hourly values, got {len(self.profile_kw)}")
        return self


class TariffModel(Strict):
    price_per_kwh: NonNegative | None = None
    profile_per_kwh: list[NonNegative] | None = None
    demand_charge_per_kw: NonNegative = 0.0

    @model_validator(mode="after")
    def one_form(self) -> TariffModel:
        if self.price_per_kwh is not None and self.profile_per_kwh is not None:
            raise ValueError("give either price_per_kwh or profile_per_kwh, not both")
        if self.profile_per_kwh is not None and len(self.profile_per_kwh) != 24:
            raise ValueError(f"profile_per_kwh needs 24 hourly values, got {len(self.profile_per_kwh)}")
        return self


class CircuitModel(Strict):
    id: Identifier
    max_current_a: PositiveKw | None = None
    max_kw: PositiveKw | None = None
    chargers: list[Identifier] = []
    children: list[CircuitModel] = []
    parent: Identifier | None = None  # alternative to nesting: a flat list with parent references

    @model_validator(mode="after")
    def has_limit(self) -> CircuitModel:
        if self.max_current_a is None and self.max_kw is None:
            raise ValueError("a circuit needs max_current_a and/or max_kw")
        return self


class AuthModel(Strict):
    password_env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None
    password_sha256: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")] | None = None

    @model_validator(mode="before")
    @classmethod
    def no_plain_password(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("password", "pass", "secret", "auth_key", "authorization_key"):
                if key in data:
                    raise ValueError(
                        f"'{key}' is a plain-text password; use password_env (an environment variable) "
                        "or password_sha256 (made by `depotctl password`)"
                    )
        return data

    @model_validator(mode="after")
    def one_form(self) -> AuthModel:
        if (self.password_env is None) == (self.password_sha256 is None):
            raise ValueError("give exactly one of password_env or password_sha256")
        return self


class ChargerModel(Strict):
    id: Identifier
    connectors: Annotated[int, Field(ge=1, le=16)] = 1
    phases: Literal[1, 3] = 3
    phase_rotation: str | None = None
    max_current_a: PositiveKw | None = None
    min_current_a: NonNegative | None = None
    max_power_kw: PositiveKw | None = None
    rate_unit: Literal["A", "W"] | None = None
    dc: bool = False
    efficiency: Annotated[float, Field(gt=0, le=1)] = 1.0
    auth: AuthModel | None = None

    @field_validator("phase_rotation")
    @classmethod
    def rotation_shape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not PHASE_ROTATION.match(value):
            raise ValueError(f"'{value}' is not a phase rotation like L1L2L3, L2L3L1 or L2")
        return value


class ThermalConfig(Strict):
    max_temp_c: Annotated[float, Field(gt=-40, lt=120)]
    heating_c_per_kwh: NonNegative
    cooling_per_h: NonNegative


class VehicleDefaultsModel(Strict):
    battery_kwh: PositiveKw = 60.0
    target_soc: Annotated[float, Field(gt=0, le=1)] = 0.8
    dwell_h: PositiveKw = 10.0
    max_power_kw: PositiveKw = 11.0
    max_temp_c: Annotated[float, Field(gt=-40, lt=120)] | None = None
    thermal: ThermalConfig | None = None
    knee_soc: Annotated[float, Field(gt=0, le=1)] = 0.8
    priority: PositiveKw = 1.0
    departure: LocalTime | None = None
    # Assumed SoC on arrival of a vehicle that reports none (the range down to empty is still offered).
    arrival_soc: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)] = 0.2


class VehicleModel(Strict):
    id: Identifier
    id_tags: list[IdTag] = []
    battery_kwh: PositiveKw | None = None
    target_soc: Annotated[float, Field(gt=0, le=1)] | None = None
    departure: LocalTime | None = None
    dwell_h: PositiveKw | None = None
    max_power_kw: PositiveKw | None = None
    thermal: ThermalConfig | None = None
    knee_soc: Annotated[float, Field(gt=0, le=1)] | None = None
    priority: PositiveKw | None = None
    blocked: bool = False  # ocpp.authorize roster: its tags answer Blocked
    valid_until: AwareDatetime | None = None  # ocpp.authorize roster: after it its tags answer Expired


class FleetModel(Strict):
    defaults: VehicleDefaultsModel = VehicleDefaultsModel()
    vehicles: list[VehicleModel] = []


class ObjectiveModel(Strict):
    unmet: NonNegative = 1000.0
    unmet_per: Literal["session", "kwh"] = "session"
    early: NonNegative = 1.0
    price: NonNegative = 1.0
    peak: NonNegative = 0.0
    # Battery stress (docs/battery.md), off by default: cost per kWh·h stored above 80 % SoC, and per kWh charged
    # times how much its temperature factor exceeds 1 (hot, or cold enough to risk plating).
    stress_high_soc: Annotated[float, Field(ge=0, le=1.0)] = 0.0
    stress_temperature: Annotated[float, Field(ge=0, le=1.0)] = 0.0


class ControlModel(Strict):
    interval_s: Annotated[float, Field(ge=1, le=3600)] = 60.0
    step_min: Annotated[float, Field(ge=1, le=60)] = 15.0
    horizon_h: Annotated[float, Field(gt=0, le=168)] = 24.0
    strategy: Literal["lp", "equal_share", "edf", "llf", "uncontrolled"] = "lp"
    objective: ObjectiveModel = ObjectiveModel()
    uniform_steps: bool = False
    solver: Literal["auto", "highs", "pulp-highs", "pulp-cbc"] = "auto"
    solver_time_limit_s: Annotated[float, Field(gt=0, le=600)] = 10.0


class TlsModel(Strict):
    cert_file: str | None = None
    key_file: str | None = None
    ca_file: str | None = None
    rsa_cert_file: str | None = None
    rsa_key_file: str | None = None

    @model_validator(mode="after")
    def pairs(self) -> TlsModel:
        if (self.rsa_cert_file is None) != (self.rsa_key_file is None):
            raise ValueError("rsa_cert_file and rsa_key_file go together")
        return self


class OcppLimitsModel(Strict):
    max_frame_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 256 * 1024
    rate_per_s: Annotated[float, Field(gt=0, le=10_000)] = 20.0
    burst: Annotated[int, Field(ge=1, le=100_000)] = 100
    close_after_throttled_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    max_connections_per_address: Annotated[int, Field(ge=1, le=100_000)] = 256
    open_timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    idle_timeout_s: Annotated[float, Field(gt=0, le=86_400)] | None = None
    auth_failures_per_window: Annotated[int, Field(ge=1, le=10_000)] = 10
    auth_window_s: Annotated[float, Field(gt=0, le=86_400)] = 60.0


class OcppModel(Strict):
    listen: Annotated[str, Field(pattern=r"^[^:\s]+:\d{1,5}$")] = "0.0.0.0:9000"
    security_profile: Literal[0, 1, 2, 3] = 1
    accept_unknown: bool = False
    tls: TlsModel = TlsModel()
    heartbeat_s: Annotated[int, Field(ge=10, le=86400)] = 300
    meter_interval_s: Annotated[int, Field(ge=1, le=3600)] = 10
    profile_ttl_intervals: Annotated[int, Field(ge=2, le=100)] = 3
    deadband_a: NonNegative = 0.5
    call_timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0
    limits: OcppLimitsModel = OcppLimitsModel()
    authorize: Literal["any", "roster"] = "any"
    compression: Literal["deflate", "none"] = "deflate"

    @model_validator(mode="after")
    def unknown_only_for_commissioning(self) -> OcppModel:
        if self.security_profile == 0 and not self.accept_unknown:
            raise ValueError("security_profile 0 (no auth) is only allowed with accept_unknown: true")
        if self.security_profile >= 2 and (self.tls.cert_file is None or self.tls.key_file is None):
            raise ValueError(f"security_profile {self.security_profile} needs tls.cert_file and tls.key_file")
        if self.security_profile == 3 and self.tls.ca_file is None:
            raise ValueError("security_profile 3 (mutual TLS) needs tls.ca_file")
        return self


class HttpModel(Strict):
    listen: Annotated[str, Field(pattern=r"^[^:\s]+:\d{1,5}$")] = "127.0.0.1:8080"


class RetentionModel(Strict):
    raw_days: Annotated[float, Field(gt=0, le=3650)] = 30.0
    aggregate_days: Annotated[float, Field(gt=0, le=36500)] = 400.0


class StorageModel(Strict):
    url: str = "sqlite:///depot.db"
    retention: RetentionModel = RetentionModel()


IncidentKindName = Literal["offline", "fault", "unavailable", "ignores_limit", "profile_rejected", "meter_anomaly",
                           "security_event", "firmware", "diagnostics"]
EnvName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class WebhookModel(Strict):
    url: Annotated[str, Field(min_length=1, max_length=2000)]
    min_severity: Literal["info", "warning", "critical"] = "info"
    secret_env: EnvName | None = None  # the name of the environment variable holding the HMAC secret

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not re.match(r"^https?://[^/\s:@]+(:\d{1,5})?(/\S*)?$", url):
            raise ValueError("must be an http:// or https:// URL with a host")
        return url


class MonitoringModel(Strict):
    offline_after_s: Annotated[float, Field(gt=0, le=86_400, allow_inf_nan=False)] = 600.0
    # One number for every kind, or seconds per kind (the others keep their default: 120 for offline, 0 else).
    debounce_s: NonNegative | dict[IncidentKindName, NonNegative] = {}
    clear_after_s: Annotated[float, Field(ge=0, le=86_400, allow_inf_nan=False)] = 0.0
    quiet_resolve_s: Annotated[float, Field(gt=0, le=30 * 86_400, allow_inf_nan=False)] = 3600.0
    retention_days: Annotated[float, Field(gt=0, le=3650, allow_inf_nan=False)] = 90.0
    webhooks: list[WebhookModel] = []


class AmbientModel(Strict):
    """The site's outdoor temperature (°C) for the battery thermal model: one value or 24 hourly local values.
    A live reading (``PUT /api/ambient``) wins while younger than ``max_age_s``."""

    c: Annotated[float, Field(gt=-60, lt=70, allow_inf_nan=False)] | None = None
    profile_c: list[Annotated[float, Field(gt=-60, lt=70, allow_inf_nan=False)]] | None = None
    max_age_s: Annotated[float, Field(gt=0, le=86400)] = 3600.0

    @model_validator(mode="after")
    def one_form(self) -> AmbientModel:
        if self.c is not None and self.profile_c is not None:
            raise ValueError("give either c or profile_c, not both")
        if self.profile_c is not None and len(self.profile_c) != 24:
            raise ValueError(f"profile_c needs 24 hourly values, got {len(self.profile_c)}")
        return self


class SiteSection(Strict):
    name: Identifier
    timezone: str = "UTC"
    voltage_v: Annotated[float, Field(ge=100, le=400)] = 230.0
    grid: GridModel
    base_load: BaseLoadModel = BaseLoadModel()
    tariff: TariffModel = TariffModel()
    circuits: list[CircuitModel] = []
    ambient: AmbientModel = AmbientModel()


class SiteFile(Strict):
    site: SiteSection
    chargers: list[ChargerModel]
    fleet: FleetModel = FleetModel()
    control: ControlModel = ControlModel()
    ocpp: OcppModel = OcppModel()
    http: HttpModel = HttpModel()
    storage: StorageModel = StorageModel()
    monitoring: MonitoringModel = MonitoringModel()
