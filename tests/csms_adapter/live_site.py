"""A small test site for the live-controller tests: one 1.6 and one 2.0.1 charger, a shared feeder."""

from __future__ import annotations

import hashlib

from optimizer.domain import Site
from optimizer.site_loader import parse_site

PASSWORD_A = "correct-horse-battery"
PASSWORD_B = "another-long-password"
ENV = {"TEST_CPB_PASSWORD": PASSWORD_B}

SITE_YAML = f"""
site:
  name: test-depot
  timezone: UTC
  voltage_v: 230
  grid: {{import_limit_kw: 30}}
  base_load: {{kw: 5}}
  circuits:
    - id: main
      max_current_a: 40
      chargers: [cp-a, cp-b]
chargers:
  - id: cp-a
    connectors: 2
    phases: 3
    max_current_a: 16
    auth: {{password_sha256: {hashlib.sha256(PASSWORD_A.encode()).hexdigest()}}}
  - id: cp-b
    phases: 3
    max_current_a: 32
    max_power_kw: 22
    auth: {{password_env: TEST_CPB_PASSWORD}}
fleet:
  defaults: {{battery_kwh: 60, target_soc: 0.8, dwell_h: 8, max_power_kw: 11}}
  vehicles:
    - {{id: van-1, id_tags: ["TAG1"], battery_kwh: 75, target_soc: 0.9, max_power_kw: 11}}
control:
  interval_s: 60
  step_min: 15
  horizon_h: 12
  strategy: lp
ocpp:
  listen: "127.0.0.1:0"
  meter_interval_s: 10
  call_timeout_s: 2
"""


def make_site(extra_ocpp: str = "") -> Site:
    text = SITE_YAML + extra_ocpp
    return parse_site(text, "test-site.yaml")

# Two 22 kW chargers behind 25 kW of EV room: one vehicle alone is planned at 22 kW, above its 12.5 kW fail-safe share.
TWO_BIG_CHARGERS_YAML = """
site:
  name: two-big-chargers
  timezone: UTC
  voltage_v: 230
  grid: {import_limit_kw: 30}
  base_load: {kw: 5}
  circuits:
    - {id: main, max_current_a: 40, chargers: [cp-a, cp-b]}
chargers:
  - {id: cp-a, phases: 3, max_current_a: 32, max_power_kw: 22}
  - {id: cp-b, phases: 3, max_current_a: 32, max_power_kw: 22}
fleet:
  defaults: {battery_kwh: 200, target_soc: 1.0, dwell_h: 2, max_power_kw: 22}
control: {interval_s: 60, step_min: 15, horizon_h: 4, strategy: lp}
ocpp: {listen: "127.0.0.1:0", meter_interval_s: 10, call_timeout_s: 2}
"""
