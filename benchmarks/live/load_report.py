"""The load benchmark's printed report (``load_bench``'s results dictionary as lines of text)."""

from __future__ import annotations

from typing import Any

from benchmarks.live.load_probes import percentile
from benchmarks.live.tick_anatomy import anatomy_lines


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:.1f}{unit}" if isinstance(value, float) else f"{value}{unit}"


def per_call_ms(tick: dict[str, Any], key: str) -> float | None:
    """``tick[key]`` (CPU ms during a dispatch) per profile call that went out (accepted or failed)."""
    calls = int(tick.get("tx_accepted") or 0) + int(tick.get("station_accepted") or 0) + int(tick.get("failed") or 0)
    value = tick.get(key)
    return round(float(value) / calls, 3) if value is not None and calls else None


def print_report(r: dict[str, Any]) -> None:
    full = r["full_tick"] or {}
    lines = [
        f"load benchmark: {r['chargers']} chargers (mixed 1.6J/2.0.1, {r['emulator_processes']} emulator processes), "
        f"meter values every {r['meter_interval_s']} s, {r['duration_s']} s, {r['cpus']} CPUs shared",
        f"  booted                     {r['booted']}/{r['chargers']}",
        f"  messages answered/handled  {r['messages_answered']} / {r['messages_handled']}  "
        f"(given up {r['messages_given_up']}, queued at end {r['messages_queued_at_end']}, "
        f"lost {r['messages_lost']})   target: none lost",
        f"  handling p50 / p99 / max   {_fmt(r['handling_ms_p50'], ' ms')} / {_fmt(r['handling_ms_p99'], ' ms')} / "
        f"{_fmt(r['handling_ms_max'], ' ms')}   target: p99 < 50 ms",
        f"  ... after the full tick    {_fmt(r['steady_handling_ms_p50'], ' ms')} / "
        f"{_fmt(r['steady_handling_ms_p99'], ' ms')}   ({r['steady_handled']} messages: meter values and ticks only)",
        f"  round trip p50 / p99       {_fmt(r['round_trip_ms_p50'], ' ms')} / {_fmt(r['round_trip_ms_p99'], ' ms')}"
        "   (charger side, includes the emulators' own loop delay)",
        f"  full tick                  {_fmt(full.get('tick_ms'), ' ms')} for {full.get('sessions')} sessions "
        f"(after {_fmt(full.get('waited_s'), ' s')}; set-up done: {full.get('set_up_done')}, "
        f"{full.get('reachable')} chargers reachable, {full.get('set_up_running')} set-ups running, store backlog "
        f"{full.get('store_backlog')}): snapshot {_fmt(full.get('snapshot_ms'), ' ms')}, "
        f"plan {_fmt(full.get('plan_ms'), ' ms')} (waited {_fmt(full.get('solve_wall_ms'), ' ms')}), "
        f"check {_fmt(full.get('check_ms'), ' ms')}, dispatch {_fmt(full.get('dispatch_ms'), ' ms')} "
        f"(CPU: controller {_fmt(full.get('dispatch_cpu_ms'), ' ms')}, "
        f"emulators {_fmt(full.get('dispatch_emulator_cpu_ms'), ' ms')}), "
        f"{full.get('tx_accepted')} TxProfiles + {full.get('station_accepted')} station max accepted, "
        f"{full.get('failed')} failed   target: < 2000 ms",
        f"  full tick CPU              controller {_fmt(full.get('tick_cpu_ms'), ' ms')} (its event-loop thread "
        f"{_fmt(full.get('tick_loop_cpu_ms'), ' ms')}; the solver process's is not in it)",
        f"  dispatch CPU per call sent controller {_fmt(per_call_ms(full, 'dispatch_cpu_ms'), ' ms')} (its event-loop "
        f"thread {_fmt(per_call_ms(full, 'dispatch_loop_cpu_ms'), ' ms')}), emulators "
        f"{_fmt(per_call_ms(full, 'dispatch_emulator_cpu_ms'), ' ms')}   (everything each ran meanwhile included; "
        f"garbage collection on the loop {_fmt(full.get('dispatch_gc_ms'), ' ms')}, in the second after the tick "
        f"{_fmt(full.get('gc_after_ms'), ' ms')})",
        f"  controller RSS now / peak  {_fmt(r['controller_rss_mb'], ' MB')} / "
        f"{_fmt(r['controller_rss_peak_mb'], ' MB')}   target: < 500 MB   (solver process peak "
        f"{_fmt(r.get('solver_rss_peak_mb'), ' MB')})",
    ]
    by = r.get("by_activity") or {}
    if by:
        lines.append("  handling p50 / p99 while   " + ", ".join(
            f"{k} {_fmt(v['p50'], '')} / {_fmt(v['p99'], ' ms')} (n={v['n']})" for k, v in by.items()))
    lines.append(f"  event-loop lag p99 / max   {_fmt(r.get('loop_lag_ms_p99'), ' ms')} / "
                 f"{_fmt(r.get('loop_lag_ms_max'), ' ms')}  ({r.get('loop_lag_over_50ms')} wake-ups > 50 ms late)")
    wall = r.get("controller_wall_s")
    cpu = r.get("controller_cpu_s")
    share = f" = {100.0 * cpu / wall:.0f} % of one CPU" if cpu is not None and wall else ""
    lines.append(f"  CPU s: controller {_fmt(cpu)}{share} over {_fmt(wall, ' s')}, solver process "
                 f"{_fmt(r.get('solver_cpu_s'))}, emulators {_fmt(r.get('emulator_cpu_s'))}")
    lines.append(f"  garbage collections        {r.get('loop_gc_collections')} by generation (0/1/2) on the event loop, "
                 f"{r.get('loop_gc_ms')} ms CPU")
    lines.append(f"  store backlog max / end    {r.get('store_backlog_max')} / {r.get('store_backlog_at_end')}   "
                 f"samples written {r.get('samples_written')}, dropped {r.get('samples_dropped')}, store failures "
                 f"{r.get('store_failures')}")
    lines.append(f"  fail-safe recomputes       {r.get('failsafe_recomputes')}")
    lines.extend(full_tick_lines(full.get("repeats") or []))
    lines.extend(anatomy_lines(full.get("anatomy") or []))
    lines.extend(tick_lines(r["ticks"]))
    print("\n".join(lines))


