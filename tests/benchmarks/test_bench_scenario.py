"""The scenario loader: resolved values, and every error names file, line, key path and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.scenario import load_scenario, parse_scenario
from optimizer.errors import ConfigError, ConfigProblem


def problems_of(text: str, tmp_path: Path) -> list[ConfigProblem]:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_scenario(path)
    return caught.value.problems


HEAD = """\
name: t
site: site.yaml
start: "2026-06-15T08:00:00Z"
end: "2026-06-15T12:00:00Z"
sessions:
"""
GOOD_SESSION = (
    '  - {charger: ac-1, arrival: "2026-06-15T08:00:00Z", departure: "2026-06-15T10:00:00Z", '
    "energy_kwh: 10, max_kw: 11}\n"
)


def test_tiny_scenario_resolves_defaults(tiny_scenario_path: Path) -> None:
    scenario = load_scenario(tiny_scenario_path)
    first, second, dc = scenario.sessions
    assert scenario.steps == 48 and scenario.step_s == 300
    assert first.connector_id == 1 and not first.reports_soc  # AC default: no SoC
    assert dc.reports_soc  # DC default: ISO 15118 SoC
    assert first.target_soc == pytest.approx(0.3 + 12 / 60)
    assert second.reports_soc
    assert dc.thermal.max_temp_c == 42 and dc.battery_temp_c == 38
    assert first.battery_temp_c == 20  # ambient at arrival
    assert scenario.ambient_at(scenario.start.replace(hour=10, minute=30)) == 25


@pytest.mark.parametrize(
    ("session", "key", "reason"),
    [
        ("energy_kwh: 10, max_kw: 11, colour: red", "sessions[0].colour", "unknown key"),
        ("max_kw: 11", "sessions[0].energy_kwh", "required key is missing"),
        ("energy_kwh: -1, max_kw: 11", "sessions[0].energy_kwh", "greater than or equal to 0"),
        ("energy_kwh: 10, max_kw: 11, connector: 3", "sessions[0].connector", "connectors 1..1"),
        ("energy_kwh: 80, max_kw: 11", "sessions[0].energy_kwh", "does not fit a 60 kWh battery"),
        (
            "energy_kwh: 30, max_kw: 11, soc_arrival: 0.5, target_soc: 0.6",
            "sessions[0].energy_kwh",
            "more than (target_soc − soc_arrival) × battery_kwh",
        ),
    ],
)
def test_session_errors_name_file_line_key_and_reason(site_dir: Path, session: str, key: str, reason: str) -> None:
    text = (
        HEAD
        + '  - {charger: ac-1, arrival: "2026-06-15T08:00:00Z", departure: "2026-06-15T10:00:00Z", '
        + f"{session}}}\n"
    )
    problems = problems_of(text, site_dir)
    assert [p.key for p in problems] == [key]
    assert reason in problems[0].reason
    assert problems[0].file.endswith("bad.yaml")
    assert problems[0].line == 6


def test_unknown_charger_and_overlap_are_both_reported(site_dir: Path) -> None:
    text = (
        HEAD
        + GOOD_SESSION
        + '  - {charger: ac-9, arrival: "2026-06-15T08:00:00Z", '
        + 'departure: "2026-06-15T09:00:00Z", '
        "energy_kwh: 1, max_kw: 11}\n"
        + '  - {charger: ac-1, arrival: "2026-06-15T09:00:00Z", departure: "2026-06-15T11:00:00Z", '
        "energy_kwh: 1, max_kw: 11}\n"
    )
    problems = problems_of(text, site_dir)
    by_key = {p.key: p for p in problems}
    assert "not in site 'tiny'" in by_key["sessions[1].charger"].reason
    assert by_key["sessions[1].charger"].line == 7
    assert "still taken by session 0" in by_key["sessions[2].arrival"].reason
    assert by_key["sessions[2].arrival"].line == 8


def test_departure_before_arrival_and_outside_the_day(site_dir: Path) -> None:
    text = (
        HEAD + '  - {charger: ac-1, arrival: "2026-06-15T10:00:00Z", departure: "2026-06-15T09:00:00Z", '
        "energy_kwh: 1, max_kw: 11}\n"
    )
    problems = problems_of(text, site_dir)
    assert problems[0].key == "sessions[0]" and "departure must be after arrival" in problems[0].reason
    late = HEAD + GOOD_SESSION.replace("2026-06-15T10:00:00Z", "2026-06-15T13:00:00Z")
    problems = problems_of(late, site_dir)
    assert problems[0].key == "sessions[0].departure" and "after the scenario's end" in problems[0].reason


def test_top_level_errors(site_dir: Path) -> None:
    problems = problems_of(HEAD.replace("site: site.yaml", "site: nowhere.yaml") + GOOD_SESSION, site_dir)
    assert problems[0].key == "site" and "not found" in problems[0].reason and problems[0].line == 2
    early_end = HEAD.replace('end: "2026-06-15T12:00:00Z"', 'end: "2026-06-15T07:00:00Z"') + GOOD_SESSION
    problems = problems_of(early_end, site_dir)
    assert problems[0].key == "" and "end must be after start" in problems[0].reason
    problems = problems_of(HEAD.replace("2026-06-15T08:00:00Z", "2026-06-15T08:00:00") + GOOD_SESSION, site_dir)
    assert problems[0].key == "start" and problems[0].line == 3 and "timezone" in problems[0].reason
    problems = problems_of("name: t\nname: u\n", site_dir)
    assert problems[0].key == "name" and problems[0].reason == "duplicate key"


def test_inline_site_errors_carry_the_site_prefix_and_line() -> None:
    text = (
        "name: t\nsite:\n  site:\n    name: x\n    grid: {import_limit_kw: -5}\n"
        "  chargers: [{id: a, max_current_a: 16}]\n"
        'start: "2026-06-15T08:00:00Z"\nend: "2026-06-15T12:00:00Z"\n'
    )
    with pytest.raises(ConfigError) as caught:
        parse_scenario(text, "inline.yaml")
    problem = caught.value.problems[0]
    assert problem.key == "site.site.grid.import_limit_kw"
    assert problem.line == 5 and problem.file == "inline.yaml"


def test_inline_site_and_prices_are_used() -> None:
    text = (
        "name: t\nsite:\n"
        "  site: {name: x, grid: {import_limit_kw: 20}, circuits: [{id: m, max_kw: 20, chargers: [a]}]}\n"
        "  chargers: [{id: a, max_current_a: 16}]\n"
        'start: "2026-06-15T08:00:00Z"\nend: "2026-06-15T09:00:00Z"\n'
        "prices: {per_kwh: 0.2, demand_charge_per_kw: 5}\n"
    )
    scenario = parse_scenario(text, "inline.yaml")
    assert scenario.site.grid.import_limit_kw == 20
    assert scenario.priced and scenario.site.tariff.price_per_kwh == (0.2,)
    assert scenario.site.tariff.demand_charge_per_kw == 5


def test_shipped_scenarios_load() -> None:
    shipped = sorted((Path(__file__).parents[2] / "benchmarks" / "scenarios").glob("*.yaml"))
    assert len(shipped) >= 6
    sizes = {load_scenario(p).name: len(load_scenario(p).site.chargers) for p in shipped}
    assert {
        "workplace-day",
        "van-depot-overnight",
        "two-shift-depot",
        "bus-depot-hot-evening",
        "congested-day",
        "large-depot",
    } <= set(sizes)
    large = load_scenario(next(p for p in shipped if p.stem == "large-depot"))
    assert sum(c.connectors for c in large.site.chargers) >= 500
