from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimizer.circuits import compile_circuits
from optimizer.errors import ConfigError
from optimizer.site_loader import load_site, parse_site

SITE_CONFIGS = sorted(Path(__file__).resolve().parents[2].joinpath("site_configs").glob("*.yaml"))

GOOD = """\
site:
  name: t
  timezone: UTC
  grid:
    import_limit_kw: 50
  circuits:
    - id: main
      max_current_a: 63
      children:
        - id: feeder-a
          max_current_a: 32
          chargers: [cp-1]
        - id: feeder-b
          max_kw: 20
          chargers: [cp-2]
chargers:
  - id: cp-1
    phases: 3
    max_current_a: 16
    auth: {password_env: CP1_PASSWORD}
  - id: cp-2
    phases: 1
    phase_rotation: L2
    max_current_a: 32
fleet:
  vehicles:
    - id: van-1
      id_tags: ["04A1B2C3"]
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_site(text, "depot.yaml")
    return [str(p) for p in info.value.problems]


def test_good_file_loads_with_defaults() -> None:
    site = parse_site(GOOD, "depot.yaml")
    assert site.charger("cp-1").min_current_a == 6.0
    assert site.charger("cp-2").phase_rotation == ("L2",)
    assert compile_circuits(site).path("cp-1") == ("feeder-a", "main")
    assert site.vehicle_for_tag("04a1b2c3") is not None  # id tags compare case-insensitively


# (what to change, expected key path, expected words in the reason, expected line)
BAD_CASES = [
    ("  name: t\n", "  name: t\n  colour: blue\n", "site.colour", "unknown key", 3),
    ("    import_limit_kw: 50\n", "    import_limit_kw: fifty\n", "site.grid.import_limit_kw", "valid number", 5),
    ("    import_limit_kw: 50\n", "    import_limit_kw: -5\n", "site.grid.import_limit_kw", "greater than 0", 5),
    ("          chargers: [cp-2]\n", "          chargers: [cp-2, cp-1]\n", "site.circuits[0].children[1].chargers[1]",
     "in two circuits", 15),
    ("          chargers: [cp-2]\n", "          chargers: []\n", "chargers[1].id", "in no circuit", 21),
    ("          chargers: [cp-1]\n", "          chargers: [cp-9]\n", "site.circuits[0].children[0].chargers[0]",
     "not defined", 12),
    ("    max_current_a: 16\n", "    max_current_a: 16\n    min_current_a: 20\n", "chargers[0].min_current_a",
     "above max_current_a", 20),
    ("    auth: {password_env: CP1_PASSWORD}\n", "    auth: {password: hunter2}\n", "chargers[0].auth",
     "plain-text password", 20),
    ('      id_tags: ["04A1B2C3"]\n', '      id_tags: ["04 A1 B2"]\n', "fleet.vehicles[0].id_tags[0]",
     "should match pattern", 28),
    ("    phase_rotation: L2\n", "    phase_rotation: L2L3\n", "chargers[1].phase_rotation", "phases: 1", 23),
    ("    phase_rotation: L2\n", "    phase_rotation: L4\n", "chargers[1].phase_rotation", "not a phase rotation", 23),
    ("      max_kw: 20\n", "      foo: 20\n", "site.circuits[0].children[1].foo", "unknown key", 14),
    ("          max_kw: 20\n", "", "site.circuits[0].children[1]", "needs max_current_a and/or max_kw", 13),
    ("  timezone: UTC\n", "  timezone: Mars/Olympus\n", "site.timezone", "unknown time zone", 3),
]


@pytest.mark.parametrize(("old", "new", "key", "reason", "line"), BAD_CASES)
def test_bad_site_file_names_file_line_key_and_reason(old: str, new: str, key: str, reason: str, line: int) -> None:
    assert old in GOOD
    found = problems_of(GOOD.replace(old, new, 1))
    matching = [p for p in found if f": {key}: " in p and reason in p]
    assert matching, found
    assert matching[0].startswith(f"depot.yaml:{line}:"), matching


@pytest.mark.parametrize(("retention", "key", "reason"), [
    ("{raw_days: 0}", "storage.retention.raw_days", "greater than 0"),
    ("{raw_days: lots}", "storage.retention.raw_days", "valid number"),
    ("{aggregate_days: -1}", "storage.retention.aggregate_days", "greater than 0"),
    ("{keep_days: 3}", "storage.retention.keep_days", "unknown key"),
])
def test_bad_retention_names_its_key(retention: str, key: str, reason: str) -> None:
    assert "\nstorage:" not in GOOD
    found = problems_of(GOOD + f"storage:\n  url: sqlite:///x.db\n  retention: {retention}\n")
    assert any(f": {key}: " in p and reason in p for p in found), found


def test_circuit_cycle_through_parent_references_is_reported() -> None:
    text = GOOD.replace(
        "  circuits:\n", "  circuits:\n    - {id: loop-a, parent: loop-b, max_kw: 10}\n    - {id: loop-b, parent: loop-a, max_kw: 10}\n"
    )
    assert any("cycle" in p for p in problems_of(text))


def test_duplicate_key_and_syntax_error_are_reported_with_lines() -> None:
    dup = problems_of(GOOD.replace("  timezone: UTC\n", "  timezone: UTC\n  timezone: CET\n"))
    assert any("duplicate key" in p and p.startswith("depot.yaml:4:") for p in dup)
    syntax = problems_of(GOOD.replace("  name: t\n", "  name: [t\n"))
    assert any("YAML syntax" in p for p in syntax)


def test_every_problem_is_reported_at_once() -> None:
    text = GOOD.replace("  name: t\n", "  name: t\n  colour: blue\n").replace("    import_limit_kw: 50\n", "    import_limit_kw: x\n")
    assert len(problems_of(text)) == 2


def test_duplicate_keys_shape_and_relations_come_in_one_report() -> None:
    text = (GOOD.replace("  timezone: UTC\n", "  timezone: UTC\n  timezone: CET\n")  # duplicate key
            .replace("    phases: 3\n", "    phases: 3\n    colour: red\n")  # unknown key (shape)
            .replace("          chargers: [cp-1]\n", "          chargers: [cp-9]\n"))  # undefined charger (relation)
    found = problems_of(text)
    assert any("site.timezone: duplicate key" in p for p in found), found
    assert any("chargers[0].colour: unknown key" in p for p in found), found
    assert any("chargers[0]: charger 'cp-9' is not defined" in p for p in found), found


def test_a_value_of_the_wrong_shape_does_not_hide_the_relation_problems() -> None:
    text = GOOD.replace("    max_current_a: 16\n", "    max_current_a: lots\n", 1).replace(
        "          chargers: [cp-2]\n", "          chargers: [cp-2, cp-1]\n")
    found = problems_of(text)
    assert any("chargers[0].max_current_a: " in p and "valid number" in p for p in found), found
    assert any("in two circuits" in p for p in found), found


@pytest.mark.parametrize(("old", "new", "suggestion"), [
    ("  timezone: UTC\n", "  timezon: UTC\n", "timezone"),
    ("    max_current_a: 16\n", "    max_curent_a: 16\n", "max_current_a"),
    ("fleet:\n", "flet:\n", "fleet"),
    ("      id_tags: [\"04A1B2C3\"]\n", "      id_tag: [\"04A1B2C3\"]\n", "id_tags"),
])
def test_an_unknown_key_names_the_key_it_resembles(old: str, new: str, suggestion: str) -> None:
    assert old in GOOD
    assert any(f"unknown key (did you mean '{suggestion}'?)" in p for p in problems_of(GOOD.replace(old, new, 1)))


def test_an_unknown_key_like_nothing_gets_no_suggestion() -> None:
    found = problems_of(GOOD.replace("  name: t\n", "  name: t\n  zzzzzz: 1\n"))
    assert any(p.endswith("site.zzzzzz: unknown key") for p in found), found


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_site(tmp_path / "nope.yaml")


@pytest.mark.parametrize("path", SITE_CONFIGS, ids=lambda p: p.name)
def test_shipped_site_configs_load(path: Path) -> None:
    site = load_site(path)
    assert site.chargers and site.grid.import_limit_kw > 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_fuzzed_text_never_raises_anything_but_config_error(text: str) -> None:
    try:
        parse_site(text, "fuzz.yaml")
    except ConfigError as exc:
        assert all(p.file == "fuzz.yaml" for p in exc.problems)


_yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["site", "chargers", "fleet", "control", "ocpp", "storage"]), _yaml_values)
def test_mutated_sections_never_raise_anything_but_config_error(section: str, value: object) -> None:
    data = yaml.safe_load(GOOD)
    data[section] = value
    try:
        parse_site(yaml.safe_dump(data), "mutated.yaml")
    except ConfigError as exc:
        assert exc.problems


def test_ocpp_guard_limits_are_configurable_and_checked() -> None:
    text = GOOD + "ocpp:\n  limits: {rate_per_s: 5, max_frame_bytes: 65536}\n"
    site = parse_site(text, "depot.yaml")
    assert site.ocpp.limits.rate_per_s == 5 and site.ocpp.limits.max_frame_bytes == 65536
    assert site.ocpp.limits.burst == 100  # untouched keys keep their defaults
    bad = problems_of(GOOD + "ocpp:\n  limits: {rate_per_s: -1}\n")
    assert any("ocpp.limits.rate_per_s" in p and "greater than 0" in p for p in bad)


def test_the_objective_charges_unmet_energy_per_session_unless_told_per_kwh() -> None:
    assert parse_site(GOOD, "depot.yaml").control.objective.unmet_per == "session"
    per_kwh = parse_site(GOOD + "control:\n  objective: {unmet_per: kwh}\n", "depot.yaml")
    assert per_kwh.control.objective.unmet_per == "kwh"
    found = problems_of(GOOD + "control:\n  objective: {unmet_per: joule}\n")
    assert any(": control.objective.unmet_per: " in p and "'session' or 'kwh'" in p for p in found), found
