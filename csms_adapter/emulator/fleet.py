"""A fleet of emulated chargers for a site: one ``EmulatedCharger`` per site charger (versions
mixed), vehicles from the fleet roster plugging in at staggered emulated times, and the live
physical state for the terminal view and for tests.

    fleet = await start_fleet(site, "ws://127.0.0.1:9000", speed=60, seed=1)
    try:
        await fleet.wait_booted(timeout_s=10)
        print(fleet.site_power_kw())
    finally:
        await fleet.stop()

One process drives a few hundred chargers comfortably; for more, split them over processes with
``offset``/``n`` (``python -m csms_adapter.emulator --offset 500 --count 500 ...``).
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from csms_adapter.emulator.clock import EmulatorClock
from csms_adapter.emulator.faults import FaultInjection, FaultKind, InjectionRecord
from csms_adapter.emulator.plant import EVSpec, Quirks
from csms_adapter.emulator.station import ConnectorView, EmulatedCharger, OcppVersion
from csms_adapter.tasks import cancel_and_wait
from optimizer.battery import Battery
from optimizer.domain import Charger, Site, VehicleProfile


@dataclass(frozen=True, slots=True)
class PlugIn:
    charger_id: str
    connector_id: int
    at_s: float  # emulated seconds after the fleet started
    ev: EVSpec
    dwell_s: float | None  # None: stays until the fleet stops


def make_ev(vehicle: VehicleProfile, charger: Charger, id_tag: str, rng: random.Random, ambient_c: float) -> EVSpec:
    battery = Battery(
        capacity_kwh=vehicle.battery_kwh,
        max_power_kw=vehicle.max_power_kw,
        knee_soc=vehicle.knee_soc,
        thermal=vehicle.thermal,
        efficiency=charger.efficiency,
    )
    return EVSpec(
        id_tag=id_tag,
        battery=battery,
        soc=rng.uniform(0.1, 0.5),
        temp_c=ambient_c + rng.uniform(0.0, 5.0),
        phases=3,
    )


def plan_arrivals(
    site: Site,
    chargers: Sequence[Charger],
    rng: random.Random,
    *,
    window_s: float,
    ambient_c: float,
    departures: bool,
    first_index: int = 0,
) -> list[PlugIn]:
    """One vehicle per connector: roster vehicles first (each once), then fleet-default vehicles
    with synthetic tags, arriving uniformly over ``window_s`` emulated seconds."""
    roster = [v for v in site.vehicles if v.id_tags]
    arrivals = []
    index = first_index  # processes started with an offset continue the roster where others stop
    for charger in chargers:
        for connector_id in range(1, charger.connectors + 1):
            vehicle = roster[index] if index < len(roster) else site.fleet_defaults
            tag = vehicle.id_tags[0] if index < len(roster) else f"EMU{index:07d}"
            ev = make_ev(vehicle, charger, tag, rng, ambient_c)
            dwell_s = vehicle.dwell_h * 3600.0 if departures else None
            arrivals.append(PlugIn(charger.id, connector_id, rng.uniform(0.0, window_s), ev, dwell_s))
            index += 1
    return arrivals


@dataclass
class Fleet:
    clock: EmulatorClock
    chargers: list[EmulatedCharger]
    arrivals: list[PlugIn]
    injections: list[InjectionRecord] = field(default_factory=list)  # faults to inject, with when they happened
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def charger(self, charger_id: str) -> EmulatedCharger:
        return next(c for c in self.chargers if c.identity == charger_id)

    def connectors(self) -> list[ConnectorView]:
        """Live state of every connector, physics advanced to now."""
        out: list[ConnectorView] = []
        for charger in self.chargers:
            charger.advance()
            out.extend(charger.view())
        return out

    def site_power_kw(self) -> float:
        return sum(view.power_kw for view in self.connectors())

    def booted_count(self) -> int:
        return sum(1 for c in self.chargers if c.accepted.is_set())

    def online_count(self) -> int:
        return sum(1 for c in self.chargers if c.online.is_set())

    async def wait_booted(self, timeout_s: float = 30.0) -> None:
        """Wait until every charger's BootNotification was accepted (raises TimeoutError)."""
        async with asyncio.timeout(timeout_s):
            await asyncio.gather(*(c.accepted.wait() for c in self.chargers))

    async def _arrive(self, plug: PlugIn) -> None:
        charger = self.charger(plug.charger_id)
        await self.clock.sleep(plug.at_s)
        await charger.plug_in(plug.connector_id, plug.ev)
        if plug.dwell_s is not None:
            await self.clock.sleep(plug.dwell_s)
            await charger.unplug(plug.connector_id)

    def schedule_arrivals(self) -> None:
        for plug in self.arrivals:
            self._tasks.append(asyncio.create_task(self._arrive(plug), name=f"arrive:{plug.charger_id}"))

    async def _inject(self, record: InjectionRecord) -> None:
        fault = record.fault
        charger = self.charger(fault.charger_id)
        await self.clock.sleep(fault.at_s)
        record.started_at = self.clock.now()
        await charger.start_fault(fault)
        if fault.duration_s is None:
            if fault.clears:  # a one-reading glitch: over once that reading went out
                record.cleared_at = record.started_at
            return
        await self.clock.sleep(fault.duration_s)
        charger.end_fault(fault)
        record.cleared_at = self.clock.now()

    def schedule_faults(self) -> None:
        for record in self.injections:
            name = f"fault:{record.fault.kind}:{record.fault.charger_id}"
            self._tasks.append(asyncio.create_task(self._inject(record), name=name))

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        await asyncio.gather(*(c.stop() for c in self.chargers))

    async def __aenter__(self) -> Fleet:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()


