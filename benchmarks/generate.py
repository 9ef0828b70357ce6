"""A seeded generator of depot days: site files and scenario files for six depot types.

The shipped files in ``benchmarks/sites`` and ``benchmarks/scenarios`` come from
``python -m benchmarks.generate --all`` (seed 1); ``--profile NAME --seed N`` makes more days of a kind.
The same seed always gives the same file.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).parent
DAY = datetime(2026, 6, 15, tzinfo=UTC)
BENCH_CONTROL = {"interval_s": 300, "step_min": 5, "horizon_h": 24, "strategy": "lp"}
# A day-ahead style price curve (per kWh, local hours): cheap at night, expensive at the evening peak.
PRICES = [
    0.08,
    0.07,
    0.07,
    0.07,
    0.07,
    0.08,
    0.12,
    0.20,
    0.22,
    0.18,
    0.15,
    0.14,
    0.13,
    0.13,
    0.14,
    0.16,
    0.20,
    0.25,
    0.26,
    0.20,
    0.15,
    0.12,
    0.10,
    0.09,
]


def iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class ChargerSpec:
    ids: list[str]
    connectors: int
    charger: dict[str, Any]  # the shared charger keys (phases, max_current_a, dc, ...)


def site_mapping(
    name: str,
    import_limit_kw: float,
    groups: list[tuple[str, float, ChargerSpec]],
    base_kw: float,
    main_a: float | None,
    thermal: dict[str, float] | None = None,
    tariff: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A site with one main circuit and one feeder per group (feeder id, feeder limit A, chargers)."""
    feeders = [{"id": fid, "max_current_a": limit_a, "chargers": spec.ids} for fid, limit_a, spec in groups]
    main: dict[str, Any] = {"id": "main", "children": feeders}
    if main_a is not None:
        main["max_current_a"] = main_a
    else:
        main["max_kw"] = import_limit_kw
    chargers = [{"id": cid, "connectors": spec.connectors, **spec.charger} for _, _, spec in groups for cid in spec.ids]
    defaults: dict[str, Any] = {"battery_kwh": 60, "target_soc": 0.9, "max_power_kw": 11, "knee_soc": 0.8}
    if thermal is not None:
        defaults["thermal"] = thermal
    site: dict[str, Any] = {
        "name": name,
        "timezone": "Europe/Amsterdam",
        "voltage_v": 230,
        "grid": {"import_limit_kw": import_limit_kw},
        "base_load": {"kw": base_kw},
        "circuits": [main],
    }
    if tariff is not None:
        site["tariff"] = tariff
    return {"site": site, "chargers": chargers, "fleet": {"defaults": defaults}, "control": BENCH_CONTROL}


@dataclass(slots=True)
class Visit:
    charger: str
    connector: int
    arrival: datetime
    departure: datetime
    battery_kwh: float
    soc_arrival: float
    energy_kwh: float
    max_kw: float
    extra: dict[str, Any]

    def as_mapping(self) -> dict[str, Any]:
        return {
            "charger": self.charger,
            "connector": self.connector,
            "arrival": iso(self.arrival),
            "departure": iso(self.departure),
            "energy_kwh": round(self.energy_kwh, 2),
            "max_kw": self.max_kw,
            "battery_kwh": self.battery_kwh,
            "soc_arrival": round(self.soc_arrival, 3),
            **self.extra,
        }


def _visit(
    rng: random.Random,
    charger: str,
    connector: int,
    arrival: datetime,
    departure: datetime,
    battery_kwh: float,
    max_kw: float,
    need_lo: float,
    need_hi: float,
    **extra: Any,
) -> Visit:
    soc = rng.uniform(0.1, 0.5)
    energy = min(rng.uniform(need_lo, need_hi), (0.95 - soc) * battery_kwh)
    return Visit(charger, connector, arrival, departure, battery_kwh, soc, energy, max_kw, dict(extra))


def _at(hour: float, rng: random.Random | None = None, spread_h: float = 0.0) -> datetime:
    jitter = rng.uniform(-spread_h, spread_h) if rng is not None else 0.0
    minutes = round((hour + jitter) * 60)
    return DAY + timedelta(minutes=minutes)


# ------------------------------------------------------------------------------------- profiles


