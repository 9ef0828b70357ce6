"""Benchmark scenario files: YAML → pydantic shape checks → relation checks → ``Scenario``.

A scenario is one simulated depot day: a site (a file relative to the scenario, or the same mapping
inline), a time span, the ambient temperature, optional prices and the charging sessions. Every problem
is reported like a site file's: file, line, key path and reason, all at once, as ``ConfigError``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from optimizer.config import Identifier, IdTag, SiteFile, ThermalConfig
from optimizer.domain import Site, Tariff, ThermalModel
from optimizer.errors import ConfigError, ConfigProblem
from optimizer.site_loader import build_site, load_site
from optimizer.yaml_reading import LineMap, ProblemCollector, read_yaml, validate_model

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Celsius = Annotated[float, Field(gt=-60, lt=150, allow_inf_nan=False)]
# Energy bookkeeping tolerance: requests and battery sizes are given to a few decimals.
ENERGY_TOL_KWH = 1e-3


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SessionSpec(_Strict):
    charger: Identifier
    connector: Annotated[int, Field(ge=1, le=16)] = 1
    arrival: AwareDatetime
    departure: AwareDatetime
    energy_kwh: NonNegativeFloat
    max_kw: PositiveFloat
    battery_kwh: PositiveFloat | None = None
    soc_arrival: Fraction | None = None
    target_soc: Fraction | None = None
    battery_temp_c: Celsius | None = None
    thermal: ThermalConfig | None = None
    priority: PositiveFloat | None = None
    id_tag: IdTag | None = None
    reports_soc: bool | None = None  # default: true on DC chargers (ISO 15118), false on AC

    @model_validator(mode="after")
    def departs_after_arrival(self) -> SessionSpec:
        if self.departure <= self.arrival:
            raise ValueError("departure must be after arrival")
        return self


class PricesSpec(_Strict):
    per_kwh: NonNegativeFloat | list[NonNegativeFloat] = 0.0  # one value or 24 hourly local-time values
    demand_charge_per_kw: NonNegativeFloat = 0.0

    @model_validator(mode="after")
    def hourly(self) -> PricesSpec:
        if isinstance(self.per_kwh, list) and len(self.per_kwh) != 24:
            raise ValueError(f"per_kwh needs one value or 24 hourly values, got {len(self.per_kwh)}")
        return self


class ScenarioFile(_Strict):
    name: Identifier
    site: str | dict[str, Any]
    start: AwareDatetime
    end: AwareDatetime
    step_s: Annotated[int, Field(ge=10, le=3600)] = 300
    ambient_c: Celsius | Annotated[list[Celsius], Field(min_length=1)] = 20.0
    prices: PricesSpec | None = None
    sessions: list[SessionSpec] = []
    # Faults injected into the emulated chargers of a live run (``depotctl bench --live``), in the syntax of
    # ``depotctl run --fault`` with times in seconds after ``start``; the in-process plant has no chargers to fail.
    faults: list[Annotated[str, Field(min_length=1, max_length=300)]] = []

    @model_validator(mode="after")
    def ends_after_start(self) -> ScenarioFile:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


# ---------------------------------------------------------------------------------------- domain


@dataclass(frozen=True, slots=True)
class ScenarioSession:
    """One vehicle visit with every value resolved. Energies are battery-side kWh."""

    index: int
    charger_id: str
    connector_id: int
    arrival: datetime
    departure: datetime
    energy_kwh: float
    max_kw: float
    battery_kwh: float
    soc_arrival: float
    target_soc: float  # the SoC at which the request is met: soc_arrival + energy_kwh / battery_kwh
    battery_temp_c: float
    thermal: ThermalModel
    knee_soc: float
    priority: float | None
    id_tag: str | None
    reports_soc: bool

    @property
    def label(self) -> str:
        return f"{self.charger_id}/{self.connector_id}#{self.index}"


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    source_file: str
    site: Site
    start: datetime
    end: datetime
    step_s: int
    ambient_hourly_c: tuple[float, ...]  # hour k after start; the last value holds beyond
    sessions: tuple[ScenarioSession, ...]
    priced: bool  # whether the site (or the scenario) sets any energy price or demand charge
    faults: tuple[str, ...] = ()  # checked fault specs for live runs (csms_adapter.emulator.faults syntax)

    @property
    def steps(self) -> int:
        return math.ceil((self.end - self.start).total_seconds() / self.step_s - 1e-9)

    def time_at(self, step: int) -> datetime:
        return self.start + timedelta(seconds=step * self.step_s)

    def ambient_at(self, when: datetime) -> float:
        hour = int((when - self.start).total_seconds() // 3600)
        return self.ambient_hourly_c[min(max(hour, 0), len(self.ambient_hourly_c) - 1)]

    def ambient_on_steps(self, first_step: int, steps: int) -> tuple[float, ...]:
        """The ambient the plant applies over each of ``steps`` steps from ``first_step`` on (the plant holds the
        ambient at a step's start for the whole step): what hindsight knows exactly, where a forecast is bracketed."""
        return tuple(self.ambient_at(self.time_at(first_step + k)) for k in range(steps))

    def ambient_forecast(self, when: datetime) -> tuple[float, ...]:
        """Hourly ambient from ``when`` on (a perfect forecast, as the snapshot's ambient_forecast_c)."""
        if len(self.ambient_hourly_c) == 1:
            return ()
        hours = max(1, math.ceil((self.end - when).total_seconds() / 3600.0) + 1)
        return tuple(self.ambient_at(when + timedelta(hours=k)) for k in range(hours))


# ---------------------------------------------------------------------------------------- loader


def _inline_site(data: dict[str, Any], filename: str, lines: LineMap) -> Site:
    """Build an inline site with the scenario's line numbers and key paths prefixed by ``site.``."""
    sub = lines.subtree("site")
    try:
        parsed = validate_model(SiteFile, data, filename, sub)
        return dataclasses.replace(build_site(parsed, filename, sub), source_file=filename)
    except ConfigError as exc:
        raise ConfigError(
            [dataclasses.replace(p, key=f"site.{p.key}" if p.key else "site") for p in exc.problems]
        ) from exc


def _site_of(spec: ScenarioFile, filename: str, lines: Any) -> Site:
    if isinstance(spec.site, dict):
        return _inline_site(spec.site, filename, lines)
    path = Path(filename).parent / spec.site
    if not path.is_file():
        raise ConfigError([ConfigProblem(filename, lines.line_of(("site",)), "site", f"site file '{path}' not found")])
    return load_site(path)


def _with_prices(site: Site, prices: PricesSpec | None) -> Site:
    """Scenario prices replace the site's tariff, so strategies plan against the prices they are billed."""
    if prices is None:
        return site
    per_kwh = tuple(prices.per_kwh) if isinstance(prices.per_kwh, list) else (prices.per_kwh,)
    return dataclasses.replace(site, tariff=Tariff(per_kwh, prices.demand_charge_per_kw))


def _resolve_session(
    index: int, spec: SessionSpec, site: Site, scenario: ScenarioFile, ambient: tuple[float, ...], problems: ProblemCollector
) -> ScenarioSession | None:
    path: tuple[str | int, ...] = ("sessions", index)
    if not site.has_charger(spec.charger):
        problems.add((*path, "charger"), f"charger '{spec.charger}' is not in site '{site.name}'")
        return None
    charger = site.charger(spec.charger)
    if spec.connector > charger.connectors:
        problems.add((*path, "connector"), f"charger '{charger.id}' has connectors 1..{charger.connectors}")
    if spec.arrival < scenario.start or spec.arrival >= scenario.end:
        problems.add((*path, "arrival"), "arrival is outside the scenario's start..end")
    if spec.departure > scenario.end:
        problems.add((*path, "departure"), "departure is after the scenario's end (the run could not judge it)")
    vehicle = site.vehicle_for_tag(spec.id_tag) if spec.id_tag else None
    profile = vehicle or site.fleet_defaults
    battery = spec.battery_kwh or profile.battery_kwh
    room = spec.energy_kwh / battery
    if spec.soc_arrival is not None and spec.target_soc is not None:
        if spec.energy_kwh > (spec.target_soc - spec.soc_arrival) * battery + ENERGY_TOL_KWH:
            problems.add(
                (*path, "energy_kwh"),
                f"{spec.energy_kwh:g} kWh is more than (target_soc − soc_arrival) × battery_kwh = "
                f"{max(0.0, (spec.target_soc - spec.soc_arrival) * battery):g} kWh",
            )
        soc0 = spec.soc_arrival
    elif spec.soc_arrival is not None:
        soc0 = spec.soc_arrival
    else:
        soc0 = (spec.target_soc if spec.target_soc is not None else profile.target_soc) - room
    target = soc0 + room
    if soc0 < -ENERGY_TOL_KWH / battery or target > 1.0 + ENERGY_TOL_KWH / battery:
        problems.add(
            (*path, "energy_kwh"),
            f"{spec.energy_kwh:g} kWh does not fit a {battery:g} kWh battery between SoC 0 and 1 "
            "(give battery_kwh, soc_arrival or target_soc)",
        )
    thermal = (
        ThermalModel(spec.thermal.max_temp_c, spec.thermal.heating_c_per_kwh, spec.thermal.cooling_per_h)
        if spec.thermal is not None
        else profile.thermal
    )
    hour = int((spec.arrival - scenario.start).total_seconds() // 3600)
    arrival_ambient_c = ambient[min(max(hour, 0), len(ambient) - 1)]
    return ScenarioSession(
        index=index,
        charger_id=charger.id,
        connector_id=spec.connector,
        arrival=spec.arrival.astimezone(UTC),
        departure=spec.departure.astimezone(UTC),
        energy_kwh=spec.energy_kwh,
        max_kw=spec.max_kw,
        battery_kwh=battery,
        soc_arrival=min(max(soc0, 0.0), 1.0),
        target_soc=min(max(target, 0.0), 1.0),
        battery_temp_c=spec.battery_temp_c if spec.battery_temp_c is not None else arrival_ambient_c,
        thermal=thermal,
        knee_soc=profile.knee_soc,
        priority=spec.priority,
        id_tag=spec.id_tag,
        reports_soc=spec.reports_soc if spec.reports_soc is not None else charger.dc,
    )


def _check_overlaps(sessions: list[ScenarioSession], problems: ProblemCollector) -> None:
    by_connector: dict[tuple[str, int], list[ScenarioSession]] = {}
    for s in sessions:
        by_connector.setdefault((s.charger_id, s.connector_id), []).append(s)
    for visits in by_connector.values():
        visits.sort(key=lambda s: s.arrival)
        for before, after in itertools.pairwise(visits):
            if after.arrival < before.departure:
                problems.add(
                    ("sessions", after.index, "arrival"),
                    f"connector {after.charger_id}/{after.connector_id} is still taken by session "
                    f"{before.index} until {before.departure.isoformat()}",
                )


def parse_scenario(text: str, filename: str = "<scenario>") -> Scenario:
    """Parse scenario YAML text. Raises ConfigError listing every problem found."""
    data, lines = read_yaml(text, filename)
    spec = validate_model(ScenarioFile, data, filename, lines)
    site = _with_prices(_site_of(spec, filename, lines), spec.prices)
    ambient = tuple(spec.ambient_c) if isinstance(spec.ambient_c, list) else (float(spec.ambient_c),)
    problems = ProblemCollector(filename, lines)
    resolved = [_resolve_session(i, s, site, spec, ambient, problems) for i, s in enumerate(spec.sessions)]
    sessions = [s for s in resolved if s is not None]
    _check_overlaps(sessions, problems)
    _check_faults(spec.faults, site, (spec.end - spec.start).total_seconds(), problems)
    if problems.items:
        raise ConfigError(problems.items)
    priced = max(site.tariff.price_per_kwh) > 0 or site.tariff.demand_charge_per_kw > 0
    return Scenario(
        name=spec.name,
        source_file=filename,
        site=site,
        start=spec.start.astimezone(UTC),
        end=spec.end.astimezone(UTC),
        step_s=spec.step_s,
        ambient_hourly_c=ambient,
        sessions=tuple(sessions),
        priced=priced,
        faults=tuple(spec.faults),
    )


def _check_faults(specs: list[str], site: Site, length_s: float, problems: ProblemCollector) -> None:
    """Each fault parses, names a charger and connector of the site and starts inside the scenario."""
    if not specs:
        return
    # The spec language belongs to the emulator; it is pure (no I/O, no asyncio), so checking with it here keeps
    # one definition and lets a bad file stop the run before anything is simulated.
    from csms_adapter.emulator.faults import FaultKind, parse_fault

    for index, text in enumerate(specs):
        path: tuple[str | int, ...] = ("faults", index)
        try:
            fault = parse_fault(text)
        except ValueError as exc:
            problems.add(path, str(exc))
            continue
        if not site.has_charger(fault.charger_id):
            problems.add(path, f"charger '{fault.charger_id}' is not in site '{site.name}'")
        elif (fault.kind not in (FaultKind.OFFLINE, FaultKind.IGNORE_LIMIT)
              and fault.connector_id > site.charger(fault.charger_id).connectors):
            problems.add(path, f"charger '{fault.charger_id}' has connectors 1..{site.charger(fault.charger_id).connectors}")
        if fault.at_s >= length_s:
            problems.add(path, f"starts {fault.at_s:g} s after start, past the scenario's end ({length_s:g} s)")



def load_scenario(path: str | Path) -> Scenario:
    """Read and check a scenario file. Raises ConfigError (never anything else) on any problem."""
    filename = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigProblem(filename, None, "", f"cannot read file: {exc}")]) from exc
    return parse_scenario(text, filename)
