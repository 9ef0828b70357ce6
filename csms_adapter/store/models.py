"""The tables. Every datetime column is ``UTCDateTime``: written as UTC, read back timezone-aware."""

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


class ChargerRow(SQLModel, table=True):
    __tablename__ = "chargers"

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

    charger_id: str = Field(primary_key=True, foreign_key="chargers.id", max_length=64)
    connector_id: int = Field(primary_key=True)
    status: str | None = None
    updated_at: datetime | None = _utc_field()


class SessionRow(SQLModel, table=True):
    """One transaction. ``transaction_id`` is text: 1.6 ids are ints, 2.0.1 ids are strings."""

    __tablename__ = "sessions"
    __table_args__ = (UniqueConstraint("charger_id", "transaction_id", name="uq_session_charger_tx"),)

    id: int | None = Field(default=None, primary_key=True)
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
    __table_args__ = (Index("ix_samples_connector_time", "charger_id", "connector_id", "measured_at"),)

    id: int | None = Field(default=None, primary_key=True)
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
    __table_args__ = (Index("ix_commands_connector_time", "charger_id", "connector_id", "sent_at"),)

    id: int | None = Field(default=None, primary_key=True)
    charger_id: str = Field(max_length=64)
    connector_id: int | None = None
    action: str = Field(max_length=64)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    answer: str | None = None
    error: str | None = None
    sent_at: datetime = _utc_field(nullable=False)
    latency_ms: float | None = None


class ThermalFitRow(SQLModel, table=True):
    """One learnt battery thermal model (csms_adapter.control.thermal_learning): a vehicle, or a pool ``fleet:…`` of
    every vehicle sharing a configured model. Replaced in place as the fit learns; a restart resumes from it."""

    __tablename__ = "thermal_fits"

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
