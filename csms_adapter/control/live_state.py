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

The jobs are split by module: events and control bookkeeping here; what readings say in ``live_readings``; the
judgements that advance each tick in ``live_judgements``; the optimizer's snapshot in ``live_snapshot``; display
rows in ``live_views``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from csms_adapter.control import live_judgements, live_snapshot, live_views, vehicle_stops
from csms_adapter.control.connector_state import ChargerState, Command, ConnectorState, ConnectorView, Session
from csms_adapter.control.external_limits import ExternalLimitBook
from csms_adapter.control.live_readings import learn_phases, measured_power_kw
from csms_adapter.control.operator_inputs import OperatorInputs
from csms_adapter.protocol import events as ev
from optimizer.domain import Charger, SessionState, Site, Snapshot
from optimizer.vehicle_limit import MIN_JUDGED_KW

log = logging.getLogger("depotctl.live_state")

# A tag presented shortly before a transaction starts (2.0.1 starts at plug-in, often without a token) is its tag.
AUTHORIZE_WINDOW = timedelta(minutes=5)
_DRAW = frozenset({ev.Quantity.CURRENT_A, ev.Quantity.POWER_KW})  # readings that show a draw
# 1.6 statuses that say the connector's transaction is over while the plug may still be in (§4.9 Finishing).
_SESSION_OVER = frozenset({"Finishing"})


