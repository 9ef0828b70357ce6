"""The live picture of the depot, built from events, and the immutable ``Snapshot`` the optimizer plans on.

Per connector: the latest value of each measurand (time, source), the plug state, the open session (transaction
id, id tag, start, energy register at start), ISO 15118 needs, and the last command. Per charger: connected or
not, monitor-only, its fail-safe share.

Trust order for a session's needs (docs/architecture.md, "The live state"): ISO 15118 needs > SoC measurand > fleet roster via id tag >
site defaults. The last two are applied by the optimizer for fields left ``None``; when the charger sends no SoC,
``energy_delivered_kwh`` is set and the SoC is marked estimated.

Conservative rules (docs/architecture.md, "The live state": stale means worst case): a disconnected charger is budgeted at its fail-safe
share; a connector whose profile was rejected, or that draws more than its command for longer than a grace
period, leaves the optimizer's control and is budgeted at what it draws (or at its fail-safe/maximum power when
that measurement is stale).
"""

from __future__ import annotations

import logging
import math
import zoneinfo
from collections.abc import Callable
from datetime import datetime, timedelta

from csms_adapter.control.compliance import exceeds, latest_draw, settled_at
from csms_adapter.control.connector_state import ChargerState, Command, ConnectorState, ConnectorView, Reading, Session
from csms_adapter.control.external_limits import ExternalLimitBook
from csms_adapter.control.operator_inputs import OperatorInputs
from csms_adapter.protocol import authorization
from csms_adapter.protocol import events as ev
from csms_adapter.protocol.telemetry import MAX_FUTURE
from optimizer.circuits import wired_phases
from optimizer.domain import (
    Charger,
    SessionState,
    Site,
    Snapshot,
    UncontrolledLoad,
    ValueSource,
)
from optimizer.horizon import FINE_H
from optimizer.vehicle_limit import infer_vehicle_limit

log = logging.getLogger("depotctl.live_state")

# A tag presented shortly before a transaction starts (2.0.1 starts at plug-in, often without a token) is its tag.
AUTHORIZE_WINDOW = timedelta(minutes=5)
# Measured current may exceed the command by this much before it counts as ignoring it (meter and ramp noise).
_DRAW = frozenset({ev.Quantity.CURRENT_A, ev.Quantity.POWER_KW})
LEARN_MIN_A = 2.0  # a per-phase reading teaches phases only while the vehicle clearly charges
# 1.6 statuses that say the connector's transaction is over while the plug may still be in (§4.9 Finishing).
_SESSION_OVER = frozenset({"Finishing"})


