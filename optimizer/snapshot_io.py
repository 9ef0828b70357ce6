"""The JSON side of the optimizer: snapshot JSON → ``Snapshot`` and ``Plan`` → plan JSON
(docs/json.md). Bad input raises ``SnapshotError`` naming the key and the reason."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from optimizer.domain import (
    BatteryStress,
    ExternalLimit,
    LimitSource,
    Phase,
    Plan,
    PlugInSlot,
    RateUnit,
    SessionState,
    Site,
    Snapshot,
    ThermalModel,
    UncontrolledLoad,
    ValueSource,
)
from optimizer.errors import SnapshotError
from optimizer.yaml_reading import unknown_key_reason

Finite = Annotated[float, Field(allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ThermalJson(_Strict):
    max_temp_c: Annotated[float, Field(gt=-40, lt=120, allow_inf_nan=False)]
    heating_c_per_kwh: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    cooling_per_h: Annotated[float, Field(ge=0, allow_inf_nan=False)]


class SessionJson(_Strict):
    charger: Annotated[str, Field(min_length=1, max_length=64)]
    connector: Annotated[int, Field(ge=1, le=16)] = 1
    soc: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] | None = None
    soc_source: ValueSource | None = None
    energy_needed_kwh: Annotated[float, Field(ge=0, le=1e5, allow_inf_nan=False)] | None = None
    energy_delivered_kwh: Annotated[float, Field(ge=0, le=1e5, allow_inf_nan=False)] = 0.0
    battery_kwh: Annotated[float, Field(gt=0, le=1e5, allow_inf_nan=False)] | None = None
    target_soc: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] | None = None
    departure: datetime | None = None
    plugged_in_at: datetime | None = None
    max_power_kw: Annotated[float, Field(ge=0, le=1e4, allow_inf_nan=False)] | None = None
    battery_temp_c: Annotated[float, Field(gt=-60, lt=150, allow_inf_nan=False)] | None = None
    priority: Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)] | None = None
    id_tag: Annotated[str, Field(max_length=36)] | None = None
    vehicle: Annotated[str, Field(max_length=64)] | None = None
    knee_soc: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] | None = None
    thermal: ThermalJson | None = None
    phases: Annotated[int, Field(ge=1, le=3)] | None = None
    # The site phases the vehicle was measured drawing on, and the unit its charger is commanded in (W: the worst
    # single phase is planned while ``site_phases`` is unknown).
    site_phases: Annotated[list[Phase], Field(min_length=1, max_length=3)] | None = None
    rate_unit: RateUnit | None = None


class UncontrolledJson(_Strict):
    charger: str
    connector: Annotated[int, Field(ge=0, le=16)] = 0
    power_kw: Annotated[float, Field(ge=0, le=1e5, allow_inf_nan=False)]
    phases: Annotated[int, Field(ge=1, le=3)] = 3
    reason: str = ""


class PlugInJson(_Strict):
    charger: str
    wanted_kw: Annotated[float, Field(ge=0, le=1e5, allow_inf_nan=False)]
    phases: Annotated[int, Field(ge=1, le=3)] = 3


class ExternalLimitJson(_Strict):
    """A limit set outside depotctl (``Snapshot.external_limits``); connector 0 = the whole charger."""

    charger: str
    connector: Annotated[int, Field(ge=0, le=16)] = 0
    limit_kw: Annotated[float, Field(ge=0, le=1e5, allow_inf_nan=False)]
    source: LimitSource = LimitSource.OTHER
    start: datetime | None = None
    until: datetime | None = None


class SnapshotJson(_Strict):
    time: datetime
    ambient_c: Annotated[float, Field(gt=-60, lt=70, allow_inf_nan=False)] = 20.0
    base_load_kw: Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False)] | None = None
    grid_cap_kw: Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False)] | None = None
    peak_so_far_kw: Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False)] | None = None
    grid_cap_until: datetime | None = None
    sessions: list[SessionJson] = []
    uncontrolled: list[UncontrolledJson] = []
    ambient_forecast_c: list[Finite] = []
    plug_in: list[PlugInJson] = []
    external_limits: list[ExternalLimitJson] = []


def _aware(value: datetime | None, key: str, source: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise SnapshotError(source, key, "timestamp needs a UTC offset (e.g. 2026-01-01T18:00:00Z)")
    return value.astimezone(UTC)


def snapshot_from_json(data: Any, site: Site, source: str = "snapshot") -> Snapshot:
    """Validate snapshot JSON (already parsed) against the contract and the site."""
    if not isinstance(data, dict):
        raise SnapshotError(source, "(top level)", "expected a JSON object")
    try:
        parsed = SnapshotJson.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        reason = unknown_key_reason(SnapshotJson, tuple(first["loc"])) if first["type"] == "extra_forbidden" else str(first["msg"])
        raise SnapshotError(source, key, reason) from exc
    when = _aware(parsed.time, "time", source)
    assert when is not None
    sessions = []
    seen: set[tuple[str, int]] = set()
    for index, s in enumerate(parsed.sessions):
        key = f"sessions[{index}]"
        if not site.has_charger(s.charger):
            raise SnapshotError(source, f"{key}.charger", f"charger '{s.charger}' is not in site '{site.name}'")
        if s.connector > site.charger(s.charger).connectors:
            raise SnapshotError(source, f"{key}.connector", f"charger '{s.charger}' has {site.charger(s.charger).connectors} connector(s)")
        if (s.charger, s.connector) in seen:
            raise SnapshotError(source, key, f"a second session on {s.charger}/{s.connector}")
        seen.add((s.charger, s.connector))
        thermal: ThermalModel | None = None
        if "thermal" in s.model_fields_set:
            thermal = (
                ThermalModel.none() if s.thermal is None
                else ThermalModel(s.thermal.max_temp_c, s.thermal.heating_c_per_kwh, s.thermal.cooling_per_h)
            )
        sessions.append(
            SessionState(
                charger_id=s.charger,
                connector_id=s.connector,
                soc=s.soc,
                soc_source=s.soc_source or ValueSource.MEASURED,
                energy_needed_kwh=s.energy_needed_kwh,
                battery_kwh=s.battery_kwh,
                target_soc=s.target_soc,
                departure=_aware(s.departure, f"{key}.departure", source),
                max_power_kw=s.max_power_kw,
                battery_temp_c=s.battery_temp_c,
                priority=s.priority,
                id_tag=s.id_tag,
                vehicle_id=s.vehicle,
                knee_soc=s.knee_soc,
                thermal=thermal,
                phases=s.phases,
                site_phases=tuple(dict.fromkeys(s.site_phases)) if s.site_phases is not None else None,
                rate_unit=s.rate_unit,
                plugged_in_at=_aware(s.plugged_in_at, f"{key}.plugged_in_at", source),
                energy_delivered_kwh=s.energy_delivered_kwh,
            )
        )
    uncontrolled = []
    for index, u in enumerate(parsed.uncontrolled):
        if not site.has_charger(u.charger):
            raise SnapshotError(source, f"uncontrolled[{index}].charger", f"charger '{u.charger}' is not in the site")
        uncontrolled.append(UncontrolledLoad(u.charger, u.connector, u.power_kw, u.phases, u.reason))
    plug_in: list[PlugInSlot] = []
    for index, p in enumerate(parsed.plug_in):
        if not site.has_charger(p.charger):
            raise SnapshotError(source, f"plug_in[{index}].charger", f"charger '{p.charger}' is not in the site")
        if any(slot.charger_id == p.charger for slot in plug_in):
            raise SnapshotError(source, f"plug_in[{index}].charger", f"a second slot for charger '{p.charger}'")
        plug_in.append(PlugInSlot(p.charger, p.wanted_kw, p.phases))
    external: list[ExternalLimit] = []
    for index, e in enumerate(parsed.external_limits):
        key = f"external_limits[{index}]"
        if not site.has_charger(e.charger):
            raise SnapshotError(source, f"{key}.charger", f"charger '{e.charger}' is not in the site")
        if e.connector > site.charger(e.charger).connectors:
            raise SnapshotError(source, f"{key}.connector", f"charger '{e.charger}' has {site.charger(e.charger).connectors} connector(s)")
        start, until = _aware(e.start, f"{key}.start", source), _aware(e.until, f"{key}.until", source)
        if start is not None and until is not None and until <= start:
            raise SnapshotError(source, f"{key}.until", "ends before it starts")
        external.append(ExternalLimit(e.charger, e.connector, e.limit_kw, e.source, start, until))
    return Snapshot(
        time=when,
        sessions=tuple(sessions),
        ambient_c=parsed.ambient_c,
        base_load_kw=parsed.base_load_kw,
        grid_cap_kw=parsed.grid_cap_kw,
        peak_so_far_kw=parsed.peak_so_far_kw,
        grid_cap_until=_aware(parsed.grid_cap_until, "grid_cap_until", source),
        uncontrolled=tuple(uncontrolled),
        ambient_forecast_c=tuple(parsed.ambient_forecast_c),
        plug_in=tuple(plug_in),
        external_limits=tuple(external),
    )


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _num(value: float | None, digits: int = 4) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits)


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """The plan JSON of docs/json.md (fields are only ever added)."""
    return {
        "status": str(plan.status),
        "strategy": plan.strategy,
        "time": _iso(plan.time),
        "solve_ms": round(plan.solve_ms, 3),
        "build_ms": round(plan.build_ms, 3),
        "solver": plan.solver,
        "objective": _num(plan.objective, 6),
        "step_s": plan.step_s,
        "schedule_step_s": list(plan.schedule_step_s),
        "binding": list(plan.binding),
        "reason": plan.reason,
        "min_current_rounds": plan.min_current_rounds,
        "total_limit_kw": round(plan.total_limit_kw, 3),
        "import_limit_kw": [round(v, 3) for v in plan.import_limit_kw],
        "base_load_kw": [round(v, 3) for v in plan.base_load_kw],
        "connectors": [
            {
                "charger": c.charger_id,
                "connector": c.connector_id,
                "limit_kw": c.limit_kw,
                "limit_a": c.limit_a,
                "phases": c.phases,
                "schedule_kw": list(c.schedule_kw),
                "energy_needed_kwh": _num(c.energy_needed_kwh),
                "energy_planned_kwh": _num(c.energy_planned_kwh),
                "expected_soc_at_departure": _num(c.expected_soc_at_departure),
                "expected_max_temp_c": _num(c.expected_max_temp_c, 3),
                "departure": _iso(c.departure),
                "soc_source": str(c.soc_source),
                "stress": _stress_json(c.stress),
            }
            for c in plan.connectors
        ],
        "plug_in": [{"charger": a.charger_id, "limit_kw": a.limit_kw, "phases": a.phases} for a in plan.plug_in],
    }


def _stress_json(stress: BatteryStress | None) -> dict[str, float | None] | None:
    """The plan's battery stress proxies (docs/battery.md)."""
    if stress is None:
        return None
    return {
        "hours_above_80pct_soc": _num(stress.hours_above_high_soc, 3),
        "arrhenius_kwh": _num(stress.arrhenius_kwh, 3),
        "peak_c_rate": _num(stress.peak_c_rate, 4),
    }