class LiveState:
    """Consumes events (``apply``) and answers snapshots. Not thread-safe: used from the event loop only."""

    def __init__(self, site: Site, failsafe_kw: dict[str, float], *, ignore_grace_s: float | None = None) -> None:
        self.site = site
        self.failing_after = timedelta(seconds=site.control.interval_s)
        # A failing connector is planned for again (so its call is retried) once per profile lifetime.
        self.retry_failing_after = timedelta(seconds=site.control.interval_s * site.ocpp.profile_ttl_intervals)
        # How long a TxProfile holds (dispatch sends it with this validity): past it the charger rightly falls back
        # to its default and fail-safe profiles, so a lapsed command is no yardstick for compliance.
        self.command_valid = timedelta(seconds=site.control.interval_s * site.ocpp.profile_ttl_intervals)
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
        self._compliance_due: set[tuple[str, int]] = set()  # connectors with draw readings not yet judged
        self._due_time: datetime | None = None  # when those readings were taken

    def charger(self, charger_id: str) -> ChargerState:
        return self.chargers.setdefault(charger_id, ChargerState())

    # ------------------------------------------------------------------------------ events

    def apply(self, event: ev.Event) -> None:
        if self._compliance_due and not (isinstance(event, ev.MeterSample) and event.time == self._due_time):
            self.judge_readings()  # the readings taken together before this event are complete: judge them once
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
        connector.status = event.raw_status
        session = connector.session
        if session is not None and event.time >= session.started_at:
            session.ev_suspended_at = event.time if event.raw_status == vehicle_stops.SUSPENDED_EV else None
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
                                    event.energy_register_kwh,
                                    energy_at=event.time if event.energy_register_kwh is not None else None)
        connector.plug = ev.PlugState.OCCUPIED
        connector.command = None
        connector.rejected = None  # a refusal concerned the transaction it was sent for, not this one
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
            # period whatever the tick interval. One message carries up to four draw readings taken together
            # (power, three phase currents): ``judge_readings`` judges them once, not once per reading.
            self._compliance_due.add((sample.charger_id, connector_id))
            self._due_time = sample.time
        if sample.phase is not None:
            # Learnt as the readings arrive (the snapshot only reads): which phases the vehicle draws on.
            if sample.quantity is ev.Quantity.CURRENT_A and self.site.has_charger(sample.charger_id):
                learn_phases(self.site.charger(sample.charger_id), connector, sample.time, self.stale_after)
            return
        session = connector.session
        if session is None:
            return
        if sample.quantity is ev.Quantity.ENERGY_KWH:
            if session.energy_start_kwh is None:
                session.energy_start_kwh = sample.value
            if session.energy_now_kwh is None or sample.value > session.energy_now_kwh:
                session.energy_now_kwh = sample.value  # registers are monotonic; a lower value is a glitch
                session.energy_at = sample.time
                line = live_snapshot.soc_line(self.site, sample.charger_id, connector) \
                    if session.soc_track_at == sample.time else None
                if line is not None:
                    # The SoC of this same moment came first in the message: pair it with this register.
                    connector.soc_delivered_kwh = session.delivered_kwh
                    session.soc_track = session.soc_track.repaired(session.delivered_kwh, line)
        elif sample.quantity is ev.Quantity.SOC:
            connector.soc_delivered_kwh = session.delivered_kwh
            line = live_snapshot.soc_line(self.site, sample.charger_id, connector)
            if line is not None:
                session.soc_track = session.soc_track.add(sample.value, session.delivered_kwh, line)
                session.soc_track_at = sample.time

    # ------------------------------------------------------------------------------ control bookkeeping

    def record_command(self, charger_id: str, connector_id: int, command: Command) -> None:
        # ``over_since`` survives a new command on purpose: a charger drawing above every limit it was given must
        # not escape detection because the optimizer keeps adjusting its limit.
        self.judge_readings()  # readings that arrived under the previous command are judged against it
        connector = self.charger(charger_id).connector(connector_id)
        connector.command = command
        connector.failing_since = None
        session = connector.session
        if session is not None and command.transaction_id == session.transaction_id:
            # The next settled reading says whether the vehicle takes any of it (``vehicle_stops.offer_refused``).
            session.offer_watch_from = command.sent_at if command.limit_kw >= MIN_JUDGED_KW else None

    def record_failure(self, charger_id: str, connector_id: int, now: datetime) -> None:
        """A profile call timed out or failed. Until one succeeds the charger runs on an old or fail-safe profile,
        so after one more interval it is budgeted as uncontrolled (it stays so until it answers or reconnects)."""
        connector = self.charger(charger_id).connector(connector_id)
        if connector.failing_since is None:
            connector.failing_since = now

    def record_rejection(self, charger_id: str, connector_id: int, transaction_id: str, reason: str) -> bool:
        """The charger refused the TxProfile sent for ``transaction_id``. That says something about the connector
        only while that transaction is still its open session: a vehicle that leaves while its profile is on the
        way gets it refused (no such transaction any more), and that refusal must not take the connector, and so
        the next vehicle to plug in there, out of the plan. Returns True when the connector is now refused."""
        connector = self.charger(charger_id).connector(connector_id)
        session = connector.session
        if session is None or session.transaction_id != transaction_id:
            return False
        connector.rejected = reason
        return True

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


    def controllable(self, charger_id: str, connector_id: int) -> bool:
        state = self.chargers.get(charger_id)
        if state is None or not state.connected or state.monitor_only:
            return False
        connector = state.connectors.get(connector_id)
        return (connector is not None and connector.session is not None and connector.rejected is None
                and not connector.session.ignoring_limit and self.out_of_service(charger_id, connector_id) is None)

    def planned(self, connector: ConnectorState, now: datetime) -> bool:
        """True when the connector's session goes to the optimizer; else it is budgeted as uncontrolled load."""
        session = connector.session
        failing = connector.failing_since is not None and now - connector.failing_since >= self.failing_after
        return session is not None and connector.rejected is None and not session.ignoring_limit and not failing

    def fallback_kw(self, charger_id: str) -> float:
        """What a whole charger may draw on its fail-safe profiles alone (its maximum if it never took them)."""
        return self.fallback_kw_for(self.site.charger(charger_id), self.chargers.get(charger_id))

    def fallback_kw_for(self, charger: Charger, state: ChargerState | None) -> float:
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

    # ------------------------------------------------------------------------------ readings and judgements

    def measured_power_kw(self, charger: Charger, connector: ConnectorState, now: datetime) -> float | None:
        """Fresh measured draw of a connector (``live_readings.measured_power_kw``); None when stale."""
        return measured_power_kw(charger, connector, now, self.stale_after)

    def judge_readings(self) -> None:
        """Whether the connectors that got draw readings since the last call follow their limit
        (``live_judgements.update_compliance``): once per set of readings taken together, when the next event
        shows that set complete, after each meter message (the controller) and by ``update``. A connector out of the
        plan is budgeted at its draw instead and not judged."""
        due, self._compliance_due = self._compliance_due, set()
        for charger_id, connector_id in sorted(due):
            state = self.chargers.get(charger_id)
            connector = state.connectors.get(connector_id) if state is not None else None
            if connector is None or connector.session is None or not self.site.has_charger(charger_id):
                continue
            if self.out_of_service(charger_id, connector_id) is None:
                live_judgements.update_compliance(self, self.site.charger(charger_id), connector_id, connector)

    def update(self, now: datetime) -> None:
        """Advance what depends on time having passed, once per tick before ``snapshot``
        (``csms_adapter.control.live_judgements``)."""
        self.judge_readings()
        live_judgements.advance(self, now)

    # ------------------------------------------------------------------------------ snapshot and display

    def snapshot(self, now: datetime) -> Snapshot:
        """The depot at ``now`` for the optimizer, read without changing anything (call ``update`` first);
        see ``csms_adapter.control.live_snapshot``."""
        return live_snapshot.build_snapshot(self, now)

    def observe(self, now: datetime) -> Snapshot:
        """``update`` then ``snapshot``: what a tick does."""
        self.update(now)
        return self.snapshot(now)

    def session_state(self, charger_id: str, connector_id: int, now: datetime) -> SessionState | None:
        """The open session on a connector as the next snapshot will show it (no side effects), or None."""
        return live_snapshot.session_state(self, charger_id, connector_id, now)

    def monitored_kw(self) -> float:
        """What monitor-only chargers draw (``live_snapshot.monitored_kw``)."""
        return live_snapshot.monitored_kw(self)

    def base_load_kw(self, now: datetime) -> float | None:
        """The non-EV load to plan with, or None for the site's profile (``live_snapshot.base_load_kw``)."""
        return live_snapshot.base_load_kw(self, now)

    def views(self, now: datetime) -> list[ConnectorView]:
        return live_views.connector_views(self, now)

    def site_power_kw(self, now: datetime) -> float:
        """Measured EV power of the whole site (fresh values only)."""
        return live_views.site_power_kw(self, now)


def _in_service(charger_id: str, connector_id: int) -> str | None:
    return None
