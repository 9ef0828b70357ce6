"""A scenario through the live controller: the production path, not a copy of it.

The real ``Controller`` (OCPP server, live state, control loop, dispatch, store on a temporary SQLite)
runs against emulated chargers (``csms_adapter.emulator``) over websockets on 127.0.0.1, with time
running ``speed`` times faster. Controller and chargers share one ``EmulatorClock`` that starts at the
scenario's start and stands still until every charger has booted and taken its fail-safe profiles, so
booting costs no scenario time. Each scenario session is a vehicle that plugs in at its arrival
(battery, SoC, temperature, target and maximum power of the session) and unplugs at its departure.

What the depot knows of each vehicle reaches the controller the way it would at a depot:
- battery, target, maximum power, knee, thermal model, priority and dwell time from the fleet roster:
  each session gets a roster entry and presents its id tag (``bench_tag``);
- SoC over OCPP from the chargers, only for vehicles that report one (as in the in-process plant);
- battery temperature from the vehicle-data input (telematics), fed from the emulated battery;
- ambient temperature: a weather station reports the scenario's ambient and hourly forecast to the controller's
  ambient input every 15 minutes (``_weather``), so the plan, its check and the thermal fit all see it.

At high speed the emulated chargers send their messages ``speed`` times as often per wall second as at a depot;
a host that cannot keep up would queue plug-ins and unplugs behind periodic meter readings for hours of emulated
time. The chargers therefore drop a queued periodic reading once a newer one of the same transaction is taken
(``shed_superseded_readings``), and the watch records how far behind the clock the oldest queued message is: a run
whose messages lagged by more than a control interval is reported as one the host could not keep up with.

The metrics are computed from the emulated chargers' physical state (``live_trace``), with the same
functions as the in-process run. Only this package imports ``csms_adapter``, lazily.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.live.detection import Announced, Detection, Injected, score
from benchmarks.live.live_trace import Reading, TraceRecorder
from benchmarks.live.thermal_trace import WATCH_EVERY_S, PlugInTransient, ThermalSample, ThermalWatch, TickTiming
from benchmarks.metrics import Metrics, summarise
from benchmarks.plant import PlantTrace, plant_thermal
from benchmarks.scenario import Scenario, ScenarioSession
from optimizer.battery import Battery
from optimizer.domain import Site, VehicleProfile
from optimizer.strategies import get_strategy

if TYPE_CHECKING:
    from csms_adapter.control.control_loop import TickResult
    from csms_adapter.control.controller import Controller
    from csms_adapter.emulator import EmulatedCharger, EVSpec, Fleet
    from csms_adapter.monitoring import IncidentChange
    from csms_adapter.protocol.frame_guard import GuardLimits

log = logging.getLogger("depotctl.bench.live")

DEFAULT_SPEED = 120.0
# The controller's tick after a plug-in waits this many emulated seconds for the burst of messages of a
# new transaction (status, start, first meter values with the SoC) to arrive; the in-process tick sees it all.
DEBOUNCE_EMULATED_S = 10.0
TELEMETRY_EVERY_S = 30.0  # emulated; a telematics report of the battery temperature (fresh for 15 min)
POLL_WALL_S = 0.01  # how often the telematics feed looks for new transactions
# Readings per wall second a connector may send at most: at high speed the site's meter interval (10 s is
# usual) would flood the event loop; 30-60 s metering is common at real depots, and the live state judges
# staleness by the same configured interval.
MAX_READINGS_PER_WALL_S = 10.0


@dataclass(frozen=True, slots=True)
class LiveOptions:
    speed: float = DEFAULT_SPEED  # emulated seconds per wall second
    thermal_mismatch: float = 0.0  # as PlantOptions: the real battery heats (1+m)× what the roster says
    hide_soc: bool = True  # False: every vehicle reports its SoC
    thermal_calibration: bool = True  # the controller plans with thermal models it learns (docs/battery.md)
    boot_timeout_s: float = 30.0  # wall
    db_dir: Path | None = None  # where the controller's SQLite goes; None: a temporary directory
    trace_path: Path | None = None  # the thermal trace as JSON lines (``thermal_trace``); None: kept in memory only


@dataclass(slots=True)
class LiveRun:
    scenario: str
    metrics: Metrics
    trace: PlantTrace
    ticks: int
    tick_errors: list[str] = field(default_factory=list)
    worst_lag_s: float = 0.0  # emulated seconds a plug-in or unplug fell behind its scheduled time
    wall_s: float = 0.0
    detection: Detection | None = None  # how monitoring saw the scenario's injected faults (None: it has none)
    thermal: ThermalWatch | None = None  # batteries beside commands, and whether the host kept up
    distrusted_readings: int = 0  # battery temperatures the controller did not plan with as read (docs/battery.md)


def bench_tag(row: int) -> str:
    """The id tag the vehicle of session ``row`` presents, and its roster entry's key."""
    return f"BENCH{row:05d}"


