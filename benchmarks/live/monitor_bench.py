"""Cost of condition monitoring per message at depot scale, without the network (docs/monitoring.md).

    python -m benchmarks.live.monitor_bench --chargers 1000 --repeats 5

Prints the median over ``repeats`` of: the Monitor's work per StatusNotification and per meter sample (the part
added to every message the controller handles), one ``evaluate`` pass over every charger (once a second), one
availability computation over every charger and connector for 24 h, and one batched SQLite write of a
thousand history events (on the store's thread, never on the event loop). Figures depend on the machine and on
what else runs on it: compare them with each other and with the 50 ms handling budget, not across machines.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from csms_adapter.monitoring import EventRecord, Monitor
from csms_adapter.monitoring.meter_integrity import MeterLimits
from csms_adapter.protocol import events as ev
from csms_adapter.store import Store
from csms_adapter.store.monitoring_repo import MonitoringRepository
from optimizer.domain import MonitoringSettings

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _median_us(run: Callable[[], int], repeats: int) -> float:
    """Median over ``repeats`` of the wall time per item of ``run`` (which returns how many items it did)."""
    per_item = []
    for _ in range(repeats):
        started = time.perf_counter()
        items = run()
        per_item.append((time.perf_counter() - started) / max(1, items) * 1e6)
    return statistics.median(per_item)


def _monitor(chargers: list[str], now: list[datetime]) -> Monitor:
    monitor = Monitor(MonitoringSettings(), clock=lambda: now[0], chargers=chargers,
                      connectors=dict.fromkeys(chargers, 2),
                      meter_limits={c: MeterLimits(22.0, 32.0) for c in chargers})
    for charger in chargers:
        monitor.observe(ev.ChargerConnected(charger, "1.6", now[0]))
    return monitor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    chargers = [f"cp-{n:04d}" for n in range(args.chargers)]
    now = [T0]
    monitor = _monitor(chargers, now)

    def statuses() -> int:
        now[0] += timedelta(seconds=10)
        for charger in chargers:
            for connector, status in ((1, "Charging"), (2, "Faulted")):
                plug = ev.PlugState.OCCUPIED if status == "Charging" else ev.PlugState.FAULTED
                monitor.observe(ev.StatusChanged(charger, connector, plug, status, now[0], "NoError"))
        return 2 * len(chargers)

    register = dict.fromkeys(chargers, 100.0)

    def samples() -> int:
        now[0] += timedelta(seconds=10)
        for charger in chargers:
            register[charger] += 0.02
            monitor.sample_ok(ev.MeterSample(charger, 1, ev.Quantity.ENERGY_KWH, register[charger],
                                             "Energy.Active.Import.Register", now[0]))
            monitor.sample_ok(ev.MeterSample(charger, 1, ev.Quantity.POWER_KW, 7.2, "Power.Active.Import", now[0]))
        return 2 * len(chargers)

    def evaluate() -> int:
        now[0] += timedelta(seconds=1)
        monitor.evaluate(now[0])
        return 1

    def availability() -> int:
        monitor.availability(now[0] - timedelta(hours=24), now[0])
        return 1

    status_us = _median_us(statuses, args.repeats)
    sample_us = _median_us(samples, args.repeats)
    evaluate_ms = _median_us(evaluate, args.repeats) / 1000
    availability_ms = _median_us(availability, args.repeats) / 1000
    with tempfile.TemporaryDirectory() as workdir:
        store = Store.open(f"sqlite:///{Path(workdir) / 'bench.db'}")
        repo = MonitoringRepository(store)
        batch = [EventRecord(T0, c, 1, "status", "Charging", "NoError") for c in chargers]
        write_ms = _median_us(lambda: repo.add_events(batch) // len(batch), args.repeats) / 1000
        store.close()
    print(f"chargers: {args.chargers} (2 connectors each); median of {args.repeats} runs")
    print(f"StatusNotification: {status_us:.1f} µs each (history record + rules + tracker)")
    print(f"meter sample:       {sample_us:.1f} µs each (integrity checks)")
    print(f"evaluate:           {evaluate_ms:.2f} ms per pass over every charger (once a second)")
    print(f"availability 24 h:  {availability_ms:.1f} ms for every charger and connector "
          f"({len(monitor.incidents(open=True))} open incidents)")
    print(f"history write:      {write_ms:.1f} ms per batch of {len(chargers)} events (store thread)")


if __name__ == "__main__":
    main()
