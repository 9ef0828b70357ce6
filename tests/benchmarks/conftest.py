"""A tiny depot shared by the benchmark tests: two 3-phase 16 A chargers (11 kW) and one 50 kW DC
charger under a 30 kW grid, so that limits bind with a handful of vehicles."""

from __future__ import annotations

from pathlib import Path

import pytest

SITE_YAML = """\
site:
  name: tiny
  timezone: UTC
  grid: {import_limit_kw: 30}
  base_load: {kw: 2}
  circuits:
    - id: main
      max_current_a: 40
      chargers: [ac-1, ac-2, dc-1]
chargers:
  - {id: ac-1, phases: 3, max_current_a: 16}
  - {id: ac-2, phases: 3, max_current_a: 16}
  - {id: dc-1, dc: true, max_power_kw: 50}
fleet:
  defaults: {battery_kwh: 60, target_soc: 0.9, max_power_kw: 11, knee_soc: 0.8}
control: {interval_s: 300, step_min: 5, horizon_h: 12}
"""

SCENARIO_YAML = """\
name: tiny-day
site: site.yaml
start: "2026-06-15T08:00:00Z"
end: "2026-06-15T12:00:00Z"
step_s: 300
ambient_c: [20, 22, 25, 25]
sessions:
  - {charger: ac-1, arrival: "2026-06-15T08:00:00Z", departure: "2026-06-15T11:00:00Z", energy_kwh: 12,
     max_kw: 11, battery_kwh: 60, soc_arrival: 0.3}
  - {charger: ac-2, arrival: "2026-06-15T08:10:00Z", departure: "2026-06-15T11:30:00Z", energy_kwh: 15,
     max_kw: 11, battery_kwh: 60, soc_arrival: 0.4, reports_soc: true}
  - {charger: dc-1, arrival: "2026-06-15T08:30:00Z", departure: "2026-06-15T10:00:00Z", energy_kwh: 20,
     max_kw: 50, battery_kwh: 80, soc_arrival: 0.2, battery_temp_c: 38,
     thermal: {max_temp_c: 42, heating_c_per_kwh: 0.3, cooling_per_h: 0.5}}
"""


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    """A directory holding the tiny site as site.yaml."""
    (tmp_path / "site.yaml").write_text(SITE_YAML, encoding="utf-8")
    return tmp_path


@pytest.fixture
def tiny_scenario_path(site_dir: Path) -> Path:
    tmp_path = site_dir
    path = tmp_path / "tiny.yaml"
    path.write_text(SCENARIO_YAML, encoding="utf-8")
    return path
