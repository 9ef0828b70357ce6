"""The load benchmark's report shows the full tick's check and where its garbage collection went, per repeat; the
comparison switch of the collector pause reaches the controller role."""

from __future__ import annotations

import pytest

from benchmarks.live.load_bench import parse_args
from benchmarks.live.load_report import full_tick_lines, print_report


def repeat(tick_ms: float, check_ms: float | None, gc_in: float, gc_after: float | None) -> dict[str, object]:
    return {"tick_ms": tick_ms, "check_ms": check_ms, "dispatch_ms": tick_ms / 2, "dispatch_gc_ms": gc_in,
            "gc_after_ms": gc_after, "tx_accepted": 10, "station_accepted": 10, "failed": 0,
            "dispatch_cpu_ms": 12.0, "dispatch_loop_cpu_ms": 10.0, "dispatch_emulator_cpu_ms": None}


def test_each_full_tick_is_listed_with_its_check_and_collections() -> None:
    lines = full_tick_lines([repeat(1900.0, 31.5, 0.0, 120.0), repeat(1700.0, None, 2.5, None)])
    assert lines[0].startswith("  full ticks (2), each       tick 1900.0 ms, 1700.0 ms; calls accepted 10 + 10, "
                               "10 + 10; check 31.5 ms, n/a;")
    assert "GC in / after the dispatch 0.0 / 120.0 ms, 2.5 / n/a" in lines[0]
    assert "median" in lines[1]
    assert full_tick_lines([repeat(1900.0, 31.5, 0.0, 120.0)]) == []  # one tick: nothing to take a median of


def test_the_report_prints_with_and_without_a_full_tick(capsys: pytest.CaptureFixture[str]) -> None:
    base: dict[str, object] = {
        "chargers": 2, "emulator_processes": 1, "meter_interval_s": 10, "duration_s": 5.0, "cpus": 2, "booted": 2,
        "messages_answered": 4, "messages_handled": 4, "messages_given_up": 0, "messages_queued_at_end": 0,
        "messages_lost": 0, "handling_ms_p50": 0.5, "handling_ms_p99": 1.0, "handling_ms_max": 2.0,
        "steady_handling_ms_p50": None, "steady_handling_ms_p99": None, "steady_handled": 0,
        "round_trip_ms_p50": 1.0, "round_trip_ms_p99": 2.0, "controller_rss_mb": 100.0,
        "controller_rss_peak_mb": 100.0, "ticks": [], "full_tick": None}
    print_report(base)
    assert "full tick                  n/a for None sessions" in capsys.readouterr().out
    full = {**repeat(1900.0, 31.5, 0.0, 120.0), "repeats": [repeat(1900.0, 31.5, 0.0, 120.0)]}
    print_report({**base, "full_tick": full})
    out = capsys.readouterr().out
    assert "check 31.5 ms, dispatch 950.0 ms" in out and "in the second after the tick 120.0 ms" in out


def test_the_collector_pause_is_on_unless_switched_off() -> None:
    assert parse_args([]).no_collector_pause is False
    assert parse_args(["--no-collector-pause"]).no_collector_pause is True
    with pytest.raises(SystemExit):
        parse_args(["--no-collector-pause=yes"])