def _password(charger: Charger, passwords: Mapping[str, str] | None) -> str | None:
    if passwords is not None and charger.id in passwords:
        return passwords[charger.id]
    if charger.auth is not None and charger.auth.password_env:
        return os.environ.get(charger.auth.password_env)
    return None  # password_sha256 cannot be reversed: pass ``passwords``


async def start_fleet(
    site: Site,
    url: str,
    n: int | None = None,
    speed: float = 1.0,
    seed: int = 0,
    *,
    offset: int = 0,
    versions: Sequence[OcppVersion] = ("1.6", "2.0.1"),
    quirks: Mapping[str, Quirks] | None = None,
    passwords: Mapping[str, str] | None = None,
    meter_interval_s: float | None = None,
    arrival_window_s: float = 600.0,
    departures: bool = False,
    plug_in: bool = True,
    arrive_now: bool = True,
    ambient_c: float = 20.0,
    response_timeout_s: float = 30.0,
    clock: EmulatorClock | None = None,
    faults: Sequence[FaultInjection] = (),
    validate_schemas: bool = True,
    shed_superseded_readings: bool = False,
) -> Fleet:
    """Start emulated chargers for ``site.chargers[offset:offset+n]`` against the CSMS at ``url``.

    Versions cycle through ``versions`` by charger index; ``quirks`` and ``passwords`` are keyed by
    charger id (passwords default to the env var named in the site's ``auth.password_env``). With
    ``plug_in`` one vehicle per connector arrives within ``arrival_window_s`` emulated seconds, counted from now,
    or (``arrive_now=False``) from when the caller calls ``fleet.schedule_arrivals()``.
    ``faults`` are injected at their emulated times after the start (``csms_adapter.emulator.faults``); each
    must name an emulated charger and one of its connectors (else ValueError). ``validate_schemas`` False skips
    the ``ocpp`` library's schema checks both ways (load runs only: ``EmulatedCharger.validate_schemas``);
    ``shed_superseded_readings`` see ``EmulatedCharger`` (runs faster than real time only).
    Returns at once; use ``wait_booted`` to wait for the connections.
    """
    chosen = list(site.chargers[offset : offset + n if n is not None else None])
    if n is not None and len(chosen) < n:
        raise ValueError(f"site {site.name} has {len(site.chargers)} chargers; cannot start {n} from {offset}")
    check_faults(faults, chosen)
    clock = clock or EmulatorClock(speed)
    rng = random.Random(seed)
    interval_s = meter_interval_s if meter_interval_s is not None else float(site.ocpp.meter_interval_s)
    chargers = [
        EmulatedCharger(
            charger,
            url,
            clock,
            version=versions[(offset + index) % len(versions)],
            quirks=(quirks or {}).get(charger.id),
            password=_password(charger, passwords),
            meter_interval_s=interval_s,
            ambient_c=ambient_c,
            response_timeout_s=response_timeout_s,
            rng=random.Random(f"{seed}:{charger.id}"),
            validate_schemas=validate_schemas,
            shed_superseded_readings=shed_superseded_readings,
        )
        for index, charger in enumerate(chosen)
    ]
    arrivals = (
        plan_arrivals(
            site, chosen, rng, window_s=arrival_window_s, ambient_c=ambient_c, departures=departures,
            first_index=sum(c.connectors for c in site.chargers[:offset]),
        )
        if plug_in
        else []
    )
    fleet = Fleet(clock, chargers, arrivals, [InjectionRecord(f) for f in faults])
    for charger in chargers:
        await charger.start()
    if arrive_now:
        fleet.schedule_arrivals()
    fleet.schedule_faults()
    return fleet


def check_faults(faults: Sequence[FaultInjection], chargers: Sequence[Charger]) -> None:
    """Raise ValueError for a fault on a charger or connector that is not emulated."""
    by_id = {c.id: c for c in chargers}
    for fault in faults:
        charger = by_id.get(fault.charger_id)
        if charger is None:
            raise ValueError(f"fault {fault.kind} on {fault.charger_id}: no such emulated charger "
                             f"({', '.join(list(by_id)[:5])}{', ...' if len(by_id) > 5 else ''})")
        uses_connector = fault.kind not in (FaultKind.OFFLINE, FaultKind.IGNORE_LIMIT)
        if uses_connector and fault.connector_id > charger.connectors:
            raise ValueError(f"fault {fault.kind} on {fault.charger_id}: connector {fault.connector_id} does not "
                             f"exist (1..{charger.connectors})")
