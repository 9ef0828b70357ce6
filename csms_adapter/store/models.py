"""The tables. Every datetime column is ``UTCDateTime``: written as UTC, read back timezone-aware.

Every row carries ``site`` (the site file's ``site.name``) so that the controllers of many depots share one
database; a ``Store`` opened for a site reads and writes only that site's rows (see repository.py). The schema
is owned by the Alembic migrations in ``csms_adapter/store/migrations``: a change here needs a migration there
(a test compares the two)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out. SQLite has no time zones, so values are stored as
    naive UTC there and the tzinfo is re-attached on read; naive input is refused, never guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store keeps timezone-aware UTC only")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc_field(*, index: bool = False, nullable: bool = True) -> Any:
    return Field(default=None, sa_type=UTCDateTime, index=index, nullable=nullable)


SITE_MAX_LENGTH = 64


def site_field(*, primary_key: bool = False) -> Any:
    """The owning site of a row. Empty only in a database upgraded from before sites existed, until the first
    controller opens it (it then claims those rows)."""
    if primary_key:
        return Field(default="", primary_key=True, max_length=SITE_MAX_LENGTH)
    return Field(default="", index=True, max_length=SITE_MAX_LENGTH)


class SiteRow(SQLModel, table=True):
    """One depot as its controller last reported it: what the fleet view shows without reading the site file."""

    __tablename__ = "sites"

    site: str = site_field(primary_key=True)
    timezone: str | None = None
    chargers_configured: int = 0
    limit_kw: float | None = None  # the import limit in force at the last tick (schedule and external cap)
    power_kw: float | None = None  # measured EV power + base load at the last tick
    started_at: datetime | None = _utc_field()
    last_seen_at: datetime | None = _utc_field()


class ChargerRow(SQLModel, table=True):
    __tablename__ = "chargers"

    site: str = site_field(primary_key=True)
    id: str = Field(primary_key=True, max_length=64)
    ocpp_version: str | None = None
    vendor: str | None = None
    model: str | None = None
    firmware: str | None = None
    last_boot_at: datetime | None = _utc_field()
    last_seen_at: datetime | None = _utc_field()
    connected: bool = False


class ConnectorRow(SQLModel, table=True):
    __tablename__ = "connectors"

    site: str = site_field(primary_key=True)
    charger_id: str = Field(primary_key=True, max_length=64)
    connector_id: int = Field(primary_key=True)
    status: str | None = None
    updated_at: datetime | None = _utc_field()


class SessionRow(SQLModel, table=True):
    """One transaction. ``transaction_id`` is text: 1.6 ids are ints, 2.0.1 ids are strings."""

    __tablename__ = "sessions"
    __table_args__ = (UniqueConstraint("site", "charger_id", "transaction_id", name="uq_session_site_charger_tx"),)

    id: int | None = Field(default=None, primary_key=True)
    site: str = site_field()
    charger_id: str = Field(index=True, max_length=64)
    connector_id: int
    transaction_id: str = Field(max_length=64)
    id_tag: str | None = None
    started_at: datetime | None = _utc_field()
    stopped_at: datetime | None = _utc_field()
    meter_start_wh: float | None = None
    meter_stop_wh: float | None = None
    energy_wh: float | None = None
    stop_reason: str | None = None
    is_open: bool = Field(default=True, index=True)


class MeterSampleRow(SQLModel, table=True):
    __tablename__ = "meter_samples"
    __table_args__ = (Index("ix_samples_site_connector_time", "site", "charger_id", "connector_id", "measured_at"),)

    id: int | None = Field(default=None, primary_key=True)
    site: str = site_field()
    charger_id: str = Field(max_length=64)
    connector_id: int
    transaction_id: str | None = None
    measurand: str = Field(max_length=64)
    phase: str | None = None
    location: str | None = None
    value: float
    unit: str | None = None
    measured_at: datetime = _utc_field(nullable=False)
    source: str = Field(default="measured", max_length=32)


class PlanRow(SQLModel, table=True):
    __tablename__ = "plans"

    id: int | None = Field(default=None, primary_key=True)
    site: str = site_field()
    time: datetime = _utc_field(index=True, nullable=False)
    strategy: str
    status: str
    objective: float | None = None
    solve_ms: float = 0.0
    build_ms: float = 0.0
    connectors: int = 0
    total_limit_kw: float = 0.0
    energy_needed_kwh: float = 0.0
    energy_planned_kwh: float = 0.0
    reason: str | None = None
    binding: list[str] = Field(default_factory=list, sa_type=JSON)
    limits: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)  # "charger/connector" → limit_kw


class CommandRow(SQLModel, table=True):
    __tablename__ = "commands"
    __table_args__ = (Index("ix_commands_site_connector_time", "site", "charger_id", "connector_id", "sent_at"),)

    id: int | None = Field(default=None, primary_key=True)
    site: str = site_field()
    charger_id: str = Field(max_length=64)
    connector_id: int | None = None
    action: str = Field(max_length=64)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    answer: str | None = None
    error: str | None = None
    sent_at: datetime = _utc_field(nullable=False)
    latency_ms: float | None = None


class MeterMinuteRow(SQLModel, table=True):
    """One-minute aggregate of a connector's measurand, kept after its raw samples pass their retention."""

    __tablename__ = "meter_minutes"
    __table_args__ = (Index("ix_minutes_site_connector_time", "site", "charger_id", "connector_id", "minute"),)

    id: int | None = Field(default=None, primary_key=True)
    site: str = site_field()
    charger_id: str = Field(max_length=64)
    connector_id: int
    measurand: str = Field(max_length=64)
    phase: str | None = None
    unit: str | None = None
    minute: datetime = _utc_field(nullable=False)
    mean: float
    minimum: float
    maximum: float
    last: float
    count: int


