"""The live thermal trace: over-ceiling episodes and the verdict on whether the host kept up with the speed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.live.thermal_trace import (
    WATCH_EVERY_S,
    PlugInTransient,
    ThermalSample,
    ThermalWatch,
    TickTiming,
    over_ceiling_episodes,
    summary,
)

INTERVAL_S = 300.0
TTL_S = 900.0


def _sample(at_s: float, temp_c: float, row: int = 0, drawn_kw: float = 50.0) -> ThermalSample:
    return ThermalSample(at_s, row, f"bus-{row}", temp_c, 45.0, drawn_kw, 72.0, "TxDefaultProfile@0 / StationMax@1",
                         None, None)


def _on_time(ticks: int) -> list[TickTiming]:
    return [TickTiming(k * INTERVAL_S, k * INTERVAL_S + 20.0, True) for k in range(ticks)]


def test_episodes_are_runs_over_the_ceiling_per_vehicle() -> None:
    temps = [44.8, 45.2, 45.4, 45.1, 44.9, 45.3, 44.0]
    samples = [_sample(30.0 * k, t) for k, t in enumerate(temps)] + [_sample(0.0, 46.0, row=1)]
    episodes = over_ceiling_episodes(samples, WATCH_EVERY_S)
    assert [(e.row, e.start_s, e.end_s) for e in episodes] == [(0, 30.0, 90.0), (0, 150.0, 150.0), (1, 0.0, 0.0)]
    first = episodes[0]
    assert first.peak_excess_c == pytest.approx(0.4)
    assert first.c_min == pytest.approx((0.2 + 0.4 + 0.1) * 0.5)  # 30 s samples: half a minute each
    assert first.first.temp_c == 45.2 and first.first.layer.startswith("TxDefaultProfile")


def test_nothing_over_no_episode() -> None:
    assert over_ceiling_episodes([_sample(0.0, 45.0), _sample(30.0, 44.0)], WATCH_EVERY_S) == []


def test_ticks_on_time_kept_up() -> None:
    watch = ThermalWatch(INTERVAL_S, TTL_S, ticks=_on_time(12), wake_lags_s=[0.5] * 100)
    pace = watch.pace()
    assert pace.kept_up and pace.reasons == ()
    assert pace.worst_tick_gap_s == INTERVAL_S and pace.worst_tick_s == 20.0
    assert pace.worst_command_stood_s == INTERVAL_S + 20.0


def test_a_missed_tick_is_no_verdict() -> None:
    ticks = [t for t in _on_time(12) if t.observed_s != 5 * INTERVAL_S]
    pace = ThermalWatch(INTERVAL_S, TTL_S, ticks=ticks).pace()
    assert not pace.kept_up and "apart" in pace.reasons[0]


def test_a_command_past_its_time_to_live_is_no_verdict() -> None:
    # Ticks observe on time but every second one fails to dispatch and the solves are slow: commands stand long.
    ticks = [TickTiming(k * INTERVAL_S, k * INTERVAL_S + 280.0, k % 3 == 0) for k in range(12)]
    pace = ThermalWatch(INTERVAL_S, TTL_S, ticks=ticks).pace()
    assert not pace.kept_up and any("time to live" in r for r in pace.reasons)


def test_a_harness_waking_late_is_no_verdict() -> None:
    lags = [1.0] * 90 + [120.0] * 10
    pace = ThermalWatch(INTERVAL_S, TTL_S, ticks=_on_time(12), wake_lags_s=lags).pace()
    assert not pace.kept_up and "late" in pace.reasons[0] and pace.wake_lag_max_s == 120.0


def test_summary_and_file(tmp_path: Path) -> None:
    watch = ThermalWatch(INTERVAL_S, TTL_S, samples=[_sample(0.0, 45.5), _sample(30.0, 44.0)], ticks=_on_time(3),
                         transients=[PlugInTransient(0, "bus-0", 0.0, 90.0, 1.8, 44.6, 45.1, 45.0)])
    lines = summary(watch, 60.0)
    assert lines[0].startswith("pace at 60x: kept up")
    assert "plug-in transients: 1" in lines[1] and "44.60 -> 45.10" in lines[1]
    assert "1 episodes, 0.25 °C·min" in lines[2] and "TxDefaultProfile@0" in lines[3]
    path = tmp_path / "trace" / "t.jsonl"
    watch.write(path)
    kinds = [json.loads(line)["kind"] for line in path.read_text(encoding="utf-8").splitlines()]
    assert kinds == ["sample", "sample", "tick", "tick", "tick", "plug_in"]


def test_chargers_messages_queued_past_an_interval_are_no_verdict() -> None:
    # Ticks and the harness on time, but plug-ins and unplugs queued behind the chargers' readings for 20 minutes.
    lags = [5.0] * 50 + [1200.0]
    pace = ThermalWatch(INTERVAL_S, TTL_S, ticks=_on_time(12), message_lags_s=lags, readings_shed=7).pace()
    assert not pace.kept_up and any("messages waited up to 1200" in r for r in pace.reasons)
    assert pace.message_lag_max_s == 1200.0 and pace.readings_shed == 7
    within = ThermalWatch(INTERVAL_S, TTL_S, ticks=_on_time(12), message_lags_s=[INTERVAL_S]).pace()
    assert within.kept_up
