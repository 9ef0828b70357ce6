"""The HTTP API's request and response bodies. Requests are strict (``extra="forbid"``, finite numbers, aware
timestamps): a bad write gets a 422 naming the field and the reason and changes nothing. Responses are plain
frozen models so the OpenAPI document at ``/openapi.json`` describes exactly what is returned."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

MAX_GRID_KW = 1e6


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


# ------------------------------------------------------------------------------------------- writes


class GridCapIn(_In):
    """An external cap on the site's grid import (EV plus base load), e.g. a grid operator's curtailment."""

    limit_kw: Annotated[float, Field(ge=0, le=MAX_GRID_KW, allow_inf_nan=False, description="cap in kW")]
    until: AwareDatetime | None = Field(None, description="end of the cap (with a UTC offset); none = until cleared")
    reason: Annotated[str, Field(max_length=200)] = ""


class SessionUpdateIn(_In):
    """Operator overrides for the session on a connector. A field left out is unchanged; ``null`` clears it."""

    departure: AwareDatetime | None = None
    target_soc: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] | None = None
    priority: Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def something_set(self) -> SessionUpdateIn:
        if not self.model_fields_set:
            raise ValueError("give at least one of departure, target_soc, priority")
        return self


class VehicleDataIn(_In):
    """A telematics report. Name the vehicle by its roster id (``vehicle``) or by where it is plugged in
    (``charger`` and ``connector``)."""

    vehicle: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    charger: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    connector: Annotated[int, Field(ge=1, le=16)] | None = None
    soc: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False, description="state of charge, 0..1")] | None = None
    battery_temp_c: Annotated[float, Field(gt=-60, lt=150, allow_inf_nan=False)] | None = None
    battery_kwh: Annotated[float, Field(gt=0, le=2000, allow_inf_nan=False)] | None = None
    measured_at: AwareDatetime | None = Field(None, description="when the vehicle measured it; default: now")

    @model_validator(mode="after")
    def one_target_some_value(self) -> VehicleDataIn:
        if (self.vehicle is None) == (self.charger is None):
            raise ValueError("give either vehicle or charger (with connector)")
        if self.vehicle is not None and self.connector is not None:
            raise ValueError("connector only goes with charger")
        if self.soc is None and self.battery_temp_c is None and self.battery_kwh is None:
            raise ValueError("give at least one of soc, battery_temp_c, battery_kwh")
        return self


class Problem(_Out):
    field: str
    reason: str


class ProblemReport(_Out):
    """Every 4xx answer: what was wrong, per field (``field`` is ``""`` when it is not about one field)."""

    detail: list[Problem]


# -------------------------------------------------------------------------------------------- reads


class GridCapOut(_Out):
    limit_kw: float
    set_at: datetime
    until: datetime | None
    reason: str


class TickOut(_Out):
    time: datetime
    status: str = Field(description="optimal | feasible | infeasible_safe | error (no plan, nothing sent)")
    strategy: str | None
    solver: str | None
    solve_ms: float | None
    build_ms: float | None
    tick_ms: float
    objective: float | None
    binding: list[str]
    reason: str | None
    error: str | None
    sessions: int
    uncontrolled: int
    profiles_sent: int
    profiles_failed: int


class ConnectorOut(_Out):
    charger: str
    connector: int
    online: bool
    plug: str
    controlled: bool
    note: str
    transaction_id: str | None
    id_tag: str | None
    vehicle: str | None
    soc: float | None
    soc_source: str | None
    power_kw: float | None
    limit_kw: float | None
    limit_a: float | None
    battery_temp_c: float | None
    temp_source: str | None
    max_temp_c: float | None
    departure: datetime | None
    target_soc: float | None
    expected_soc_at_departure: float | None
    will_make_it: bool | None
    energy_needed_kwh: float | None
    energy_planned_kwh: float | None


class ChargerOut(_Out):
    id: str
    online: bool
    ocpp_version: str | None
    monitor_only: bool
    failsafe_accepted: bool
    failsafe_share_kw: float | None
    last_seen: datetime | None
    phases: int
    max_power_kw: float
    problems: list[str] = Field(description="profile rejected, ignores its limit, not answering, offline")
    connectors: list[ConnectorOut]


class SessionOverrideOut(_Out):
    departure: datetime | None
    target_soc: float | None
    priority: float | None
    set_at: datetime | None


class VehicleDataOut(_Out):
    measured_at: datetime
    soc: float | None
    battery_temp_c: float | None
    battery_kwh: float | None
    vehicle: str | None


class SessionOut(_Out):
    charger: str
    connector: int
    transaction_id: str
    id_tag: str | None
    vehicle: str | None
    started_at: datetime
    energy_delivered_kwh: float
    soc: float | None
    soc_source: str | None
    battery_kwh: float | None
    battery_temp_c: float | None
    temp_source: str | None
    departure: datetime | None
    target_soc: float | None
    priority: float | None
    override: SessionOverrideOut | None
    vehicle_data: VehicleDataOut | None


class CircuitOut(_Out):
    id: str
    parent: str | None
    load_kw: float
    current_a: dict[str, float] = Field(description="per site phase L1/L2/L3")
    max_current_a: float | None
    max_kw: float | None
    utilisation: float | None = Field(description="highest load/limit over its limits, 0..1+")


class UncontrolledOut(_Out):
    charger: str
    connector: int
    power_kw: float
    reason: str


class SeriesPoint(_Out):
    time: datetime
    site_power_kw: float
    grid_limit_kw: float


class StatusOut(_Out):
    site: str
    timezone: str = Field(description="the site's time zone (IANA), for local display")
    time: datetime
    site_power_kw: float = Field(description="measured EV power plus base load")
    ev_power_kw: float
    base_load_kw: float
    import_limit_kw: float = Field(description="the site file's import limit now (schedule applied)")
    grid_cap: GridCapOut | None
    grid_limit_kw: float = Field(description="what the controller keeps to: import limit or cap, the lower")
    chargers_online: int
    chargers_total: int
    sessions: int
    last_tick: TickOut | None
    ocpp_url: str
    writes_enabled: bool
    billing_peak_kw: float | None = Field(
        default=None, description="highest site power so far in this demand-charge billing period (kept across "
                                  "restarts); null when the tariff has no demand charge")


class DashboardState(_Out):
    """One server-sent ``state`` event: everything the dashboard shows."""

    status: StatusOut
    connectors: list[ConnectorOut]
    circuits: list[CircuitOut]
    ticks: list[TickOut]
    uncontrolled: list[UncontrolledOut]
    plan_ahead: list[SeriesPoint]


class MeterSampleOut(_Out):
    time: datetime
    measurand: str
    value: float
    unit: str | None
    phase: str | None
    source: str


class MeterHistoryOut(_Out):
    charger: str
    connector: int
    since: datetime
    until: datetime
    truncated: bool
    samples: list[MeterSampleOut]


PlanJson = dict[str, Any]