# ------------------------------------------------------------------------------------ operator state
# What an operator or fleet system set at run time, so that a restart does not forget it (docs/operations-restart.md).
# Read back row by row and checked in ``operator_state.py``: one corrupt row is logged and skipped, never fatal.


class GridCapRow(SQLModel, table=True):
    """The external grid cap in force (at most one row, ``id`` 1); no row: no cap."""

    __tablename__ = "grid_cap"

    site: str = site_field(primary_key=True)
    id: int = Field(default=1, primary_key=True)
    limit_kw: float
    set_at: datetime = _utc_field(nullable=False)
    until: datetime | None = _utc_field()
    reason: str = ""


class OperatorAvailabilityRow(SQLModel, table=True):
    """A connector (0: the whole charger) the operator took out of service with ChangeAvailability Inoperative
    (``csms_adapter.monitoring.OperatorSpan``); kept after it ends, for availability over past windows."""

    __tablename__ = "operator_availability"

    site: str = site_field(primary_key=True)
    id: str = Field(primary_key=True, max_length=64)
    charger_id: str = Field(max_length=64)
    connector_id: int
    requested_at: datetime = _utc_field(nullable=False)
    status: str = Field(max_length=16)  # Accepted | Scheduled
    started_at: datetime | None = _utc_field()
    ended_at: datetime | None = _utc_field()
    reason: str = ""


class SessionOverrideRow(SQLModel, table=True):
    """An operator's override of the open session on a connector (it ends with that transaction)."""

    __tablename__ = "session_overrides"

    site: str = site_field(primary_key=True)
    charger_id: str = Field(primary_key=True, max_length=64)
    connector_id: int = Field(primary_key=True)
    transaction_id: str = Field(max_length=64)
    departure: datetime | None = _utc_field()
    target_soc: float | None = None
    priority: float | None = None
    set_at: datetime | None = _utc_field()


class VehicleDataRow(SQLModel, table=True):
    """The latest telematics report for the vehicle of the open session on a connector."""

    __tablename__ = "vehicle_data"

    site: str = site_field(primary_key=True)
    charger_id: str = Field(primary_key=True, max_length=64)
    connector_id: int = Field(primary_key=True)
    transaction_id: str = Field(max_length=64)
    measured_at: datetime = _utc_field(nullable=False)
    delivered_kwh: float = 0.0
    soc: float | None = None
    battery_temp_c: float | None = None
    battery_kwh: float | None = None
    vehicle_id: str | None = None
    soc_at: datetime | None = _utc_field()  # each value's own time (None: measured_at)
    temp_at: datetime | None = _utc_field()