def full_tick_lines(repeats: list[dict[str, Any]]) -> list[str]:
    """Medians over the repeated full ticks (``--full-ticks``): wall, CPU of this process, CPU per call sent."""
    if len(repeats) < 2:
        return []

    def median(values: list[float | None]) -> float | None:
        return percentile([v for v in values if v is not None], 0.5)

    return [f"  full ticks ({len(repeats)}), each       tick "
            + ", ".join(_fmt(t.get("tick_ms"), " ms") for t in repeats) + "; calls accepted "
            + ", ".join(f"{t.get('tx_accepted')} + {t.get('station_accepted')}" for t in repeats) + "; check "
            + ", ".join(_fmt(t.get("check_ms"), " ms") for t in repeats) + "; dispatch "
            + ", ".join(_fmt(t.get("dispatch_ms"), " ms") for t in repeats) + "; GC in / after the dispatch "
            + ", ".join(f"{_fmt(t.get('dispatch_gc_ms'))} / {_fmt(t.get('gc_after_ms'), ' ms')}" for t in repeats),
            f"  full ticks ({len(repeats)}), median    tick {_fmt(median([t.get('tick_ms') for t in repeats]), ' ms')}"
            f" (controller CPU {_fmt(median([t.get('tick_cpu_ms') for t in repeats]), ' ms')}, its loop thread "
            f"{_fmt(median([t.get('tick_loop_cpu_ms') for t in repeats]), ' ms')}), dispatch "
            f"{_fmt(median([t.get('dispatch_ms') for t in repeats]), ' ms')}; dispatch CPU per call sent: controller "
            f"{_fmt(median([per_call_ms(t, 'dispatch_cpu_ms') for t in repeats]), ' ms')} (loop thread "
            f"{_fmt(median([per_call_ms(t, 'dispatch_loop_cpu_ms') for t in repeats]), ' ms')}, garbage collection "
            f"{_fmt(median([per_call_ms(t, 'dispatch_gc_ms') for t in repeats]), ' ms')}), emulators "
            f"{_fmt(median([per_call_ms(t, 'dispatch_emulator_cpu_ms') for t in repeats]), ' ms')}"]


def tick_lines(ticks: list[dict[str, Any]]) -> list[str]:
    """Median and max of each part of every tick of the run (the full tick among them)."""
    if not ticks:
        return []
    out = [f"  ticks                      {len(ticks)} (median / max ms):"]
    for key in ("snapshot_ms", "solve_wall_ms", "dispatch_ms", "tick_ms"):
        values = [float(t[key]) for t in ticks if t.get(key) is not None]
        if values:
            out.append(f"    {key:<24}{percentile(values, 0.5):.0f} / {max(values):.0f}")
    return out
