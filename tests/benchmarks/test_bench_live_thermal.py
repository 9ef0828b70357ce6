"""Battery temperature through the live controller (emulated chargers over loopback websockets, 300× speed): a bus
found over its ceiling cools first, then charges again and stays under it, as in-process
(``test_bench_thermal.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.live.scenario_live import LiveOptions, run_live_async
from benchmarks.live.thermal_trace import WATCH_EVERY_S
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
    # Until its first command the bus draws its charger's fail-safe default (the debounce plus a solve, ×300 and
    # slower on a busy host), before its temperature is even known; the trace says when that command landed.
    # After it, no charging while the bus is over its ceiling ...
    watch = live.thermal
    assert watch is not None and watch.ticks
    commanded_s = watch.transients[0].first_command_s
    over = [s for s in watch.samples if s.at_s > commanded_s + WATCH_EVERY_S and s.temp_c > 42.0]
    assert over and all(s.drawn_kw < 0.5 for s in over), [(s.at_s, s.drawn_kw) for s in over]
    # ... then it charges again and does not go back over.
    settled = [s for s in watch.samples if s.at_s > commanded_s + WATCH_EVERY_S]
    charging = [k for k, s in enumerate(settled) if s.drawn_kw > 0.5]
    assert charging, "the plan never recovered: the bus was not charged again"
    assert all(s.temp_c <= 42.0 + 0.1 for s in settled[charging[0]:]), [(s.at_s, s.temp_c) for s in settled]
    # The step-wise trace the metrics read agrees: the last step is under the ceiling, with energy delivered.
    assert temps[-1] <= 42.0 + 0.1 and power.sum() > 0
    assert live.trace.delivered_kwh[0] >= 0.9 * scenario.sessions[0].energy_kwh
    # The thermal trace saw it all: the bus over its ceiling from its plug-in, its time on the fail-safe layers
    # before its first command, and every tick.
    assert [t.row for t in watch.transients] == [0] and watch.transients[0].temp_at_plug_c == pytest.approx(47.0, abs=0.01)
    # The first sample comes WATCH_EVERY_S after plug-in (later on a busy host), which may be after the first command:
    # the episode begins with the first sample, its peak 5 °C less what free cooling (0.5/h × 25 K = 0.21 K/min)
    # took off by then.
    first = watch.episodes()[0]
    first_sample_s = min(s.at_s for s in watch.samples if s.row == 0)
    cooled_c = 0.5 * (47.0 - 22.0) * first_sample_s / 3600.0
    assert first.start_s == first_sample_s
    assert 5.0 - cooled_c - 0.1 <= first.peak_excess_c <= 5.0 + 0.2, (first_sample_s, first.peak_excess_c)
    assert all(s.ceiling_c == 42.0 for s in watch.samples)
    assert any(s.layer.startswith("TxProfile") and s.commanded_kw == 0.0 for s in watch.samples)