def workplace(rng: random.Random) -> tuple[dict[str, Any], list[Visit], dict[str, Any]]:
    spec_a = ChargerSpec([f"wp-{i:02d}" for i in range(1, 11)], 2, {"phases": 3, "max_current_a": 16})
    spec_b = ChargerSpec([f"wp-{i:02d}" for i in range(11, 21)], 2, {"phases": 3, "max_current_a": 16})
    site = site_mapping("workplace", 160, [("feeder-a", 125, spec_a), ("feeder-b", 125, spec_b)], 20, 250)
    visits = []
    for cid in spec_a.ids + spec_b.ids:
        for connector in (1, 2):
            if rng.random() < 0.85:
                arrival = _at(7.0, rng, 1.0)  # 08:00 local ± 1 h
                departure = arrival + timedelta(hours=rng.uniform(6.5, 9.0))
                visits.append(
                    _visit(
                        rng,
                        cid,
                        connector,
                        arrival,
                        departure,
                        rng.choice([50, 64, 77]),
                        rng.choice([7.4, 11.0]),
                        8,
                        30,
                    )
                )
    return site, visits, {"start": _at(4.0), "end": _at(18.0), "ambient_c": 21.0}


def van_depot(rng: random.Random) -> tuple[dict[str, Any], list[Visit], dict[str, Any]]:
    spec = ChargerSpec(
        [f"van-{i:02d}" for i in range(1, 31)], 1, {"phases": 3, "max_current_a": 32, "max_power_kw": 22}
    )
    groups = [(f"feeder-{k}", 160.0, ChargerSpec(spec.ids[k * 10 : (k + 1) * 10], 1, spec.charger)) for k in range(3)]
    site = site_mapping("van-depot", 250, groups, 15, 400, tariff={"profile_per_kwh": PRICES})
    visits = [
        _visit(rng, cid, 1, _at(15.5, rng, 1.2), _at(28.5, rng, 0.7), 75, rng.choice([11.0, 22.0]), 25, 60)
        for cid in spec.ids
    ]
    return site, visits, {"start": _at(12.0), "end": _at(32.0), "ambient_c": [16.0] * 8 + [12.0] * 12}


def two_shift(rng: random.Random) -> tuple[dict[str, Any], list[Visit], dict[str, Any]]:
    spec = ChargerSpec([f"dc-{i:02d}" for i in range(1, 17)], 1, {"dc": True, "max_power_kw": 50, "efficiency": 0.95})
    groups = [
        ("hall-a", 400.0, ChargerSpec(spec.ids[:8], 1, spec.charger)),
        ("hall-b", 400.0, ChargerSpec(spec.ids[8:], 1, spec.charger)),
    ]
    thermal = {"max_temp_c": 45, "heating_c_per_kwh": 0.12, "cooling_per_h": 0.6}
    site = site_mapping("two-shift-depot", 420, groups, 20, None, thermal=thermal, tariff={"profile_per_kwh": PRICES})
    visits = []
    for cid in spec.ids:
        # overnight, then a one-hour turnaround between the shifts, then the evening return
        visits.append(_visit(rng, cid, 1, _at(0.0), _at(4.5, rng, 0.3), 120, 50.0, 40, 80, battery_temp_c=30.0))
        arrive = _at(12.0, rng, 0.3)
        visits.append(
            _visit(
                rng,
                cid,
                1,
                arrive,
                arrive + timedelta(minutes=rng.choice([45, 60, 75])),
                120,
                50.0,
                20,
                40,
                battery_temp_c=rng.uniform(32, 36),
            )
        )
        visits.append(
            _visit(rng, cid, 1, _at(20.5, rng, 0.4), _at(23.9), 120, 50.0, 40, 80, battery_temp_c=rng.uniform(30, 35))
        )
    return site, visits, {"start": _at(0.0), "end": _at(24.0), "ambient_c": [18.0] * 6 + [24.0] * 12 + [20.0] * 6}


def bus_depot(rng: random.Random) -> tuple[dict[str, Any], list[Visit], dict[str, Any]]:
    return _bus_depot(rng, "bus-depot", (40.0, 43.5), [36.0, 36.0, 35.0, 34.0, 32.0, 30.0, 28.0, 26.0, 25.0, 24.0, 23.0,
                                                      22.0, 22.0, 22.0])


def bus_depot_heatwave(rng: random.Random) -> tuple[dict[str, Any], list[Visit], dict[str, Any]]:
    """The bus depot in a heatwave: evenings at 41-42 °C, nights that stay near 30 °C, buses back at 42-44.5 °C
    (docs/battery.md: the day the thermal calibration is proven on)."""
    return _bus_depot(rng, "bus-depot-heatwave", (42.0, 44.5), [42.0, 42.0, 41.0, 40.0, 38.0, 36.0, 34.0, 33.0, 32.0,
                                                                31.0, 30.0, 30.0, 29.0, 29.0])


