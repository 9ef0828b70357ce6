"""The full tick's anatomy in the load benchmark: profile calls timed and counted per quarter of the dispatch, CPU
read per thread and per process from /proc (garbage there is "not known", never a crash), the report's lines."""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks.live.cpu_census import CpuCensus, cpu_use, machine_busy_s, stat_cpu_s
from benchmarks.live.load_probes import LoopLag
from benchmarks.live.tick_anatomy import (
    CallSpan,
    TickAnatomy,
    TimedLinks,
    anatomy_lines,
    arrival_figures,
    call_figures,
)
from csms_adapter.control.dispatch import Dispatcher

linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")


def test_calls_are_counted_unanswered_and_unsent_at_each_quarter_of_the_window() -> None:
    spans = [CallSpan(0.0, 0.1, True), CallSpan(0.0, 0.6, True), CallSpan(0.3, 0.9, False),
             CallSpan(0.8, 0.95, True), CallSpan(2.0, 2.1, True)]  # the last belongs to another window
    figures = call_figures(spans, 0.0, 1.0)
    assert figures["calls"] == 4 and figures["failed"] == 1
    assert figures["unanswered_at_quarters"] == [1, 2, 1]  # at 0.25, 0.5, 0.75
    assert figures["not_yet_sent_at_quarters"] == [2, 1, 1]
    assert figures["rtt_ms_max"] == 600.0 and figures["last_sent_ms"] == 800.0
    assert call_figures([], 0.0, 1.0)["rtt_ms_p50"] is None


def test_charger_calls_per_second_show_a_burst_against_an_even_flow() -> None:
    even = [(100.0 + k * 0.1, 1.0) for k in range(100)]  # 10 per second for 10 s
    burst = [(100.0 + 3.0 + k * 0.001, 1.0) for k in range(100)]  # the same 100 within one second
    assert arrival_figures(even, 100.0, 110.0) == {"seconds": 10, "median": 10.0, "max": 10}
    assert arrival_figures(burst, 100.0, 110.0) == {"seconds": 10, "median": 0.0, "max": 100}
    assert arrival_figures([(99.9, 1.0), (110.0, 1.0)], 100.0, 110.0)["max"] == 0  # the window is half-open
    assert arrival_figures([], 5.0, 5.0) == {"seconds": 1, "median": 0.0, "max": 0}


class FakeLink:
    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.connected = True

    async def set_tx_limit(self, *args: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0.02)
        if self.fail:
            raise RuntimeError("refused")

    async def set_live_station_max(self, *args: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0.0)


async def test_a_timed_link_notes_every_call_and_passes_failures_on() -> None:
    spans: list[CallSpan] = []
    raw = {"ok": FakeLink(False), "bad": FakeLink(True)}
    links = TimedLinks(raw, spans)
    assert sorted(links) == ["bad", "ok"] and len(links) == 2 and links.get("none") is None
    assert links["ok"].connected is True  # everything but the two profile calls is the link itself
    await links["ok"].set_tx_limit(1, 16.0)
    await links["ok"].set_live_station_max(32.0)
    with pytest.raises(RuntimeError, match="refused"):
        await links["bad"].set_tx_limit(1, 16.0)
    raw["late"] = FakeLink(False)  # a charger that connects later is seen: the mapping is read through
    assert "late" in links
    assert [s.ok for s in spans] == [True, True, False]
    assert all(s.end >= s.start for s in spans) and spans[0].end - spans[0].start >= 0.015


class FakeDispatcher:
    """The three attributes the anatomy wraps, with the real dispatcher's calling convention."""

    def __init__(self) -> None:
        self.links: Any = {"cp-1": FakeLink(False), "cp-2": FakeLink(False)}

    async def _send(self, calls: list[str], now: object, *, lowering: bool, hold: bool) -> list[str]:
        for charger_id in calls if lowering else reversed(calls):
            await self.links[charger_id].set_tx_limit(1, 16.0)
        return calls

    async def dispatch(self, plan: list[str], now: object) -> int:
        await self._send(plan, now, lowering=True, hold=False)
        await self._send(plan, now, lowering=False, hold=False)
        return 2


class FakeController:
    def __init__(self) -> None:
        self.dispatcher = FakeDispatcher()
        self.handling = type("Handling", (), {"handled": 0})()
        self.recorder = None  # no store: its backlog reads as 0


def test_the_anatomy_wraps_what_the_real_dispatcher_has() -> None:
    send = inspect.signature(Dispatcher._send).parameters
    assert list(send)[:3] == ["self", "calls", "now"] and {"lowering", "hold"} <= send.keys()
    assert send["lowering"].kind is inspect.Parameter.KEYWORD_ONLY
    assert inspect.iscoroutinefunction(Dispatcher.dispatch)


