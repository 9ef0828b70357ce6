"""The fleet benchmark's boot waves: read from a controller's raw figures (garbage leaves a part unknown, never
an exception), overlaps with full ticks, and the CPU of a real process sampled from /proc."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from typing import Any

import pytest

from benchmarks.live.boot_waves import BootWave, CpuSampler, boot_wave, ticks_in_boot_waves

FIGURES: dict[str, Any] = {
    # (end, ms) of each handled CALL: the first arrived at 100.0 - 0.005
    "raw_marks": [[100.0, 5.0], [101.0, 2.0], [150.0, 1.0]],
    "raw_windows": [["solve", 139.0, 139.5], ["dispatch", 120.0, 120.3], ["dispatch", 139.5, 141.0]],
    "full_tick": {"tick_ms": 2000.0, "dispatch_ms": 1500.0, "set_up_done": True},
}


def test_a_boot_wave_runs_from_the_first_message_to_the_set_up_before_the_delayed_full_tick() -> None:
    wave = boot_wave("depot-00", FIGURES, full_tick_delay_s=8.0)
    assert wave.start_s == pytest.approx(99.995)
    assert wave.full_tick == pytest.approx((139.0, 141.0))
    assert wave.end_s == pytest.approx(131.0)


def test_a_set_up_not_done_before_the_full_tick_leaves_the_end_unknown() -> None:
    figures = {**FIGURES, "full_tick": {**FIGURES["full_tick"], "set_up_done": False}}
    assert boot_wave("depot-00", figures, 0.0).end_s is None


@pytest.mark.parametrize("figures", [
    {}, {"raw_marks": "x", "raw_windows": 3, "full_tick": []},
    {"raw_marks": [[1, "a"], [None, 2], [1.0]], "raw_windows": [["dispatch", "a", 2.0], ["x"]],
     "full_tick": {"tick_ms": "slow", "dispatch_ms": True}},
    {**FIGURES, "raw_windows": [["dispatch", 1.0, 1.1]]},  # no window matches the full tick's dispatch
])
def test_malformed_figures_leave_parts_unknown(figures: dict[str, Any]) -> None:
    wave = boot_wave("depot-00", figures, 8.0)
    assert wave.full_tick is None and wave.end_s is None


def test_a_full_tick_overlapping_another_controllers_boot_wave_is_named() -> None:
    waves = [BootWave("depot-00", 0.0, 30.0, (40.0, 41.0)),
             BootWave("depot-01", 20.0, 50.0, (58.0, 60.0)),
             BootWave("depot-02", 40.5, None, (80.0, 90.0)),  # never set up: its wave lasts until its tick ends
             BootWave("depot-03", None, None, None)]
    assert ticks_in_boot_waves(waves) == {"depot-00": ["depot-01", "depot-02"], "depot-01": ["depot-02"],
                                          "depot-02": ["depot-02"]}


def test_the_sampler_follows_a_process_cpu_and_keeps_it_after_the_process_ended() -> None:
    marker = "boot-waves-test-burner"
    # Burns 0.3 s of CPU, however long a busy machine takes to give it that, then idles a moment and exits.
    burner = subprocess.Popen([sys.executable, "-c", "import sys, time\nwhile time.process_time() < 0.3: pass\ntime.sleep(0.5)",
                               marker])
    sampler = CpuSampler({"burner": marker, "nobody": "no-process-has-this-marker-7f3a"}, period_s=0.05)
    sampler.start()
    try:
        burner.wait(60)
        time.sleep(0.2)  # a few samples after the end
    finally:
        sampler.stop()
    points = sampler.samples["burner"]
    assert points, "the burner was never sampled"
    assert all(b[1] >= a[1] for a, b in itertools.pairwise(points))  # CPU used never decreases
    assert points[-1][1] >= 0.25  # its last figure is kept once it has gone
    assert sampler.samples["nobody"] == [] and sampler.cpu_between("nobody", 0.0, 1.0) is None
    start, end = points[0][0], points[-1][0]
    used = sampler.cpu_between("burner", start - 10.0, end)  # from its first sample when asked from before it
    assert used is not None and 0.0 <= used <= points[-1][1]
    assert sampler.cpu_at("burner", end + 10.0) is None