def _bus_depot(rng: random.Random, name: str, arrival_temp_c: tuple[float, float],
               ambient: list[float]) -> tuple[dict[str, Any], list[Visit], dict[str, Any]]:
    spec = ChargerSpec([f"bus-{i:02d}" for i in range(1, 13)], 1, {"dc": True, "max_power_kw": 150, "efficiency": 0.95})
    groups = [
        ("bay-a", 800.0, ChargerSpec(spec.ids[:6], 1, spec.charger)),
        ("bay-b", 800.0, ChargerSpec(spec.ids[6:], 1, spec.charger)),
    ]
    thermal = {"max_temp_c": 45, "heating_c_per_kwh": 0.06, "cooling_per_h": 0.5}
    site = site_mapping(
        name, 900, groups, 40, None, thermal=thermal, tariff={"price_per_kwh": 0.15, "demand_charge_per_kw": 8.0}
    )
    visits = [
        _visit(
            rng,
            cid,
            1,
            _at(16.5, rng, 1.0),
            _at(27.0, rng, 0.5),
            350,
            150.0,
            150,
            260,
            battery_temp_c=round(rng.uniform(*arrival_temp_c), 1),
        )
        for cid in spec.ids
    ]
    # Hourly from 16:00 UTC = 18:00 local, cooling through the night.
    return site, visits, {"start": _at(15.0), "end": _at(29.0), "ambient_c": [ambient[0], *ambient]}


def congested(rng: random.Random) -> tuple[dict[str, Any], list[Visit], dict[str, Any]]:
    """54 connectors (like Caltech's ACN garage), a 24 h day, demand ≈ 1.5 × what the site can deliver."""
    spec_1 = ChargerSpec(
        [f"cg-{i:02d}" for i in range(1, 15)], 2, {"phases": 3, "max_current_a": 32, "max_power_kw": 22}
    )
    spec_2 = ChargerSpec(
        [f"cg-{i:02d}" for i in range(15, 28)], 2, {"phases": 3, "max_current_a": 32, "max_power_kw": 22}
    )
    site = site_mapping(
        "congested-garage",
        150,
        [("feeder-1", 200, spec_1), ("feeder-2", 200, spec_2)],
        10,
        300,
        tariff={"profile_per_kwh": PRICES},
    )
    # A garage that sells kWh to whoever parks, like the ACN garage whose results are the benchmark's anchor:
    # the most energy is the goal, not finished vehicles (ACN's own objective too).
    site["control"] = {**BENCH_CONTROL, "objective": {"unmet_per": "kwh"}}
    visits = []
    for cid in spec_1.ids + spec_2.ids:
        for connector in (1, 2):
            free_from = _at(0.0)
            while True:
                arrival = max(free_from, _at(rng.uniform(1.0, 20.0)))
                dwell = timedelta(hours=rng.uniform(2.0, 9.0))
                departure = min(arrival + dwell, _at(23.9))
                if departure - arrival < timedelta(hours=1):
                    break
                visits.append(
                    _visit(
                        rng,
                        cid,
                        connector,
                        arrival,
                        departure,
                        rng.choice([60, 75, 90]),
                        rng.choice([7.4, 11.0, 22.0]),
                        10,
                        50,
                    )
                )
                free_from = departure + timedelta(minutes=rng.uniform(10, 120))
    return site, visits, {"start": _at(0.0), "end": _at(24.0), "ambient_c": 20.0}


def large(rng: random.Random) -> tuple[dict[str, Any], list[Visit], dict[str, Any]]:
    """500 connectors: 250 two-connector 22 kW chargers on 25 feeders, an overnight fleet."""
    groups = []
    for f in range(25):
        ids = [f"lg-{f * 10 + k + 1:03d}" for k in range(10)]
        groups.append(
            (f"feeder-{f + 1:02d}", 250.0, ChargerSpec(ids, 2, {"phases": 3, "max_current_a": 32, "max_power_kw": 22}))
        )
    site = site_mapping("large-depot", 2500, groups, 60, 4000, tariff={"profile_per_kwh": PRICES})
    visits = []
    for _, _, spec in groups:
        for cid in spec.ids:
            for connector in (1, 2):
                visits.append(
                    _visit(
                        rng,
                        cid,
                        connector,
                        _at(15.5, rng, 1.5),
                        _at(28.5, rng, 0.8),
                        75,
                        rng.choice([11.0, 22.0]),
                        20,
                        55,
                    )
                )
    return site, visits, {"start": _at(13.0), "end": _at(31.0), "ambient_c": 15.0}