class LiveState:
    """Consumes events (``apply``) and answers snapshots. Not thread-safe: used from the event loop only."""

    def __init__(self, site: Site, failsafe_kw: dict[str, float], *, ignore_grace_s: float | None = None) -> None:
        self.site = site
        self.failing_after = timedelta(seconds=site.control.interval_s)
        # A failing connector is planned for again (so its call is retried) once per profile lifetime.
        self.retry_failing_after = timedelta(seconds=site.control.interval_s * site.ocpp.profile_ttl_intervals)
        self.failsafe_kw = dict(failsafe_kw)
        # The fewest site phases each charger's accepted fail-safe share may land on (1: sent in W).
        self.failsafe_spread: dict[str, int] = {}
        self.stale_after = timedelta(seconds=3 * site.ocpp.meter_interval_s)
        grace = ignore_grace_s if ignore_grace_s is not None else 2 * site.ocpp.meter_interval_s + 10
        self.ignore_grace = timedelta(seconds=grace)
        self.chargers: dict[str, ChargerState] = {}
        self.inputs = OperatorInputs()  # grid cap, session overrides and vehicle data from the HTTP API
        self.external = ExternalLimitBook(site)  # limits the chargers report that depotctl did not set
        # Why a connector is out of service (faulted, unavailable unasked), or None; set by the controller from
        # its Monitor. Such a connector leaves the plan and is budgeted at what it is measured to draw.
        self.out_of_service: Callable[[str, int], str | None] = _in_service

    def charger(self, charger_id: str) -> ChargerState:
        return self.chargers.setdefault(charger_id, ChargerState())

    # ------------------------------------------------------------------------------ events

    def apply(self, event: ev.Event) -> None:
        state = self.charger(event.charger_id)
        when = event.time
        if state.last_seen is None or when > state.last_seen:
            state.last_seen = when
        if isinstance(event, ev.ChargingLimitReported | ev.ChargingLimitCleared | ev.EvScheduleReported
                      | ev.TransactionStarted | ev.TransactionStopped):
            self.external.apply(event)
        match event:
            case ev.ChargerConnected():
                state.connected = True
                state.connected_at = event.time
                state.monitor_only = event.monitor_only
                state.ocpp_version = event.ocpp_version
                for connector in state.connectors.values():
                    connector.rejected = None  # re-evaluated against the new connection's answers
                    connector.failing_since = None
            case ev.ChargerDisconnected():
                state.connected = False
            case ev.ChargerBooted():
                state.booted_at = when
                state.ocpp_version = event.ocpp_version
            case ev.StatusChanged():
                self._status(state, event)
            case ev.Authorize():
                state.last_tag = (event.id_tag, when)
                for connector in state.connectors.values():
                    if connector.session is not None and connector.session.id_tag is None:
                        connector.session.id_tag = event.id_tag
                        break
            case ev.TransactionStarted():
                self._started(state, event)
            case ev.TransactionStopped():
                self._stopped(state, event)
            case ev.MeterSample():
                self._sample(state, event)
            case ev.EvChargingNeeds():
                connector = state.connector(event.connector_id)
                connector.needs = event
                connector.needs_delivered_kwh = connector.session.delivered_kwh if connector.session else 0.0
            case ev.RejectedValue():
                log.debug("rejected value charger=%s measurand=%s reason=%s", event.charger_id, event.measurand,
                          event.reason)

    def session_ending(self, event: ev.Event) -> tuple[int, Session, str] | None:
        """(connector, session, reason) when applying ``event`` ends an open session without its stop message:
        the charger reports the connector free or finished, or a newer transaction starts there (the newest
        wins). The caller closes it in the store too. An event older than the session ends nothing."""
        state = self.chargers.get(event.charger_id)
        if state is None:
            return None
        if isinstance(event, ev.StatusChanged) and event.connector_id > 0:
            connector = state.connectors.get(event.connector_id)
            session = connector.session if connector is not None else None
            if (session is not None and event.time >= session.started_at
                    and (event.plug is ev.PlugState.AVAILABLE or event.raw_status in _SESSION_OVER)):
                return event.connector_id, session, f"charger reported {event.raw_status}"
        if isinstance(event, ev.TransactionStarted):
            connector = state.connectors.get(event.connector_id)
            session = connector.session if connector is not None else None
            if (session is not None and session.transaction_id != event.transaction_id
                    and event.time >= session.started_at):
                return event.connector_id, session, f"superseded by transaction {event.transaction_id}"
        return None

    def _status(self, state: ChargerState, event: ev.StatusChanged) -> None:
        if event.connector_id == 0:
            return  # the whole charger; plug state is per connector
        ending = self.session_ending(event)
        connector = state.connector(event.connector_id)
        if connector.plug != event.plug:
            connector.plug_changed_at = event.time
        connector.plug = event.plug
        if ending is not None:
            # Unplugged or finished: whatever the stop message says later, there is nothing left to charge here.
            self._end_session(connector)

    def _started(self, state: ChargerState, event: ev.TransactionStarted) -> None:
        connector = state.connector(event.connector_id)
        current = connector.session
        if current is not None and current.transaction_id == event.transaction_id:
            return  # a replay after reconnect: the same session, not a new one
        if current is not None and event.time < current.started_at:
            return  # an older transaction replayed from the charger's queue: the newest open session wins
        tag = event.id_tag
        if tag is None and state.last_tag is not None and event.time - state.last_tag[1] <= AUTHORIZE_WINDOW:
            tag = state.last_tag[0]
        connector.session = Session(event.transaction_id, tag, event.time, event.energy_register_kwh,
                                    event.energy_register_kwh)
        connector.plug = ev.PlugState.OCCUPIED
        connector.command = None
        if connector.needs is not None and connector.needs.time < event.time - AUTHORIZE_WINDOW:
            connector.needs = None  # needs of an earlier vehicle

    def _stopped(self, state: ChargerState, event: ev.TransactionStopped) -> None:
        for connector in state.connectors.values():
            if connector.session is not None and connector.session.transaction_id == event.transaction_id:
                self._end_session(connector)

    @staticmethod
    def _end_session(connector: ConnectorState) -> None:
        connector.session = None
        connector.needs = None
        connector.command = None
        connector.rejected = None
        connector.soc_delivered_kwh = 0.0
        connector.readings.soc = None
        connector.readings.battery_temp_c = None

    def _sample(self, state: ChargerState, sample: ev.MeterSample) -> None:
        connector_id = sample.connector_id
        if connector_id == 0 and sample.transaction_id is not None:
            # 1.6 StopTransaction data and some 2.0.1 events name the transaction, not the connector.
            for cid, c in state.connectors.items():
                if c.session is not None and c.session.transaction_id == sample.transaction_id:
                    connector_id = cid
        if connector_id == 0 or sample.location == "Inlet":
            return  # the charger's own grid meter: not a connector's draw
        connector = state.connector(connector_id)
        if not connector.readings.keep(sample):
            return
        if sample.quantity in _DRAW and self.site.has_charger(sample.charger_id) and connector.session is not None:
            # Judged as the readings arrive, not only at ticks: a charger over its limit is caught after the grace
            # period whatever the tick interval (one out of the plan is budgeted at its draw instead).
            charger = self.site.charger(sample.charger_id)
            if self.out_of_service(charger.id, connector_id) is None:
                self._update_compliance(charger, connector_id, connector)
        if sample.phase is not None:
            # Learnt as the readings arrive (the snapshot only reads): which phases the vehicle draws on.
            if sample.quantity is ev.Quantity.CURRENT_A and self.site.has_charger(sample.charger_id):
                self._learn_phases(self.site.charger(sample.charger_id), connector, sample.time)
            return
        session = connector.session
        if session is None:
            return
        if sample.quantity is ev.Quantity.ENERGY_KWH:
            if session.energy_start_kwh is None:
                session.energy_start_kwh = sample.value
            if session.energy_now_kwh is None or sample.value > session.energy_now_kwh:
                session.energy_now_kwh = sample.value  # registers are monotonic; a lower value is a glitch
        elif sample.quantity is ev.Quantity.SOC:
            connector.soc_delivered_kwh = session.delivered_kwh

    # ------------------------------------------------------------------------------ control bookkeeping

    def record_command(self, charger_id: str, connector_id: int, command: Command) -> None:
        # ``over_since`` survives a new command on purpose: a charger drawing above every limit it was given must
        # not escape detection because the optimizer keeps adjusting its limit.
        connector = self.charger(charger_id).connector(connector_id)
        connector.command = command
        connector.failing_since = None

    def record_failure(self, charger_id: str, connector_id: int, now: datetime) -> None:
        """A profile call timed out or failed. Until one succeeds the charger runs on an old or fail-safe profile,
        so after one more interval it is budgeted as uncontrolled (it stays so until it answers or reconnects)."""
        connector = self.charger(charger_id).connector(connector_id)
        if connector.failing_since is None:
            connector.failing_since = now

    def record_rejection(self, charger_id: str, connector_id: int, reason: str) -> None:
        self.charger(charger_id).connector(connector_id).rejected = reason

    def open_sessions(self) -> list[tuple[str, int, Session]]:
        return [
            (cid, conn_id, conn.session)
            for cid, state in self.chargers.items()
            for conn_id, conn in sorted(state.connectors.items())
            if conn.session is not None
        ]

    def restore_session(self, charger_id: str, connector_id: int, session: Session) -> Session | None:
        """Resume a session read from the store after a restart (before the charger reconnects). A connector
        holds one transaction: the newest open session wins; returns the one left out (to close), if any."""
        connector = self.charger(charger_id).connector(connector_id)
        current = connector.session
        if current is not None and current.started_at >= session.started_at:
            return session
        connector.session = session
        connector.plug = ev.PlugState.OCCUPIED
        return current

    def reachable(self, charger_id: str) -> bool:
        """Connected and set up: the controller may send it profiles (see ``charger_setup``)."""
        state = self.chargers.get(charger_id)
        return state is not None and state.connected and state.set_up

    # ------------------------------------------------------------------------------ snapshot

    def _fresh(self, reading: Reading | None, now: datetime) -> bool:
        # A reading from further ahead than the normaliser tolerates means our clock jumped back: not fresh.
        return reading is not None and -MAX_FUTURE <= now - reading.at <= self.stale_after

    def measured_power_kw(self, charger: Charger, connector: ConnectorState, now: datetime) -> float | None:
        """Fresh measured draw of a connector, from power or else from per-phase current; None when stale.

        A reading taken before the charger accepted a lower limit for this session describes the old limit: the
        draw is then at most the new one (a charger that does not follow is caught by the compliance check and
        leaves control, and then its readings count as they are)."""
        power = connector.readings.power_kw
        if self._fresh(power, now):
            assert power is not None
            return self._not_above_accepted(connector, power.value, power.at)
        fresh = [r for r in connector.readings.phase_current_a.values() if self._fresh(r, now)]
        currents = [r.value for r in fresh]
        total = connector.readings.current_a
        if not currents and self._fresh(total, now):
            assert total is not None
            fresh = [total]
            currents = [total.value] * charger.phases
        if currents:
            taken_at = min(r.at for r in fresh)
            return self._not_above_accepted(connector, sum(currents) * charger.voltage_v / 1000.0, taken_at)
        return None

    @staticmethod
    def _not_above_accepted(connector: ConnectorState, measured_kw: float, taken_at: datetime) -> float:
        session, command = connector.session, connector.command
        if (session is None or command is None or command.accepted_at is None or session.ignoring_limit
                or command.transaction_id != session.transaction_id or taken_at >= command.accepted_at):
            return measured_kw
        return min(measured_kw, command.limit_kw)

    def _observe_vehicle_limit(self, charger: Charger, connector: ConnectorState, now: datetime) -> None:
        """Update what the session's vehicle is seen to take (``optimizer.vehicle_limit``): judged against the
        last accepted command once the vehicle has had two meter intervals to follow it."""
        session = connector.session
        assert session is not None
        command = connector.command
        allowed_kw: float | None = None
        if (command is not None and command.transaction_id == session.transaction_id
                and now - command.sent_at >= timedelta(seconds=2 * self.site.ocpp.meter_interval_s)):
            allowed_kw = command.limit_kw
        drawn_kw = self.measured_power_kw(charger, connector, now) if allowed_kw is not None else None
        session.vehicle_limit = infer_vehicle_limit(session.vehicle_limit, allowed_kw, drawn_kw, now)

    def _update_compliance(self, charger: Charger, connector_id: int, connector: ConnectorState) -> None:
        """Advance the verdict on whether the connector follows its accepted limit (``compliance``): on the
        meter's time, so that readings queued behind a backlog still count."""
        session, command = connector.session, connector.command
        if (session is None or command is None or session.ignoring_limit
                or command.transaction_id != session.transaction_id):
            return
        together = timedelta(seconds=max(1, self.site.ocpp.meter_interval_s))
        draw = latest_draw(connector.readings, charger.voltage_v, charger.phases, together)
        if draw is None or draw.taken_at < settled_at(command, self.ignore_grace):
            return  # nothing read since the charger had time to follow: no verdict either way
        connected_at = self.charger(charger.id).connected_at
        if connected_at is not None and draw.taken_at < connected_at:
            # Queued while the charger was offline: it may rightly have run on its fail-safe profiles then.
            return
        if not exceeds(draw, command, self.site.ocpp.deadband_a):
            session.over_since = None
            return
        if session.over_since is None:
            session.over_since = draw.taken_at
        elif draw.taken_at - session.over_since >= self.ignore_grace:
            session.ignoring_limit = True
            log.warning("charger=%s connector=%d ignores its limit (%.1f A / %.1f kW accepted, %s drawn); "
                        "budgeting what it draws", charger.id, connector_id, command.limit_a or 0.0,
                        command.limit_kw, f"{draw.power_kw:.1f} kW" if draw.power_kw is not None else "?")

    def fallback_kw(self, charger_id: str) -> float:
        """What a whole charger may draw on its fail-safe profiles alone (its maximum if it never took them)."""
        return self._fallback_kw(self.site.charger(charger_id), self.chargers.get(charger_id))

    def _fallback_kw(self, charger: Charger, state: ChargerState | None) -> float:
        """Worst case for a connector we cannot measure: the fail-safe share if the charger took it, else its max
        (a charger that never took our share may run on its own defaults)."""
        share = self.failsafe_kw.get(charger.id)
        if share is not None and state is not None and state.failsafe_accepted:
            return share
        return charger.max_power_kw_for(charger.phases) * charger.connectors

    def fallback_spread(self, charger_id: str) -> int:
        """The fewest site phases ``fallback_kw`` may land on: an accepted share's (1 when it went out in W); a
        charger at its maximum is held per phase by its own current limit, so its phase count."""
        charger, state = self.site.charger(charger_id), self.chargers.get(charger_id)  # reads only
        if self.failsafe_kw.get(charger_id) is not None and state is not None and state.failsafe_accepted:
            return self.failsafe_spread.get(charger_id, 1)
        return max(1, charger.phases)

    def _learn_phases(self, charger: Charger, connector: ConnectorState, now: datetime) -> None:
        """Add to the session the site phases its vehicle draws on: from a fresh per-phase current reading of every
        charger phase, taken during the session, while it clearly charges. A phase counts as drawn above 1 A and
        a fifth of the strongest phase (a 3-phase vehicle draws on all three at once, so one full reading
        suffices; a phase once seen stays for the session)."""
        session = connector.session
        if session is None or charger.dc:
            return
        wired = wired_phases(charger)
        readings = [connector.readings.phase_current_a.get(f"L{k + 1}") for k in range(len(wired))]
        if any(r is None or not self._fresh(r, now) or r.at < session.started_at for r in readings):
            return
        values = [r.value for r in readings if r is not None]
        if not all(math.isfinite(v) for v in values):
            return
        strongest = max(values)
        if strongest < LEARN_MIN_A:
            return
        drawn = {wired[k] for k, value in enumerate(values) if value > max(1.0, 0.2 * strongest)}
        session.drawn_phases = session.drawn_phases | frozenset(drawn)

    def _phases_in_use(self, charger: Charger, connector: ConnectorState, now: datetime) -> int | None:
        """The phase count of the vehicle where known: ISO 15118 needs, else the phases it was measured on."""
        if connector.needs is not None and connector.needs.phases is not None:
            return connector.needs.phases
        if connector.session is not None and not charger.dc and connector.session.drawn_phases:
            return len(connector.session.drawn_phases)
        return None

    def _session_state(self, charger: Charger, connector_id: int, connector: ConnectorState, now: datetime
                       ) -> SessionState:
        session = connector.session
        assert session is not None
        delivered = session.delivered_kwh
        needs = connector.needs
        phases = self._phases_in_use(charger, connector, now)
        soc: float | None = None
        soc_source = ValueSource.ESTIMATED
        soc_at: datetime | None = None  # when the SoC used was read (its age widens the need's margin)
        energy_needed: float | None = None
        capacity = needs.capacity_kwh if needs is not None else None
        if needs is not None and needs.energy_kwh is not None:
            energy_needed = max(0.0, needs.energy_kwh - (delivered - connector.needs_delivered_kwh))
        soc_reading = connector.readings.soc
        if needs is not None and needs.soc is not None and (soc_reading is None or soc_reading.at <= needs.time):
            soc, soc_source = needs.soc, ValueSource.ISO15118  # advanced by the meter: its age adds nothing
            if capacity:
                soc = min(1.0, soc + (delivered - connector.needs_delivered_kwh) / capacity)
        elif soc_reading is not None:
            soc, soc_source, soc_at = soc_reading.value, ValueSource.MEASURED, soc_reading.at
            if not self._fresh(soc_reading, now):
                # Advance a stale SoC by what was delivered since, using the best-known capacity.
                battery = capacity or self._roster_capacity(session.id_tag)
                soc = min(1.0, soc + (delivered - connector.soc_delivered_kwh) / battery)
                soc_source = ValueSource.ESTIMATED
        max_power: float | None = None
        if needs is not None:
            if needs.max_power_kw is not None:
                max_power = needs.max_power_kw
            elif needs.max_current_a is not None and not charger.dc:
                max_power = charger.power_kw_at(needs.max_current_a, needs.phases or phases or charger.phases)
        if session.vehicle_limit is not None:
            drawn_limit = session.vehicle_limit.limit_kw
            max_power = drawn_limit if max_power is None else min(max_power, drawn_limit)
        if session.id_tag is not None and not authorization.decide(self.site, session.id_tag, now).accepted:
            # A refused token (ocpp.authorize: roster) that charges anyway is planned nothing: its TxProfile is 0.
            max_power = 0.0
        temp = connector.readings.battery_temp_c
        state = SessionState(
            charger_id=charger.id,
            connector_id=connector_id,
            soc=soc,
            soc_source=soc_source,
            energy_needed_kwh=energy_needed,
            battery_kwh=capacity,
            departure=needs.departure if needs is not None else None,
            max_power_kw=max_power,
            battery_temp_c=temp.value if temp is not None else None,
            temp_source=ValueSource.MEASURED if self._fresh(temp, now) else ValueSource.ESTIMATED,
            id_tag=session.id_tag,
            phases=phases,
            site_phases=tuple(p for p in wired_phases(charger) if p in session.drawn_phases) or None,
            plugged_in_at=session.started_at,
            energy_delivered_kwh=delivered,
            soc_age_s=max(0.0, (now - soc_at).total_seconds()) if soc_at is not None else None,
            power_kw=self.measured_power_kw(charger, connector, now),
        )
        return self.inputs.apply_session(state, session.transaction_id, now)

    def session_state(self, charger_id: str, connector_id: int, now: datetime) -> SessionState | None:
        """The open session on a connector as the next snapshot will show it (no side effects), or None."""
        state = self.chargers.get(charger_id)
        connector = state.connectors.get(connector_id) if state is not None else None
        if connector is None or connector.session is None or not self.site.has_charger(charger_id):
            return None
        return self._session_state(self.site.charger(charger_id), connector_id, connector, now)

    def _roster_capacity(self, id_tag: str | None) -> float:
        vehicle = self.site.vehicle_for_tag(id_tag) if id_tag else None
        return (vehicle or self.site.fleet_defaults).battery_kwh

    def controllable(self, charger_id: str, connector_id: int) -> bool:
        state = self.chargers.get(charger_id)
        if state is None or not state.connected or state.monitor_only:
            return False
        connector = state.connectors.get(connector_id)
        return (connector is not None and connector.session is not None and connector.rejected is None
                and not connector.session.ignoring_limit and self.out_of_service(charger_id, connector_id) is None)

    def update(self, now: datetime) -> None:
        """Advance what depends on time having passed, once per tick before ``snapshot``: whether a charger has
        ignored its limit for longer than the grace period, when a failing connector is retried, what each
        vehicle is seen to take, and which operator inputs belong to sessions that ended."""
        for charger in self.site.chargers:
            state = self.chargers.get(charger.id)
            if state is None or not state.connected:
                continue
            for connector_id, connector in sorted(state.connectors.items()):
                if connector.session is None or not 1 <= connector_id <= charger.connectors:
                    continue
                if self.out_of_service(charger.id, connector_id) is not None:
                    continue  # out of the plan: budgeted at what it draws (snapshot), not judged against a limit
                self._update_compliance(charger, connector_id, connector)
                if connector.failing_since is not None and now - connector.failing_since >= self.retry_failing_after:
                    connector.failing_since = None
                if self._planned(connector, now):
                    self._observe_vehicle_limit(charger, connector, now)
        self.inputs.forget_ended({(cid, conn_id): s.transaction_id for cid, conn_id, s in self.open_sessions()})
        self.inputs.expire(now)

    def _planned(self, connector: ConnectorState, now: datetime) -> bool:
        """True when the connector's session goes to the optimizer; else it is budgeted as uncontrolled load."""
        session = connector.session
        failing = connector.failing_since is not None and now - connector.failing_since >= self.failing_after
        return session is not None and connector.rejected is None and not session.ignoring_limit and not failing

    def snapshot(self, now: datetime) -> Snapshot:
        """The depot at ``now`` for the optimizer, read without changing anything (call ``update`` first to let
        time-dependent judgements advance). Only site chargers appear; monitor-only ones cannot be placed in a
        circuit, so they are logged but not budgeted."""
        sessions: list[SessionState] = []
        uncontrolled: list[UncontrolledLoad] = []
        for charger in self.site.chargers:
            state = self.chargers.get(charger.id)
            if state is None or not state.connected or not state.set_up:
                # Not set up yet (just connected, its boot or resync still running) is treated like offline:
                # nothing can be sent to it, so it runs on the fail-safe profiles it holds, or, if it never took
                # ours, on its own defaults (its maximum). A charger being set up is at its share within seconds
                # (the set-up sends it first thing).
                why = "disconnected" if state is None or not state.connected else "connecting"
                at_share = (state is not None and (state.failsafe_accepted or state.connected)
                            and charger.id in self.failsafe_kw)
                uncontrolled.append(UncontrolledLoad(
                    charger.id, 0, self.failsafe_kw[charger.id] if at_share else self._fallback_kw(charger, state),
                    self.failsafe_spread.get(charger.id, 1) if at_share else self.fallback_spread(charger.id),
                    f"{why}: budgeted at its fail-safe limit" if at_share
                    else f"{why} and never took its fail-safe: budgeted at its maximum"))
                continue
            for connector_id, connector in sorted(state.connectors.items()):
                if connector.session is None or not 1 <= connector_id <= charger.connectors:
                    continue
                out = self.out_of_service(charger.id, connector_id)
                if out is not None:
                    # Faulted or unavailable (condition monitoring): out of the plan, budgeted at what it draws.
                    measured = self.measured_power_kw(charger, connector, now)
                    uncontrolled.append(UncontrolledLoad(
                        charger.id, connector_id, max(0.0, measured or 0.0),
                        self._phases_in_use(charger, connector, now) or charger.phases, f"out of service: {out}"))
                    continue
                if self._planned(connector, now):
                    sessions.append(self._session_state(charger, connector_id, connector, now))
                    continue
                measured = self.measured_power_kw(charger, connector, now)
                fallback = self._fallback_kw(charger, state) / charger.connectors
                if connector.rejected is not None:
                    reason = f"profile rejected: {connector.rejected}"
                elif connector.session.ignoring_limit:
                    reason = "draws more than its limit"
                else:
                    reason = "does not answer profile calls: budgeted at its fail-safe limit"
                    # Its old TxProfile lapses to the fail-safe default, whatever it draws at this instant.
                    measured = None if measured is None or measured <= fallback else measured
                # A measured draw on phases not known may all be on one phase; the fall-back lands as the fail-safe.
                draw, spread = (fallback, self.fallback_spread(charger.id)) if measured is None else (measured, 1)
                uncontrolled.append(UncontrolledLoad(
                    charger.id, connector_id, max(0.0, draw),
                    self._phases_in_use(charger, connector, now) or spread, reason))
        return Snapshot(time=now, sessions=tuple(sessions), uncontrolled=tuple(uncontrolled),
                        grid_cap_kw=self.inputs.grid_cap_kw(now), grid_cap_until=self.inputs.grid_cap_until(now),
                        base_load_kw=self.base_load_kw(now), external_limits=self.external.in_force(now))

    def observe(self, now: datetime) -> Snapshot:
        """``update`` then ``snapshot``: what a tick does."""
        self.update(now)
        return self.snapshot(now)

    def monitored_kw(self) -> float:
        """What monitor-only chargers (``ocpp.accept_unknown``) draw: per connector in a session, its last power
        reading (or per-phase currents at the site voltage), however old — they are not in the site file, so
        there is no maximum to fall back to, and the last value is the best guess until their session ends."""
        total = 0.0
        for state in self.chargers.values():
            if not state.monitor_only:
                continue
            for connector_id, connector in state.connectors.items():
                if connector_id < 1 or connector.session is None:
                    continue
                power = connector.readings.power_kw
                if power is not None:
                    total += max(0.0, power.value)
                else:
                    currents_a = sum(max(0.0, r.value) for r in connector.readings.phase_current_a.values())
                    total += currents_a * self.site.voltage_v / 1000.0
        return total

    def base_load_kw(self, now: datetime) -> float | None:
        """The non-EV load to plan with, or None to let the optimizer use the site's profile: monitor-only
        chargers draw from the same connection, so their power is added to the highest profile value of the
        next hour (the optimizer takes a measured base load as valid for that long)."""
        monitored = self.monitored_kw()
        if monitored <= 0.0:
            return None
        tz = zoneinfo.ZoneInfo(self.site.timezone)
        hours = {(now + timedelta(hours=h)).astimezone(tz).hour for h in range(math.ceil(FINE_H) + 1)}
        return max(self.site.base_load.at_hour(h) for h in hours) + monitored

    # ------------------------------------------------------------------------------ display

    def views(self, now: datetime) -> list[ConnectorView]:
        out: list[ConnectorView] = []
        for charger in self.site.chargers:
            state = self.charger(charger.id)
            snapshot_soc = {
                s.connector_id: s for s in (
                    self._session_state(charger, cid, c, now)
                    for cid, c in state.connectors.items() if c.session is not None and 1 <= cid <= charger.connectors
                )
            }
            for connector_id in range(1, charger.connectors + 1):
                connector = state.connectors.get(connector_id, ConnectorState())
                session_state = snapshot_soc.get(connector_id)
                temp = connector.readings.battery_temp_c or connector.readings.charger_temp_c
                note = ""
                if connector.rejected:
                    note = "profile rejected"
                elif connector.session is not None and connector.session.ignoring_limit:
                    note = "ignores limit"
                elif not state.connected:
                    note = "offline"
                out.append(ConnectorView(
                    charger_id=charger.id,
                    connector_id=connector_id,
                    connected=state.connected,
                    plug=connector.plug,
                    transaction_id=connector.session.transaction_id if connector.session else None,
                    soc=session_state.soc if session_state is not None else None,
                    soc_source=session_state.soc_source if session_state is not None else None,
                    power_kw=self.measured_power_kw(charger, connector, now),
                    limit_kw=connector.command.limit_kw if connector.command else None,
                    limit_a=connector.command.limit_a if connector.command else None,
                    temp_c=temp.value if temp is not None else None,
                    controlled=self.controllable(charger.id, connector_id),
                    note=note,
                ))
        return out

    def site_power_kw(self, now: datetime) -> float:
        """Measured EV power of the whole site (fresh values only)."""
        total = 0.0
        for charger in self.site.chargers:
            state = self.chargers.get(charger.id)
            if state is None:
                continue
            for connector_id, connector in state.connectors.items():
                if connector_id >= 1:
                    total += self.measured_power_kw(charger, connector, now) or 0.0
        return total


def _in_service(charger_id: str, connector_id: int) -> str | None:
    return None