def live_site(scenario: Scenario, speed: float = 1.0) -> Site:
    """The scenario's site with one roster vehicle per session, listening on a free loopback port, metering
    no more often than MAX_READINGS_PER_WALL_S at ``speed``."""
    site = scenario.site
    vehicles = tuple(_roster_entry(site, row, s) for row, s in enumerate(scenario.sessions))
    # Basic auth with generated passwords (``simulated_site``) works for every site; TLS needs certificates.
    ocpp = dataclasses.replace(
        site.ocpp,
        listen="127.0.0.1:0",
        security_profile=1,
        meter_interval_s=max(site.ocpp.meter_interval_s, math.ceil(speed / MAX_READINGS_PER_WALL_S)),
    )
    return dataclasses.replace(site, vehicles=site.vehicles + vehicles, ocpp=ocpp)


def _roster_entry(site: Site, row: int, s: ScenarioSession) -> VehicleProfile:
    profile = (site.vehicle_for_tag(s.id_tag) if s.id_tag else None) or site.fleet_defaults
    return VehicleProfile(
        id=f"bench-{row}",
        id_tags=(bench_tag(row),),
        battery_kwh=s.battery_kwh,
        target_soc=s.target_soc,
        departure_local=None,  # departure = plug-in + dwell: exact, since the vehicle plugs in at its arrival
        dwell_h=(s.departure - s.arrival).total_seconds() / 3600.0,
        max_power_kw=s.max_kw,
        thermal=s.thermal,
        knee_soc=s.knee_soc,
        priority=s.priority if s.priority is not None else profile.priority,
    )


def _guard_limits(speed: float, chargers: int) -> GuardLimits:
    """The flood guard in emulated time: a charger's messages arrive ``speed`` times faster in wall time, and
    every emulated charger connects from 127.0.0.1."""
    from csms_adapter.protocol.frame_guard import GuardLimits

    base = GuardLimits()
    return dataclasses.replace(
        base,
        rate_per_s=base.rate_per_s * speed,
        burst=math.ceil(base.burst * max(1.0, speed / 10.0)),
        max_connections_per_address=max(base.max_connections_per_address, chargers + 16),
    )


class _StartGate:
    """A monotonic time source that stands still until ``release``: the emulated clock built on it reads the
    scenario's start while the chargers boot, then runs."""

    def __init__(self) -> None:
        self._released_at: float | None = None

    def __call__(self) -> float:
        return 0.0 if self._released_at is None else time.monotonic() - self._released_at

    def release(self) -> None:
        self._released_at = time.monotonic()


def run_live(scenario: Scenario, options: LiveOptions | None = None) -> LiveRun:
    """Run ``scenario`` under the live controller with strategy lp. Takes about
    (end − start) / speed wall seconds plus a few for booting."""
    return asyncio.run(run_live_async(scenario, options or LiveOptions()))


async def run_live_async(scenario: Scenario, options: LiveOptions) -> LiveRun:
    with contextlib.ExitStack() as stack:
        db_dir = options.db_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="depotctl-live-")))
        return await _LiveRunner(scenario, options, db_dir).run()


