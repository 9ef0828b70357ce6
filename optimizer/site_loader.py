"""Load a site file: YAML → pydantic shape checks → relation checks → domain ``Site``.

Every problem is reported with the file, the line, the key path and the reason, all at once, so an
operator fixes a file in one pass. Nothing here raises anything but ``ConfigError``.
"""

from __future__ import annotations

import copy
import math
import zoneinfo
from collections.abc import Iterator
from datetime import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from optimizer.config import (
    AmbientModel,
    ChargerModel,
    CircuitModel,
    MonitoringModel,
    SiteFile,
    ThermalConfig,
    VehicleDefaultsModel,
)
from optimizer.errors import ConfigError, ConfigProblem
from optimizer.site_model import (
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
from optimizer.yaml_reading import (
    LineMap,
    ProblemCollector,
    duplicate_problems,
    format_path,
    read_yaml_keeping_duplicates,
    validate_model,
)

# Typical lithium-ion pack figures when a fleet gives only a temperature ceiling.
DEFAULT_HEATING_C_PER_KWH = 0.25
DEFAULT_COOLING_PER_H = 0.5
# ----------------------------------------------------------------------------------------- build


def _flatten_circuits(
    circuits: list[CircuitModel], parent: str | None, path: tuple[str | int, ...]
) -> Iterator[tuple[CircuitModel, str | None, tuple[str | int, ...]]]:
    for index, circuit in enumerate(circuits):
        here = (*path, index)
        explicit_parent = circuit.parent if circuit.parent is not None else parent
        yield circuit, explicit_parent, here
        yield from _flatten_circuits(circuit.children, circuit.id, (*here, "children"))


def _local_time(value: str) -> time:
    if value == "24:00":
        return time(0, 0)
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def _thermal(cfg: ThermalConfig | None) -> ThermalModel | None:
    if cfg is None:
        return None
    return ThermalModel(cfg.max_temp_c, cfg.heating_c_per_kwh, cfg.cooling_per_h)


def _default_thermal(defaults: VehicleDefaultsModel) -> ThermalModel:
    explicit = _thermal(defaults.thermal)
    if explicit is not None:
        return explicit
    if defaults.max_temp_c is not None:
        return ThermalModel(defaults.max_temp_c, DEFAULT_HEATING_C_PER_KWH, DEFAULT_COOLING_PER_H)
    return ThermalModel.none()


def _build_charger(model: ChargerModel, voltage_v: float, path: tuple[str | int, ...], problems: ProblemCollector) -> Charger:
    rotation_text = model.phase_rotation or ("L1L2L3" if model.phases == 3 else "L1")
    rotation = tuple(Phase(rotation_text[i : i + 2]) for i in range(0, len(rotation_text), 2))
    if model.dc:
        if model.max_power_kw is None:
            problems.add((*path, "max_power_kw"), "a DC charger needs max_power_kw")
        rotation = (Phase.L1, Phase.L2, Phase.L3)  # DC cabinets draw balanced three-phase power
        phases = 3
    else:
        phases = model.phases
        if len(rotation) != phases:
            problems.add(
                (*path, "phase_rotation"),
                f"{len(rotation)} phase(s) in '{rotation_text}' but the charger has phases: {phases}",
            )
            rotation = rotation[:phases] if len(rotation) >= phases else (Phase.L1, Phase.L2, Phase.L3)[:phases]
        if len(set(rotation)) != len(rotation):
            problems.add((*path, "phase_rotation"), f"'{rotation_text}' uses a site phase twice")
        if model.max_current_a is None and model.max_power_kw is None:
            problems.add((*path, "max_current_a"), "an AC charger needs max_current_a (or max_power_kw)")
    min_current_a = model.min_current_a if model.min_current_a is not None else (0.0 if model.dc else 6.0)
    if model.max_current_a is not None:
        max_current_a = model.max_current_a
    elif model.max_power_kw is not None and not model.dc:
        max_current_a = model.max_power_kw * 1000.0 / (voltage_v * phases)
    else:
        max_current_a = math.inf if model.dc else 0.0
    if not model.dc and min_current_a > max_current_a:
        problems.add(
            (*path, "min_current_a"),
            f"min_current_a {min_current_a:g} A is above max_current_a {max_current_a:g} A",
        )
    if model.max_power_kw is not None:
        max_power_kw = model.max_power_kw
    else:
        max_power_kw = max_current_a * voltage_v * phases / 1000.0 if math.isfinite(max_current_a) else 0.0
    auth = None
    if model.auth is not None:
        auth = ChargerAuth(password_sha256=model.auth.password_sha256, password_env=model.auth.password_env)
    return Charger(
        id=model.id,
        connectors=model.connectors,
        phases=phases,
        phase_rotation=rotation,
        max_current_a=max_current_a,
        min_current_a=min_current_a,
        max_power_kw=max_power_kw,
        rate_unit=RateUnit(model.rate_unit) if model.rate_unit is not None else None,
        dc=model.dc,
        efficiency=model.efficiency,
        auth=auth,
        voltage_v=voltage_v,
    )


def _check_circuits(
    flat: list[tuple[CircuitModel, str | None, tuple[str | int, ...]]],
    charger_ids: set[str],
    problems: ProblemCollector,
) -> None:
    ids: dict[str, tuple[str | int, ...]] = {}
    for circuit, _parent, path in flat:
        if circuit.id in ids:
            problems.add((*path, "id"), f"circuit id '{circuit.id}' is used twice (also at {format_path(ids[circuit.id])})")
        ids.setdefault(circuit.id, path)
    parents = {c.id: p for c, p, _ in flat}
    for _circuit, parent, path in flat:
        if parent is not None and parent not in ids:
            problems.add((*path, "parent"), f"parent circuit '{parent}' does not exist")
    # A cycle can only come from explicit parent references.
    for circuit, _parent, path in flat:
        seen = {circuit.id}
        cursor = parents.get(circuit.id)
        while cursor is not None and cursor in parents:
            if cursor in seen:
                problems.add((*path, "parent"), f"circuit '{circuit.id}' is part of a cycle through '{cursor}'")
                break
            seen.add(cursor)
            cursor = parents.get(cursor)
    owner: dict[str, tuple[str, tuple[str | int, ...]]] = {}
    for circuit, _parent, path in flat:
        for index, charger_id in enumerate(circuit.chargers):
            where = (*path, "chargers", index)
            if charger_id not in charger_ids:
                problems.add(where, f"charger '{charger_id}' is not defined under chargers")
            elif charger_id in owner and owner[charger_id][0] != circuit.id:
                problems.add(
                    where,
                    f"charger '{charger_id}' is in two circuits: '{owner[charger_id][0]}' and '{circuit.id}'",
                )
            elif charger_id in owner:
                problems.add(where, f"charger '{charger_id}' is listed twice in circuit '{circuit.id}'")
            else:
                owner[charger_id] = (circuit.id, where)


def build_site(parsed: SiteFile, filename: str, lines: LineMap) -> Site:
    """Check the relations inside a shape-valid site file and build the domain ``Site``."""
    problems = ProblemCollector(filename, lines)
    section = parsed.site
    try:
        zoneinfo.ZoneInfo(section.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        problems.add(("site", "timezone"), f"unknown time zone '{section.timezone}' (use an IANA name like Europe/Stockholm)")

    chargers: list[Charger] = []
    seen_chargers: set[str] = set()
    for index, charger_model in enumerate(parsed.chargers):
        path: tuple[str | int, ...] = ("chargers", index)
        if charger_model.id in seen_chargers:
            problems.add((*path, "id"), f"charger id '{charger_model.id}' is used twice")
        seen_chargers.add(charger_model.id)
        chargers.append(_build_charger(charger_model, section.voltage_v, path, problems))
    if not chargers:
        problems.add(("chargers",), "a site needs at least one charger")

    flat = list(_flatten_circuits(section.circuits, None, ("site", "circuits")))
    _check_circuits(flat, seen_chargers, problems)
    if flat:
        placed = {cid for c, _, _ in flat for cid in c.chargers}
        for index, charger in enumerate(chargers):
            if charger.id not in placed:
                problems.add(("chargers", index, "id"), f"charger '{charger.id}' is in no circuit")

    windows = []
    for index, window in enumerate(section.grid.schedule):
        if window.from_ == window.to:
            problems.add(("site", "grid", "schedule", index), "window starts and ends at the same time")
        windows.append(GridWindow(_local_time(window.from_), _local_time(window.to), window.import_limit_kw))

    base_profile: tuple[float, ...]
    if section.base_load.profile_kw is not None:
        base_profile = tuple(section.base_load.profile_kw)
    else:
        base_profile = (section.base_load.kw or 0.0,)
    if max(base_profile) >= section.grid.import_limit_kw:
        problems.add(
            ("site", "base_load"),
            f"base load {max(base_profile):g} kW leaves nothing of the {section.grid.import_limit_kw:g} kW import limit",
        )
    if section.tariff.profile_per_kwh is not None:
        prices = tuple(section.tariff.profile_per_kwh)
    else:
        prices = (section.tariff.price_per_kwh or 0.0,)

    defaults_model = parsed.fleet.defaults
    default_thermal = _default_thermal(defaults_model)
    defaults = VehicleProfile(
        id="default",
        id_tags=(),
        battery_kwh=defaults_model.battery_kwh,
        target_soc=defaults_model.target_soc,
        departure_local=_local_time(defaults_model.departure) if defaults_model.departure else None,
        dwell_h=defaults_model.dwell_h,
        max_power_kw=defaults_model.max_power_kw,
        thermal=default_thermal,
        knee_soc=defaults_model.knee_soc,
        priority=defaults_model.priority,
        arrival_soc=defaults_model.arrival_soc,
    )
    vehicles = []
    tag_owner: dict[str, str] = {}
    vehicle_ids: set[str] = set()
    for index, vm in enumerate(parsed.fleet.vehicles):
        path = ("fleet", "vehicles", index)
        if vm.id in vehicle_ids:
            problems.add((*path, "id"), f"vehicle id '{vm.id}' is used twice")
        vehicle_ids.add(vm.id)
        for tag_index, tag in enumerate(vm.id_tags):
            key = tag.upper()  # OCPP id tokens compare case-insensitively
            if key in tag_owner and tag_owner[key] != vm.id:
                problems.add((*path, "id_tags", tag_index), f"id tag '{tag}' also belongs to vehicle '{tag_owner[key]}'")
            tag_owner[key] = vm.id
        vehicles.append(
            VehicleProfile(
                id=vm.id,
                id_tags=tuple(vm.id_tags),
                battery_kwh=vm.battery_kwh or defaults.battery_kwh,
                target_soc=vm.target_soc or defaults.target_soc,
                departure_local=_local_time(vm.departure) if vm.departure else defaults.departure_local,
                dwell_h=vm.dwell_h or defaults.dwell_h,
                max_power_kw=vm.max_power_kw or defaults.max_power_kw,
                thermal=_thermal(vm.thermal) or default_thermal,
                knee_soc=vm.knee_soc or defaults.knee_soc,
                priority=vm.priority or defaults.priority,
                blocked=vm.blocked,
                valid_until=vm.valid_until,
            )
        )

    if problems.items:
        raise ConfigError(problems.items)

    circuits = tuple(
        Circuit(id=c.id, parent=parent, max_current_a=c.max_current_a, max_kw=c.max_kw, chargers=tuple(c.chargers))
        for c, parent, _ in flat
    )
    control = parsed.control
    ocpp = parsed.ocpp
    return Site(
        name=section.name,
        timezone=section.timezone,
        voltage_v=section.voltage_v,
        grid=Grid(section.grid.import_limit_kw, tuple(windows)),
        base_load=BaseLoad(base_profile),
        tariff=Tariff(prices, section.tariff.demand_charge_per_kw),
        circuits=circuits,
        chargers=tuple(chargers),
        vehicles=tuple(vehicles),
        fleet_defaults=defaults,
        control=ControlSettings(
            interval_s=control.interval_s,
            step_min=control.step_min,
            horizon_h=control.horizon_h,
            strategy=control.strategy,
            objective=Objective(
                control.objective.unmet, control.objective.early, control.objective.price, control.objective.peak,
                control.objective.unmet_per, control.objective.stress_high_soc, control.objective.stress_temperature,
            ),
            uniform_steps=control.uniform_steps,
            solver=control.solver,
            solver_time_limit_s=control.solver_time_limit_s,
        ),
        ocpp=OcppSettings(
            listen=ocpp.listen,
            security_profile=ocpp.security_profile,
            accept_unknown=ocpp.accept_unknown,
            tls=TlsSettings(ocpp.tls.cert_file, ocpp.tls.key_file, ocpp.tls.ca_file, ocpp.tls.rsa_cert_file,
                            ocpp.tls.rsa_key_file),
            heartbeat_s=ocpp.heartbeat_s,
            meter_interval_s=ocpp.meter_interval_s,
            profile_ttl_intervals=ocpp.profile_ttl_intervals,
            deadband_a=ocpp.deadband_a,
            call_timeout_s=ocpp.call_timeout_s,
            limits=OcppLimits(**ocpp.limits.model_dump()),
            authorize=ocpp.authorize,
            compression=ocpp.compression,
        ),
        http=HttpSettings(parsed.http.listen),
        storage=StorageSettings(parsed.storage.url, parsed.storage.retention.raw_days,
                                parsed.storage.retention.aggregate_days),
        source_file=filename,
        monitoring=_monitoring(parsed.monitoring),
        ambient=_ambient(section.ambient),
    )


INCIDENT_KINDS = ("offline", "fault", "unavailable", "ignores_limit", "profile_rejected", "meter_anomaly",
                  "security_event", "firmware", "diagnostics")


def _monitoring(model: MonitoringModel) -> MonitoringSettings:
    debounce: dict[str, float] = dict(MonitoringSettings().debounce_s)
    if isinstance(model.debounce_s, dict):
        debounce.update({str(kind): seconds for kind, seconds in model.debounce_s.items()})
    else:
        debounce = dict.fromkeys(INCIDENT_KINDS, float(model.debounce_s))
    return MonitoringSettings(
        offline_after_s=model.offline_after_s,
        debounce_s=tuple(sorted(debounce.items())),
        clear_after_s=model.clear_after_s,
        quiet_resolve_s=model.quiet_resolve_s,
        retention_days=model.retention_days,
        webhooks=tuple(WebhookSpec(w.url, w.min_severity, w.secret_env) for w in model.webhooks),
    )


def _ambient(cfg: AmbientModel) -> Ambient:
    if cfg.profile_c is not None:
        return Ambient(tuple(cfg.profile_c), cfg.max_age_s)
    return Ambient((cfg.c if cfg.c is not None else Ambient().profile_c[0],), cfg.max_age_s)


def parse_site(text: str, filename: str = "<site>") -> Site:
    """Parse site YAML text. Raises ConfigError listing every problem found, in one report: duplicate keys, the
    shape of each value and the relations between keys. (Relations are checked with the keys of a wrong shape left
    at their defaults; when a required key is missing or wrong they wait until it is fixed.)"""
    data, lines = read_yaml_keeping_duplicates(text, filename)
    problems = duplicate_problems(lines, filename)
    parsed: SiteFile | None
    try:
        parsed = validate_model(SiteFile, data, filename, lines)
    except ConfigError as exc:
        problems.extend(exc.problems)
        parsed = _without_wrong_keys(data)
    if parsed is not None:
        try:
            site = build_site(parsed, filename, lines)
        except ConfigError as exc:
            reported = {p.key for p in problems}
            problems.extend(p for p in exc.problems if p.key not in reported)
        else:
            if not problems:
                return site
    raise ConfigError(problems)


def _without_wrong_keys(data: Any) -> SiteFile | None:
    """The site file with every key that failed its shape check removed (so it takes its default), or None when it
    still does not validate (a required key is missing or wrong)."""
    try:
        SiteFile.model_validate(data)
    except ValidationError as exc:
        pruned = copy.deepcopy(data)
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            if not loc or not isinstance(loc[-1], str):
                continue
            parent: Any = pruned
            for part in loc[:-1]:
                try:
                    parent = parent[part]
                except (KeyError, IndexError, TypeError):
                    parent = None
                    break
            if isinstance(parent, dict):
                parent.pop(loc[-1], None)
        try:
            return SiteFile.model_validate(pruned)
        except (ValidationError, RecursionError, ValueError, TypeError):
            return None
    except (RecursionError, ValueError, TypeError):
        return None
    return None


def parse_site_mapping(data: Any, filename: str = "<site>") -> Site:
    """Build a site from already-parsed data (e.g. a scenario's inline site); no line numbers."""
    lines = LineMap()
    parsed = validate_model(SiteFile, data, filename, lines)
    return build_site(parsed, filename, lines)


def load_site(path: str | Path) -> Site:
    """Read and check a site file. Raises ConfigError (never anything else) on any problem."""
    filename = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigProblem(filename, None, "", f"cannot read file: {exc}")]) from exc
    return parse_site(text, filename)
