"""Small builders shared by the optimizer tests."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from optimizer.domain import SessionState, Site, Snapshot, ThermalModel
from optimizer.site_loader import parse_site_mapping

NOW = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)

BASE_SITE: dict[str, Any] = {
    "site": {
        "name": "test-depot",
        "timezone": "UTC",
        "voltage_v": 230,
        "grid": {"import_limit_kw": 40},
        "base_load": {"kw": 5},
        "circuits": [
            {"id": "main", "max_current_a": 100, "children": [
                {"id": "feeder-a", "max_current_a": 32, "chargers": ["cp-1", "cp-2"]},
                {"id": "feeder-b", "max_kw": 15, "chargers": ["cp-3", "cp-4"]},
            ]},
        ],
    },
    "chargers": [
        {"id": "cp-1", "phases": 3, "max_current_a": 16},
        {"id": "cp-2", "phases": 1, "phase_rotation": "L2", "max_current_a": 32},
        {"id": "cp-3", "phases": 3, "phase_rotation": "L2L3L1", "max_current_a": 32, "max_power_kw": 22},
        {"id": "cp-4", "dc": True, "max_power_kw": 50},
    ],
    "fleet": {"defaults": {"battery_kwh": 60, "target_soc": 0.8, "max_power_kw": 50, "knee_soc": 0.8}},
    "control": {"step_min": 15, "horizon_h": 12},
    "ocpp": {"security_profile": 0, "accept_unknown": True},
}


def site_with(**changes: Any) -> Site:
    """BASE_SITE with top-level sections replaced."""
    data = copy.deepcopy(BASE_SITE)
    data.update(changes)
    return parse_site_mapping(data, "test-site.yaml")


def session(charger: str, connector: int = 1, *, soc: float = 0.2, hours: float = 8.0, **fields: Any) -> SessionState:
    fields.setdefault("thermal", ThermalModel.none())
    return SessionState(charger_id=charger, connector_id=connector, soc=soc,
                        departure=NOW + timedelta(hours=hours), **fields)


def snapshot(*sessions: SessionState, **fields: Any) -> Snapshot:
    return Snapshot(time=NOW, sessions=tuple(sessions), **fields)


def site_section(**overrides: Any) -> dict[str, Any]:
    """The 'site' section of BASE_SITE with keys replaced."""
    section = copy.deepcopy(BASE_SITE["site"])
    section.update(overrides)
    return section