@linux_only
async def test_each_marked_tick_gets_its_calls_phases_and_cpu() -> None:
    controller = FakeController()
    lag = LoopLag()
    anatomy = TickAnatomy(controller, CpuCensus("no-such-emulator"), lag)
    anatomy.start()
    try:
        await asyncio.sleep(0.05)
        anatomy.tick_started()
        controller.handling.handled += 3
        assert await controller.dispatcher.dispatch(["cp-1", "cp-2"], None) == 2
        anatomy.tick_ended()
    finally:
        await anatomy.stop()
    [tick] = anatomy.figures()
    assert tick["calls"]["calls"] == 4 and tick["calls"]["failed"] == 0
    assert tick["lowering"]["calls"] == 2 and tick["raising"]["calls"] == 2
    assert tick["dispatch_ms"] >= tick["lowering"]["ms"] + tick["raising"]["ms"] - 1.0
    assert tick["charger_calls_handled"] == 3 and tick["store_backlog"] == [0, 0]
    assert tick["cpu_dispatch"]["emulators"] == 0 and tick["cpu_tick"]["controller_s"] is not None
    lines = anatomy_lines([tick])
    assert len(lines) == 3 and "4 calls (0 failed)" in lines[0] and "lowering 2 calls" in lines[0]


def _burn(go: threading.Event, done: threading.Event, release: threading.Event) -> None:
    go.wait(30)
    start = time.thread_time()
    while time.thread_time() - start < 0.3:
        pass
    done.set()
    release.wait(30)  # alive (and named) until the census has read it


BURNER = """import sys, time
sys.stdin.readline()
start = time.process_time()
while time.process_time() - start < 0.3:
    pass
print("done", flush=True)
sys.stdin.readline()
"""


@linux_only
@pytest.mark.timeout(60)
def test_the_census_sees_a_busy_thread_an_emulator_and_a_child_process() -> None:
    census = CpuCensus("tick-anatomy-emulator-marker")
    emulator = subprocess.Popen([sys.executable, "-c", BURNER, "tick-anatomy-emulator-marker"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    child = subprocess.Popen([sys.executable, "-c", BURNER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    go, done, release = threading.Event(), threading.Event(), threading.Event()
    burner = threading.Thread(target=_burn, args=(go, done, release), name="burner")
    burner.start()
    try:
        before = census.sample(scan=True)
        go.set()
        for proc in (emulator, child):
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for proc in (emulator, child):
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "done"
        assert done.wait(30)
        after = census.sample()
    finally:
        release.set()
        burner.join()
        for proc in (emulator, child):
            proc.kill()
            proc.communicate()  # reaped, its pipes closed
    use = cpu_use(before, after)
    # CPU time, not wall time: a loaded machine makes the burn take longer, not count less (10 ms ticks).
    assert use.emulators_seen == 1 and use.emulators_s >= 0.25
    assert use.children_s >= 0.25
    assert use.process_s is not None and use.process_s >= 0.25
    assert use.machine_s is not None and use.machine_s >= use.emulators_s + use.children_s
    assert use.threads_s["burner"] >= 0.25
    assert use.loop_s is not None  # the census was made on this thread: it is the "loop"


def test_garbage_in_proc_is_not_known_rather_than_an_error(tmp_path: Path) -> None:
    (tmp_path / "self" / "task").mkdir(parents=True)
    (tmp_path / "self" / "stat").write_text("1 (python) R 0 not numbers at all")
    (tmp_path / "stat").write_text("cpu  12 x 3\nintr 5\n")
    for pid, stat in (("4242", "4242 (emu) S"), ("4343", "\x00\xff garbage")):
        (tmp_path / pid).mkdir()
        (tmp_path / pid / "cmdline").write_bytes(b"python\x00-m\x00marker\x00")
        (tmp_path / pid / "stat").write_text(stat)
    (tmp_path / "99").mkdir()  # no files at all: a process that ended while it was read
    census = CpuCensus("marker", proc=tmp_path)
    sample = census.sample(scan=True)
    assert sample.process_s is None and sample.machine_busy_s is None
    assert sample.emulators_s == {} and sample.children_s == {} and sample.threads_s == {}
    assert CpuCensus("marker", proc=tmp_path / "missing").sample(scan=True).process_s is None
    use = cpu_use(sample, sample)
    assert use.process_s is None and use.others_s is None and use.emulators_s == 0.0


@pytest.mark.parametrize(("text", "expected"), [
    ("17 (a) b) (c) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0", (3.0, 1)),  # a command name with brackets and spaces
    ("17 (python) S 1 2 3", None),  # cut short
    ("17 (python) S x 2 3 4 5 6 7 8 9 10 11 12 13", None),
    ("no brackets at all", None),
    ("", None),
])
def test_a_stat_line_is_read_or_refused(text: str, expected: tuple[float, int] | None) -> None:
    assert stat_cpu_s(text, 100.0) == expected


def test_the_machine_line_is_read_or_refused() -> None:
    assert machine_busy_s("cpu  100 0 50 1000 7 0 0 0 0 0\ncpu0 1 2 3\n", 100.0) == 1.5
    assert machine_busy_s("cpu  100 0 50\n", 100.0) is None
    assert machine_busy_s("cpu  a b c d e f g h\n", 100.0) is None
    assert machine_busy_s("", 100.0) is None


def test_the_report_lines_survive_missing_pieces() -> None:
    lines = anatomy_lines([{}, {"tick_ms": 1200.0, "cpu_dispatch": {"wall_s": 0.0}}])
    assert len(lines) == 6 and all("n/a" in line for line in lines)
    assert anatomy_lines([]) == []
