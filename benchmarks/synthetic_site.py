"""A random depot of any size with a three-level circuit tree, for the solver benchmark and the
property tests: 7.4/11/22 kW AC and 50-150 kW DC connectors, 1- and 3-phase with rotations,
60/80/300 kWh batteries, taper and thermal models, a site limit at ~35 % of the connector sum."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np

from optimizer.domain import SessionState, Snapshot, ThermalModel, ValueSource
from optimizer.site_loader import parse_site_mapping


def synthetic_site_mapping(connectors: int, seed: int = 0, *, step_min: float = 15.0, horizon_h: float = 24.0,
                           uniform_steps: bool = True) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    feeders = max(1, round(math.sqrt(connectors) / 2))
    subs_per_feeder = 2
    chargers = []
    sub_members: dict[str, list[str]] = {}
    total_kw = 0.0
    rotations = ["L1L2L3", "L2L3L1", "L3L1L2"]
    for k in range(connectors):
        cid = f"cp-{k:05d}"
        kind = rng.choice(["ac7", "ac11", "ac22", "dc"], p=[0.3, 0.35, 0.25, 0.1])
        if kind == "ac7":
            charger = {"id": cid, "phases": 1, "phase_rotation": f"L{k % 3 + 1}", "max_current_a": 32}
            total_kw += 7.36
        elif kind == "ac11":
            charger = {"id": cid, "phases": 3, "phase_rotation": rotations[k % 3], "max_current_a": 16}
            total_kw += 11.04
        elif kind == "ac22":
            charger = {"id": cid, "phases": 3, "phase_rotation": rotations[k % 3], "max_current_a": 32, "max_power_kw": 22}
            total_kw += 22.0
        else:
            power = float(rng.choice([50.0, 100.0, 150.0]))
            charger = {"id": cid, "dc": True, "max_power_kw": power}
            total_kw += power
        chargers.append(charger)
        sub = f"sub-{k % (feeders * subs_per_feeder):03d}"
        sub_members.setdefault(sub, []).append(cid)
    circuits_children = []
    per_sub_kw = total_kw / max(len(sub_members), 1)
    for f in range(feeders):
        children = []
        for s in range(subs_per_feeder):
            sub = f"sub-{f * subs_per_feeder + s:03d}"
            if sub not in sub_members:
                continue
            children.append({"id": sub, "max_current_a": round(0.6 * per_sub_kw * 1000 / (3 * 230), 1),
                             "chargers": sub_members[sub]})
        if children:
            circuits_children.append({"id": f"feeder-{f:03d}",
                                      "max_current_a": round(0.5 * per_sub_kw * len(children) * 1000 / (3 * 230), 1),
                                      "children": children})
    grid_kw = round(0.35 * total_kw, 1)
    return {
        "site": {
            "name": f"synthetic-{connectors}",
            "timezone": "UTC",
            "voltage_v": 230,
            "grid": {"import_limit_kw": grid_kw},
            "base_load": {"kw": round(0.05 * grid_kw, 1)},
            "circuits": [{"id": "main", "max_current_a": round(0.4 * total_kw * 1000 / (3 * 230), 1),
                          "children": circuits_children}],
        },
        "chargers": chargers,
        "fleet": {"defaults": {"battery_kwh": 80, "target_soc": 0.9, "max_power_kw": 150, "max_temp_c": 45,
                               "knee_soc": 0.8}},
        "control": {"step_min": step_min, "horizon_h": horizon_h, "uniform_steps": uniform_steps},
        "ocpp": {"security_profile": 0, "accept_unknown": True},
    }


def synthetic_snapshot(connectors: int, horizon_h: float, seed: int = 0,
                       now: datetime = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)) -> Snapshot:
    """One session per connector, departures spread over the horizon, some batteries warm."""
    rng = np.random.default_rng(seed + 1)
    sessions = []
    for k in range(connectors):
        battery = float(rng.choice([60.0, 80.0, 300.0], p=[0.4, 0.45, 0.15]))
        soc = float(rng.uniform(0.05, 0.85))
        departure = now + timedelta(hours=float(rng.uniform(0.3, 1.0)) * horizon_h)
        temp = float(rng.uniform(15.0, 40.0))
        sessions.append(
            SessionState(
                charger_id=f"cp-{k:05d}", connector_id=1, soc=soc, soc_source=ValueSource.MEASURED,
                battery_kwh=battery, target_soc=0.9, departure=departure, battery_temp_c=temp,
                thermal=ThermalModel(45.0, float(rng.uniform(0.1, 0.6)), 0.5),
                knee_soc=float(rng.uniform(0.7, 0.9)), priority=float(rng.choice([1.0, 1.0, 2.0])),
            )
        )
    return Snapshot(time=now, sessions=tuple(sessions), ambient_c=20.0)


def synthetic_site(connectors: int, seed: int = 0, **control: float | bool):  # type: ignore[no-untyped-def]
    return parse_site_mapping(synthetic_site_mapping(connectors, seed, **control), f"<synthetic-{connectors}>")  # type: ignore[arg-type]