class _LiveRunner:
    def __init__(self, scenario: Scenario, options: LiveOptions, db_dir: Path) -> None:
        from csms_adapter.control.recorder import StoreRecorder
        from csms_adapter.emulator import EmulatorClock
        from csms_adapter.emulator.credentials import simulated_site

        self.scenario = scenario
        self.options = options
        site, self.env, self.passwords = simulated_site(live_site(scenario, options.speed), len(scenario.site.chargers))
        self.site = site
        self.gate = _StartGate()
        self.clock = EmulatorClock(options.speed, start=scenario.start, monotonic=self.gate)
        self.store = StoreRecorder.open(f"sqlite:///{db_dir / 'live.db'}")
        self.recorder = TraceRecorder(scenario)
        self.register0_kwh: dict[int, float] = {}
        self.visiting: dict[tuple[str, int], int] = {}  # connector -> row of the session plugged in there
        self.tick_ms: list[float] = []
        self.ticks = 0
        self.tick_errors: list[str] = []
        self.worst_lag_s = 0.0
        self.announced: list[Announced] = []  # incident openings as listeners (webhooks) heard of them
        self.detection: Detection | None = None
        control = site.control
        self.watch = ThermalWatch(control.interval_s, site.ocpp.profile_ttl_intervals * control.interval_s)
        self.fleet: Fleet | None = None
        # connector -> (emulated s of the tick that observed, limit kW) of the last command sent there this visit
        self.commanded: dict[tuple[str, int], tuple[float, float]] = {}
        self.plugged_at: dict[int, tuple[float, float, float]] = {}  # row -> (emulated s, register kWh, temp °C)

    async def run(self) -> LiveRun:
        from csms_adapter.control.controller import Controller
        from csms_adapter.emulator import start_fleet

        started = time.perf_counter()
        sc, speed = self.scenario, self.options.speed
        controller = Controller(
            self.site,
            clock=self.clock.now,
            env=self.env,
            recorder=self.store,
            planner=get_strategy("lp").plan,
            speed=speed,
            debounce_real_s=DEBOUNCE_EMULATED_S / speed,
            guard_limits=_guard_limits(speed, len(self.site.chargers)),
        )
        controller.tick_listeners.append(self._ticked)
        controller.monitor.listeners.append(self._announce)
        controller.loop.thermal.enabled = self.options.thermal_calibration
        await controller.start()
        try:
            fleet = await start_fleet(
                self.site, controller.url, speed=speed, passwords=self.passwords, clock=self.clock, plug_in=False,
                ambient_c=sc.ambient_at(sc.start), shed_superseded_readings=True,
            )
            self.fleet = fleet
            try:
                await self._boot(controller, fleet)
                self.gate.release()
                self._inject(fleet)
                await self._play(controller, fleet)
                self.detection = self._detection(controller, fleet)
            finally:
                self.watch.readings_shed = sum(c.superseded for c in fleet.chargers)
                await fleet.stop()
        finally:
            distrusted = controller.loop.thermal.guard.distrusted_total
            await controller.stop()
        trace = self.recorder.trace()
        metrics = summarise(trace, self.tick_ms, sc.priced, sc.site.tariff.demand_charge_per_kw)
        if self.options.trace_path is not None:
            self.watch.write(self.options.trace_path)
        return LiveRun(sc.name, metrics, trace, self.ticks, self.tick_errors, self.worst_lag_s,
                       time.perf_counter() - started, self.detection, self.watch, distrusted)

    def _announce(self, change: IncidentChange) -> None:
        if change.event == "opened":
            i = change.incident
            self.announced.append(Announced(i.kind.value, i.charger, i.connector, self.clock.now()))

    def _inject(self, fleet: Fleet) -> None:
        """The scenario's faults, timed from its start (the clock has just been released)."""
        if not self.scenario.faults:
            return
        from csms_adapter.emulator.faults import InjectionRecord, parse_fault

        fleet.injections = [InjectionRecord(parse_fault(spec)) for spec in self.scenario.faults]
        fleet.schedule_faults()

    def _detection(self, controller: Controller, fleet: Fleet) -> Detection | None:
        if not self.scenario.faults:
            return None
        injected = [Injected(r.fault.kind.value, r.fault.charger_id, r.fault.connector_id, r.started_at, r.cleared_at)
                    for r in fleet.injections if r.started_at is not None]
        debounce = controller.site.monitoring.debounce_for
        return score(injected, self.announced, self.clock.now(), debounce)

    def _ticked(self, result: TickResult) -> None:
        self.ticks += 1
        if result.snapshot.sessions:  # as in-process: empty ticks would flatter the percentiles
            self.tick_ms.append(result.tick_ms)
        if result.error is not None:
            self.tick_errors.append(f"{result.time.isoformat()}: {result.error}")
        self._trace_tick(result)

    def _since_start_s(self, at: datetime) -> float:
        return (at - self.scenario.start).total_seconds()

    def _trace_tick(self, result: TickResult) -> None:
        """When the tick observed and when its command was in place; the command each vehicle now holds, and for
        a vehicle's first command, what it drew on the fail-safe layers before it."""
        observed_s, done_s = self._since_start_s(result.time), self._since_start_s(self.clock.now())
        self.watch.ticks.append(TickTiming(observed_s, done_s, result.report is not None))
        if result.plan is None or result.report is None or self.fleet is None:
            return
        for cp in result.plan.connectors:
            key = (cp.charger_id, cp.connector_id)
            row = self.visiting.get(key)
            if row is None:
                continue
            if key not in self.commanded and row in self.plugged_at:
                plugged_s, register_kwh, temp_c = self.plugged_at[row]
                reading = self._read(row, self.fleet.charger(cp.charger_id))
                self.watch.transients.append(PlugInTransient(
                    row, cp.charger_id, plugged_s, done_s, reading.drawn_kwh - register_kwh, temp_c, reading.temp_c,
                    self.scenario.sessions[row].thermal.max_temp_c))
            self.commanded[key] = (observed_s, cp.limit_kw)

    async def _boot(self, controller: Controller, fleet: Fleet) -> None:
        """Every charger booted and holding its fail-safe profiles, so vehicles are controlled from their first
        second as at a depot that runs all day."""
        await fleet.wait_booted(timeout_s=self.options.boot_timeout_s)
        async with asyncio.timeout(self.options.boot_timeout_s):
            while not all(controller.live.charger(c.identity).failsafe_accepted for c in fleet.chargers):
                await asyncio.sleep(POLL_WALL_S)

    async def _play(self, controller: Controller, fleet: Fleet) -> None:
        sc = self.scenario
        by_connector: dict[tuple[str, int], list[int]] = {}
        for row, s in enumerate(sc.sessions):
            by_connector.setdefault((s.charger_id, s.connector_id), []).append(row)
        jobs: list[Coroutine[Any, Any, None]] = [
            self._connector(fleet, sorted(rows, key=lambda r: sc.sessions[r].arrival)) for rows in by_connector.values()
        ]
        jobs += [self._sample(fleet), self._weather(fleet, controller), self._watch(fleet)]
        feed = asyncio.create_task(self._telematics(controller, fleet), name="bench-telematics")
        try:
            async with asyncio.TaskGroup() as group:
                for job in jobs:
                    group.create_task(job)
        finally:
            feed.cancel()
            await asyncio.gather(feed, return_exceptions=True)

    # ------------------------------------------------------------------------------ the vehicles

    def _ev(self, row: int, charger: EmulatedCharger) -> EVSpec:
        from csms_adapter.emulator import EVSpec

        s = self.scenario.sessions[row]
        battery = Battery(
            capacity_kwh=s.battery_kwh,
            max_power_kw=s.max_kw,
            knee_soc=s.knee_soc,
            thermal=plant_thermal(s.thermal, self.options.thermal_mismatch),
            efficiency=charger.charger.efficiency,
        )
        return EVSpec(
            id_tag=bench_tag(row),
            battery=battery,
            soc=s.soc_arrival,
            temp_c=s.battery_temp_c,
            phases=3 if charger.charger.dc else charger.charger.phases,
            target_soc=s.target_soc,  # the vehicle stops when its request is met, as in the plant
            reports_soc=s.reports_soc or not self.options.hide_soc,
        )

    def _read(self, row: int, charger: EmulatedCharger) -> Reading:
        s = self.scenario.sessions[row]
        charger.advance()
        plant = charger.connectors[s.connector_id].plant
        if plant.battery is None:
            raise RuntimeError(f"session {row}: no vehicle on {s.charger_id}/{s.connector_id}")
        register_kwh = plant.energy_wh / 1000.0
        return Reading(
            plant.updated_at,
            register_kwh - self.register0_kwh[row],
            plant.battery.energy_kwh,
            plant.battery.soc,
            plant.battery.temp_c,
        )

    async def _connector(self, fleet: Fleet, rows: list[int]) -> None:
        """The visits of one connector, in order (one leaves before the next plugs in)."""
        for row in rows:
            s = self.scenario.sessions[row]
            charger = fleet.charger(s.charger_id)
            await self.clock.sleep_until(s.arrival)
            await charger.plug_in(s.connector_id, self._ev(row, charger))
            self.register0_kwh[row] = charger.connectors[s.connector_id].plant.energy_wh / 1000.0
            self.recorder.record(row, self._read(row, charger))
            self.commanded.pop((s.charger_id, s.connector_id), None)
            first = self.recorder.first(row)
            self.plugged_at[row] = (self._since_start_s(first.at), first.drawn_kwh, first.temp_c)
            self.visiting[(s.charger_id, s.connector_id)] = row
            self._lag((self.clock.now() - s.arrival).total_seconds())
            await self.clock.sleep_until(s.departure)
            self.recorder.record(row, self._read(row, charger), unplugged=True)
            del self.visiting[(s.charger_id, s.connector_id)]
            self._lag((self.clock.now() - s.departure).total_seconds())
            await charger.unplug(s.connector_id)

    def _lag(self, seconds: float) -> None:
        self.worst_lag_s = max(self.worst_lag_s, seconds)

    async def _sample(self, fleet: Fleet) -> None:
        """Read every plugged-in vehicle at every step boundary, up to the scenario's end."""
        sc = self.scenario
        for k in range(1, sc.steps + 1):
            await self.clock.sleep_until(min(sc.time_at(k), sc.end))
            for row, s in enumerate(sc.sessions):
                if self.recorder.plugged(row):
                    self.recorder.record(row, self._read(row, fleet.charger(s.charger_id)))

    async def _watch(self, fleet: Fleet) -> None:
        """Every WATCH_EVERY_S: each plugged-in vehicle with a thermal model, its true temperature beside what
        it draws, what it is offered and by which layer, and what it was last commanded; and how late this loop
        woke (the host falling behind the emulated clock)."""
        sc = self.scenario
        k = 1
        while (target := sc.start + timedelta(seconds=k * WATCH_EVERY_S)) <= sc.end:
            await self.clock.sleep_until(target)
            now = self.clock.now()
            self.watch.wake_lags_s.append(max(0.0, (now - target).total_seconds()))
            queued = [at for c in fleet.chargers if c.online.is_set() and (at := c.oldest_queued_at) is not None]
            self.watch.message_lags_s.append(max((max(0.0, (now - at).total_seconds()) for at in queued), default=0.0))
            for (charger_id, connector_id), row in list(self.visiting.items()):
                s = sc.sessions[row]
                if not s.thermal.is_modelled:
                    continue
                charger = fleet.charger(charger_id)
                charger.advance(now)
                rt = charger.connectors[connector_id]
                if rt.plant.battery is None:
                    continue
                own, station = charger.profiles.layers_at(connector_id, now, rt.tx)
                commanded = self.commanded.get((charger_id, connector_id))
                self.watch.samples.append(ThermalSample(
                    self._since_start_s(now), row, charger_id, rt.plant.battery.temp_c, s.thermal.max_temp_c,
                    rt.plant.power_kw, rt.plant.offered_kw, f"{own or '-'} / {station or '-'}",
                    None if commanded is None else commanded[1], None if commanded is None else commanded[0]))
            k += 1

    async def _weather(self, fleet: Fleet, controller: Controller) -> None:
        """The emulated vehicles' surroundings follow the scenario's hourly ambient temperature, and a weather
        station reports it with the forecast to the controller's ambient input every 15 minutes."""
        from optimizer.ambient import AmbientReading

        sc = self.scenario
        quarter = 0
        while (at := sc.start + timedelta(minutes=15 * quarter)) < sc.end:
            await self.clock.sleep_until(at)
            controller.loop.thermal.set_ambient(AmbientReading(sc.ambient_at(at), at, sc.ambient_forecast(at)))
            if quarter % 4 == 0 and quarter > 0:
                for charger in fleet.chargers:
                    charger.set_ambient_c(sc.ambient_at(at), at)
            quarter += 1

    async def _telematics(self, controller: Controller, fleet: Fleet) -> None:
        """The vehicle-data feed: battery temperature of every plugged-in vehicle with a thermal model, sent as
        soon as its transaction is known and every TELEMETRY_EVERY_S after (the in-process plant reports it at
        every tick)."""
        from csms_adapter.control.operator_inputs import VehicleData

        sc = self.scenario
        sent: dict[str, float] = {}  # transaction id -> emulated time of the last report (s since start)
        while True:
            for charger_id, connector_id, session in controller.live.open_sessions():
                row = self.visiting.get((charger_id, connector_id))
                if row is None or not sc.sessions[row].thermal.is_modelled:
                    continue
                now_s = (self.clock.now() - sc.start).total_seconds()
                last = sent.get(session.transaction_id)
                if last is not None and now_s - last < TELEMETRY_EVERY_S:
                    continue
                reading = self._read(row, fleet.charger(charger_id))
                controller.live.inputs.set_vehicle_data(
                    (charger_id, connector_id),
                    VehicleData(session.transaction_id, reading.at, session.delivered_kwh, battery_temp_c=reading.temp_c),
                )
                sent[session.transaction_id] = now_s
            await asyncio.sleep(POLL_WALL_S)
