"""Battery temperature through the live controller (emulated chargers over loopback websockets, 300× speed): a bus
found over its ceiling cools first, then charges again and stays under it, as in-process
(``test_bench_thermal.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.live.scenario_live import LiveOptions, run_live_async
from benchmarks.scenario import load_scenario

SPEED = 300.0  # 2 simulated hours in ~25 s of wall time

# One hot bus back from its route at 47 °C against a 42 °C ceiling, 22 °C outside: free cooling brings it under the
# LP's ceiling (41.5 °C) in about half an hour; 25 kWh then take under an hour at the power that holds 42 °C.
SCENARIO = """\
name: hot-bus-live
site: site.yaml
start: "2026-06-15T08:00:00Z"
end: "2026-06-15T10:00:00Z"
step_s: 300
ambient_c: [22, 22]
sessions:
  - {charger: dc-1, arrival: "2026-06-15T08:00:00Z", departure: "2026-06-15T10:00:00Z", energy_kwh: 25,
     max_kw: 50, battery_kwh: 80, soc_arrival: 0.2, battery_temp_c: 47,
     thermal: {max_temp_c: 42, heating_c_per_kwh: 0.3, cooling_per_h: 0.5}}
"""


async def test_live_bus_found_over_its_ceiling_cools_then_charges_again(site_dir: Path, tmp_path: Path) -> None:
    path = site_dir / "hot-bus-live.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    scenario = load_scenario(path)
    live = await run_live_async(scenario, LiveOptions(speed=SPEED, db_dir=tmp_path))
    assert live.tick_errors == []
    plugged = live.trace.plugged_h[0] > 0
    temps = live.trace.temp_end_c[0][plugged]
    power = live.trace.power_kw[0][plugged]
    # The first step holds the plug-in transient: the bus draws its charger's fail-safe default until the tick its
    # plug-in triggers has dispatched (the debounce plus a solve, ×300 and slower on a busy host), before its
    # temperature is even known. What is judged starts after it.
    # After it no charging while the bus is over its ceiling for a whole step ...
    over_whole_step = (temps[:-1] > 42.0) & (temps[1:] > 42.0)
    assert over_whole_step.any() and (power[1:][over_whole_step] < 0.5).all(), (power, temps)
    # ... then it charges again and does not go back over.
    charging = np.flatnonzero(power[1:] > 0.5) + 1
    assert charging.size > 0, "the plan never recovered: the bus was not charged again"
    assert (temps[charging[0]:] <= 42.0 + 0.1).all(), (power, temps)
    assert live.trace.delivered_kwh[0] >= 0.9 * scenario.sessions[0].energy_kwh
