"""Fault detection in the benchmark: scenario ``faults:`` entries are checked at load, injected into the emulated
chargers of a live run, and scored against what monitoring announced (benchmarks/live/detection.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from benchmarks.live.compare_run import results_row
from benchmarks.live.detection import Announced, Injected, score
from benchmarks.live.scenario_live import LiveOptions, run_live_async
from benchmarks.scenario import load_scenario
from optimizer.errors import ConfigError

T0 = datetime(2026, 6, 15, 8, 0, tzinfo=UTC)
END = T0 + timedelta(hours=2)
SPEED = 300.0


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def debounce(kind: str) -> float:
    return 120.0 if kind == "offline" else 0.0


def test_each_fault_is_matched_to_its_first_fitting_alarm_and_the_rest_are_false_alarms() -> None:
    injected = [
        Injected("fault", "ac-1", 1, at(600), at(1500)),
        Injected("offline", "dc-1", 1, at(1200), at(1800)),
        Injected("meter_glitch", "ac-2", 1, at(900), at(900)),
        Injected("offline", "ac-2", 1, at(3000), at(3060)),  # shorter than the debounce: rightly quiet
        Injected("fault", "ac-2", 1, at(4000), None),  # never announced: missed
    ]
    announced = [
        Announced("offline", "dc-1", None, at(1330)),
        Announced("fault", "ac-1", 1, at(630)),
        Announced("meter_anomaly", "ac-2", 1, at(930)),
        Announced("fault", "ac-1", 2, at(700)),  # the other connector: not this fault
        Announced("offline", "ac-1", None, at(100)),  # before anything was injected
    ]
    result = score(injected, announced, END, debounce)
    assert (result.injected, result.found, result.missed, result.quiet_expected) == (5, 3, 1, 1)
    assert result.delays_s == (30.0, 30.0, 130.0)  # in order of the faults' start
    assert result.delay_s_median == 30.0 and result.delay_s_max == 130.0
    assert result.false_alarms == 2
    assert result.missed_faults == ("fault ac-2/1 at 2026-06-15T09:06:40+00:00",)


def test_a_late_alarm_counts_with_its_delay_an_early_one_is_false_and_a_quiet_blip_alarm_is_false() -> None:
    injected = [Injected("fault", "ac-1", 1, at(600), at(700))]
    late = score(injected, [Announced("fault", "ac-1", 1, at(2600))], END, debounce)
    assert (late.found, late.missed, late.false_alarms, late.delays_s) == (1, 0, 0, (2000.0,))
    early = score(injected, [Announced("fault", "ac-1", 1, at(599))], END, debounce)
    assert (early.found, early.missed, early.false_alarms) == (0, 1, 1)
    blip = [Injected("offline", "ac-2", 1, at(600), at(660))]
    noisy = score(blip, [Announced("offline", "ac-2", None, at(780))], END, debounce)
    assert (noisy.quiet_expected, noisy.found, noisy.false_alarms) == (1, 0, 1)
    assert score([], [], END, debounce).delay_s_median is None


FAULTY = """\
name: tiny-faults
site: site.yaml
start: "2026-06-15T08:00:00Z"
end: "2026-06-15T09:10:00Z"
step_s: 300
sessions:
  - {charger: ac-1, arrival: "2026-06-15T08:00:00Z", departure: "2026-06-15T09:05:00Z", energy_kwh: 7,
     max_kw: 11, battery_kwh: 60, soc_arrival: 0.3}
  - {charger: ac-2, arrival: "2026-06-15T08:05:00Z", departure: "2026-06-15T09:10:00Z", energy_kwh: 8,
     max_kw: 11, battery_kwh: 60, soc_arrival: 0.4}
faults:
  - "fault:ac-1:1@900+900,code=GroundFailure,vendor=GF-1"
  - "offline:dc-1@1200+900"
  - "meter_glitch:ac-2:1@1500,glitch=jump"
  - "offline:ac-2@2700+30"
"""


def test_bad_fault_entries_stop_the_scenario_at_load(site_dir: Path) -> None:
    path = site_dir / "bad.yaml"
    path.write_text(FAULTY.replace('"offline:dc-1@1200+900"', '"offline:nowhere@1200+900"')
                    .replace('"meter_glitch:ac-2:1@1500,glitch=jump"', '"meter_glitch:ac-2:3@1500"')
                    .replace('"offline:ac-2@2700+30"', '"melt:ac-2@10"\n  - "fault:ac-1@99999"'), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_scenario(path)
    found = {(p.key, p.reason.split(":")[0]) for p in caught.value.problems}
    keys = sorted(p.key for p in caught.value.problems)
    assert keys == ["faults[1]", "faults[2]", "faults[3]", "faults[4]"], found
    reasons = " | ".join(p.reason for p in caught.value.problems)
    assert "'nowhere' is not in site" in reasons and "connectors 1..1" in reasons
    assert "kind must be one of" in reasons and "past the scenario's end" in reasons


@pytest.mark.timeout(90)
async def test_live_run_finds_every_injected_fault_without_false_alarms(site_dir: Path, tmp_path: Path) -> None:
    path = site_dir / "faulty.yaml"
    path.write_text(FAULTY, encoding="utf-8")
    scenario = load_scenario(path)
    assert len(scenario.faults) == 4
    live = await run_live_async(scenario, LiveOptions(speed=SPEED, db_dir=tmp_path))
    detection = live.detection
    assert detection is not None
    summary = f"{detection}"
    assert detection.injected == 4 and detection.quiet_expected == 1, summary  # the 30 s blip stays quiet
    assert detection.found == 3 and detection.missed == 0 and detection.false_alarms == 0, summary
    tick_s = scenario.site.control.interval_s
    # a fault at once (within a tick and the monitor's evaluation), an offline charger after its 120 s debounce
    assert detection.delay_s_max is not None and detection.delay_s_max <= 120 + 2 * tick_s, summary
    row = results_row({"scenario": scenario.name, "live": {"energy_delivered_kwh": 1.0}, "live_wall_s": 1.0,
                       "detection": {"found": detection.found}, "live_tick_errors": []})
    assert row["mode"] == "live" and row["detection"] == {"found": 3} and row["strategy"] == "lp"