class FailsafeHeldRow(SQLModel, table=True):
    """The fail-safe share a charger last accepted (docs/safety-phases.md): what it holds while the controller
    cannot reach it, so a charger still offline after a restart is budgeted at that share, not at its maximum."""

    __tablename__ = "failsafe_held"

    site: str = site_field(primary_key=True)
    charger_id: str = Field(primary_key=True, max_length=64)
    station_kw: float
    spread: int  # the fewest site phases the share may land on (1 when it went out in W)
    accepted_at: datetime = _utc_field(nullable=False)


class BillingPeakRow(SQLModel, table=True):
    """The site's highest power in one demand-charge billing period (``period``: local "YYYY-MM")."""

    __tablename__ = "billing_peaks"

    site: str = site_field(primary_key=True)
    period: str = Field(primary_key=True, max_length=7)
    peak_kw: float
    updated_at: datetime = _utc_field(nullable=False)


class ChargerEventRow(SQLModel, table=True):
    """The raw monitoring history of a charger: status notifications, device and security events, firmware and
    diagnostics status, connects and disconnects, flagged meter samples (``csms_adapter.monitoring.EventRecord``)."""

    __tablename__ = "charger_events"
    __table_args__ = (Index("ix_charger_events_site_charger_time", "site", "charger_id", "time"),)

    id: int | None = Field(default=None, primary_key=True)
    site: str = site_field()
    charger_id: str = Field(max_length=64)
    connector_id: int | None = None
    time: datetime = _utc_field(index=True, nullable=False)
    type: str = Field(max_length=32)
    status: str | None = None
    code: str | None = None
    vendor_code: str | None = None
    info: str | None = None
    details: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class IncidentRow(SQLModel, table=True):
    """One incident as last known (``csms_adapter.monitoring.Incident``); rewritten on each change."""

    __tablename__ = "incidents"

    site: str = site_field(primary_key=True)
    id: str = Field(primary_key=True, max_length=64)
    charger_id: str = Field(index=True, max_length=64)
    connector_id: int | None = None
    kind: str = Field(max_length=32)
    code: str | None = None
    vendor_code: str | None = None
    info: str | None = None
    severity: str = Field(max_length=16)
    opened_at: datetime = _utc_field(index=True, nullable=False)
    resolved_at: datetime | None = _utc_field(index=True)
    occurrences: int = 1
    source: str = Field(default="", max_length=64)


class DeviceVariableRow(SQLModel, table=True):
    """The 2.0.1 device model as the station last reported it (NotifyReport), one row per variable attribute."""

    __tablename__ = "device_variables"
    __table_args__ = (UniqueConstraint("site", "charger_id", "component", "component_instance", "evse_id",
                                       "connector_id", "variable", "variable_instance", "attribute_type",
                                       name="uq_device_variable"),)

    id: int | None = Field(default=None, primary_key=True)
    site: str = site_field()
    charger_id: str = Field(index=True, max_length=64)
    component: str = Field(max_length=128)
    component_instance: str = Field(default="", max_length=128)  # "" rather than NULL: unique keys ignore NULLs
    evse_id: int = -1  # -1: not on an EVSE
    connector_id: int = -1
    variable: str = Field(max_length=128)
    variable_instance: str = Field(default="", max_length=128)
    attribute_type: str = Field(default="Actual", max_length=16)
    value: str | None = None
    mutability: str | None = None
    reported_at: datetime = _utc_field(nullable=False)


class ThermalFitRow(SQLModel, table=True):
    """One learnt battery thermal model (csms_adapter.control.thermal_learning): a vehicle, or a pool ``fleet:…`` of
    every vehicle sharing a configured model. Replaced in place as the fit learns; a restart resumes from it."""

    __tablename__ = "thermal_fits"

    site: str = site_field(primary_key=True)
    key: str = Field(primary_key=True, max_length=128)
    configured_max_temp_c: float
    configured_heating_c_per_kwh: float
    configured_cooling_per_h: float
    heating_c_per_kwh: float
    cooling_per_h: float
    cov_aa: float
    cov_ab: float
    cov_bb: float
    samples: int = 0
    heated_kwh: float = 0.0
    residual_var: float = 0.0
    score_fit: float = 0.0
    score_configured: float = 0.0
    score_weight: float = 0.0
    confidence: float = 0.0
    in_use: bool = False
    updated_at: datetime | None = _utc_field(nullable=True)
