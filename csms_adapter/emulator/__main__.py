"""Run emulated chargers of a site against a CSMS, e.g. one slice of a 1,000-charger load test:

    python -m csms_adapter.emulator --site big.yaml --url ws://127.0.0.1:9000 --offset 500 --count 500

Prints one status line every ``--report-s`` seconds; stops cleanly on Ctrl-C / SIGTERM or after
``--duration-s``. Passwords come from each charger's ``auth.password_env`` or ``--password``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from pathlib import Path

from csms_adapter.emulator.faults import parse_fault
from csms_adapter.emulator.fleet import Fleet, check_faults, start_fleet
from csms_adapter.protocol import ocpp_tuning
from optimizer.errors import ConfigError
from optimizer.site_loader import load_site


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m csms_adapter.emulator", description=__doc__.splitlines()[0])
    parser.add_argument("--site", required=True, help="site YAML whose chargers are emulated")
    parser.add_argument("--url", required=True, help="CSMS websocket base URL, e.g. ws://127.0.0.1:9000")
    parser.add_argument("--count", type=int, default=None, help="how many chargers (default: all from offset)")
    parser.add_argument("--offset", type=int, default=0, help="index of the first site charger to emulate")
    parser.add_argument("--speed", type=float, default=1.0, help="emulated seconds per wall second")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--meter-interval-s", type=float, default=None, help="emulated s (default: site's)")
    parser.add_argument("--arrival-window-s", type=float, default=600.0, help="vehicles arrive within (emulated s)")
    parser.add_argument("--versions", default="1.6,2.0.1", help="OCPP versions to cycle through")
    parser.add_argument("--password", default=None, help="password for every charger without password_env")
    parser.add_argument("--duration-s", type=float, default=None, help="wall seconds to run (default: forever)")
    parser.add_argument("--report-s", type=float, default=5.0)
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--stats-json", default=None, help="write final counts and round-trip times here")
    parser.add_argument("--fault", action="append", default=[], metavar="SPEC",
                        help="inject a fault, e.g. fault:cp-01:1@600+1800,code=GroundFailure or offline:cp-02@300+120 "
                             "(kinds: fault, unavailable, offline, meter_glitch, ignore_limit; times in emulated s)")
    parser.add_argument("--no-schema-validation", action="store_true",
                        help="load runs only: skip the ocpp library's schema checks of every frame both ways (a "
                             "charger's own CPU does that work; this process stands in for hundreds of them)")
    parser.add_argument("--nice", type=int, default=0, metavar="N",
                        help="lower this process's CPU priority by N (os.nice), so that on a shared machine the "
                             "controller under test is not starved by the chargers standing in for real ones")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    try:
        site = load_site(args.site)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    chosen = site.chargers[args.offset : args.offset + args.count if args.count else None]
    passwords = {c.id: args.password for c in chosen} if args.password else None
    versions = tuple(v.strip() for v in args.versions.split(",") if v.strip())
    if not versions or any(v not in ("1.6", "2.0.1") for v in versions):
        print(f"--versions: use 1.6 and/or 2.0.1, got {args.versions!r}", file=sys.stderr)
        return 2
    # The same in-place validation and cached key conversion as the controller: a standalone emulator process
    # drives hundreds of chargers, and every CPU second it spends is one the controller beside it does not get.
    try:
        faults = [parse_fault(spec) for spec in args.fault]
        check_faults(faults, chosen)
    except ValueError as exc:
        print(f"--fault: {exc}", file=sys.stderr)
        return 2
    ocpp_tuning.install()
    if args.nice > 0:
        os.nice(args.nice)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    fleet = await start_fleet(
        site,
        args.url,
        args.count,
        args.speed,
        args.seed,
        offset=args.offset,
        versions=versions,
        passwords=passwords,
        meter_interval_s=args.meter_interval_s,
        arrival_window_s=args.arrival_window_s,
        faults=faults,
        validate_schemas=not args.no_schema_validation,
    )
    try:
        async with asyncio.timeout(args.duration_s):
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(args.report_s):
                        await stop.wait()
                sent = sum(c.sent for c in fleet.chargers)
                dropped = sum(c.dropped for c in fleet.chargers)
                print(
                    f"emulated={fleet.clock.now():%H:%M:%S} booted={fleet.booted_count()}/{len(fleet.chargers)} "
                    f"online={fleet.online_count()} site_kw={fleet.site_power_kw():.1f} sent={sent} dropped={dropped}",
                    flush=True,
                )
    except TimeoutError:
        pass
    finally:
        await fleet.stop()
        if args.stats_json:
            write_stats(fleet, args.stats_json)
    return 0


def write_stats(fleet: Fleet, path: str) -> None:
    """Final counts for a load test: CALLs answered by the CSMS, queued events delivered (``sent``), given up (``dropped``), still queued
    (``pending``), BootNotifications, and every kept round-trip time in ms."""
    stats = {
        "chargers": len(fleet.chargers),
        "booted": fleet.booted_count(),
        "boots": sum(c.boot_count for c in fleet.chargers),
        "sent": sum(c.sent for c in fleet.chargers),
        "calls_answered": sum(c.calls_answered for c in fleet.chargers),
        "dropped": sum(c.dropped for c in fleet.chargers),
        "pending": sum(c.pending_messages for c in fleet.chargers),
        "profiles_received": sum(c.received_calls.count("SetChargingProfile") for c in fleet.chargers),
        "rtt_ms": [round(x, 3) for c in fleet.chargers for x in c.rtt_ms],
    }
    Path(path).write_text(json.dumps(stats))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