PROFILES: dict[str, Callable[[random.Random], tuple[dict[str, Any], list[Visit], dict[str, Any]]]] = {
    "workplace-day": workplace,
    "van-depot-overnight": van_depot,
    "two-shift-depot": two_shift,
    "bus-depot-hot-evening": bus_depot,
    "bus-depot-heatwave": bus_depot_heatwave,
    "congested-day": congested,
    "large-depot": large,
}


def scale_to_demand(
    visits: list[Visit], site: dict[str, Any], ratio: float, step_h: float, span: tuple[datetime, datetime]
) -> float:
    """Scale requests so that Σ requested ≈ ratio × what the site could deliver to the vehicles present
    (the EV headroom, capped by the sum of their maximum powers, each step). Returns the ratio reached."""
    start, end = span
    steps = int((end - start).total_seconds() / 3600 / step_h)
    headroom = site["site"]["grid"]["import_limit_kw"] - site["site"]["base_load"]["kw"]
    capacity = 0.0
    for k in range(steps):
        t = start + timedelta(hours=k * step_h)
        present = sum(v.max_kw for v in visits if v.arrival <= t < v.departure)
        capacity += min(headroom, present) * step_h
    wanted = ratio * capacity
    for _ in range(20):  # caps make one scaling fall short; a few rounds converge
        total = sum(v.energy_kwh for v in visits)
        if total >= wanted * 0.999:
            break
        factor = wanted / total
        for v in visits:
            dwell_h = (v.departure - v.arrival).total_seconds() / 3600
            v.energy_kwh = min(v.energy_kwh * factor, (0.95 - v.soc_arrival) * v.battery_kwh, v.max_kw * dwell_h * 0.9)
    return sum(v.energy_kwh for v in visits) / capacity


def generate(profile: str, seed: int, site_ref: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(site mapping, scenario mapping, a note) for ``profile``; the scenario refers to ``site_ref``."""
    rng = random.Random(f"{profile}:{seed}")
    site, visits, frame = PROFILES[profile](rng)
    note = ""
    if profile == "congested-day":
        reached = scale_to_demand(visits, site, 1.5, 5 / 60, (frame["start"], frame["end"]))
        note = f"demand = {reached:.2f} × the energy the site can deliver to the vehicles present"
    scenario = {
        "name": profile,
        "site": site_ref,
        "start": iso(frame["start"]),
        "end": iso(frame["end"]),
        "step_s": 300,
        "ambient_c": frame["ambient_c"],
        "sessions": [v.as_mapping() for v in sorted(visits, key=lambda v: v.arrival)],
    }
    return site, scenario, note


def _dump(data: dict[str, Any], header: str) -> str:
    return header + yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=140)


def write(profile: str, seed: int, scenario_dir: Path, site_dir: Path) -> Path:
    site_path = site_dir / f"{profile}.yaml"
    scenario_path = scenario_dir / f"{profile}.yaml"
    site, scenario, note = generate(
        profile,
        seed,
        str(Path("..") / site_dir.name / site_path.name)
        if scenario_dir.parent == site_dir.parent
        else str(site_path.resolve()),
    )
    header = f"# Generated by `python -m benchmarks.generate --profile {profile} --seed {seed}`.\n"
    site_dir.mkdir(parents=True, exist_ok=True)
    scenario_dir.mkdir(parents=True, exist_ok=True)
    site_path.write_text(_dump(site, header), encoding="utf-8")
    scenario_path.write_text(_dump(scenario, header + (f"# {note}\n" if note else "")), encoding="utf-8")
    return scenario_path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", choices=sorted(PROFILES), action="append")
    parser.add_argument("--all", action="store_true", help="every profile")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE / "scenarios", help="scenario directory")
    parser.add_argument("--sites", type=Path, default=HERE / "sites", help="site directory")
    args = parser.parse_args(argv)
    names = sorted(PROFILES) if args.all else (args.profile or [])
    if not names:
        parser.error("give --profile NAME or --all")
    if args.out.resolve() == args.sites.resolve():
        # a site and its scenario share the profile's file name: one directory would hold only the last written
        parser.error(f"--out and --sites are the same directory ({args.out}); give each its own")
    for name in names:
        print(write(name, args.seed, args.out, args.sites))


if __name__ == "__main__":
    main()
