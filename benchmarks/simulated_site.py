"""The simulated depot as the tick sees it (``optimizer.tick.ControlledSite``), behind the live dispatch rules.

``observe`` is the plant's view plus the plug-in slots the live controller would report: every charger with a
free connector may see a vehicle before the next tick. ``apply`` turns the plan into what the chargers are told
with the live dispatcher's pure rules (``optimizer.charger_commands``): each connector's limit in its charger's unit,
rounded down; a raise within ``ocpp.deadband_a`` not sent, so the charger keeps the limit it holds (until that
would lapse; a lower limit is always sent); a live station maximum per charger equal to its connectors' commands plus its plug-in
allowance, with the same deadband, capping what the charger's connectors draw together. The plant then draws
what those limits let through (``benchmarks.plant.charger_allows``).

A vehicle's SoC readings are fitted against its energy register as the live state does (``optimizer.soc_fusion``):
the snapshot carries the fitted SoC and its error, not the latest noisy reading.

Differences from a live depot that stay: a vehicle plugs in only at a tick (so an allowance is never drawn), a
plug-in slot asks for the charger's maximum per free connector (a live charger asks for its fail-safe default
once it took one), and every call is accepted.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from benchmarks.plant import SimulatedDepot, charger_allows
from optimizer import charger_commands as commands
from optimizer.domain import Plan, PlugInSlot, RateUnit, SessionState, Snapshot
from optimizer.needs import DEFAULT_SOC_RESOLUTION
from optimizer.soc_fusion import SocLine, SocTrack


@dataclass(frozen=True, slots=True)
class _Held:
    """A limit a charger holds: what it was told, and when."""

    limit: float
    limit_kw: float
    limit_a: float | None
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class Applied:
    """What one apply did: limits sent, limits kept within the deadband, and the kW each session may draw."""

    sent: int
    unchanged: int
    allowed_kw: dict[int, float]  # by session row


class SimulatedSite:
    def __init__(self, plant: SimulatedDepot) -> None:
        self.plant = plant
        site = plant.scenario.site
        self.site = site
        interval_s = site.control.interval_s
        valid_s = site.ocpp.profile_ttl_intervals * interval_s
        # As dispatch: an unchanged limit is re-sent once it would lapse before the tick after next.
        self.refresh_after_s = max(interval_s, valid_s - 2 * interval_s)
        self._tx: dict[int, _Held] = {}  # by session row (a new session never inherits a limit)
        self._station: dict[str, _Held] = {}
        self._soc_tracks: dict[tuple[str, int, datetime | None], SocTrack] = {}

    async def observe(self, now: datetime) -> Snapshot:
        snapshot = self.plant.observe()
        if snapshot.time != now:
            raise ValueError(f"the simulated depot is at {snapshot.time.isoformat()}, not {now.isoformat()}")
        snapshot = dataclasses.replace(snapshot, sessions=self._fitted_socs(snapshot.sessions))
        busy: dict[str, int] = {}
        for _, session in self.plant.plugged_sessions():
            busy[session.charger_id] = busy.get(session.charger_id, 0) + 1
        slots: list[PlugInSlot] = []
        for charger in self.site.chargers:
            free = charger.connectors - busy.get(charger.id, 0)
            if free > 0:
                slots.append(commands.plug_in_slot(charger, free, charger.max_power_kw_for(charger.phases),
                                                   commands.profile_unit(charger)))
        return dataclasses.replace(snapshot, plug_in=tuple(slots)) if slots else snapshot

    async def apply(self, plan: Plan, snapshot: Snapshot, now: datetime) -> Applied:
        site = self.site
        deadband_a = site.ocpp.deadband_a
        allowed: dict[int, float] = {}
        told: dict[str, list[float]] = {}  # charger → this tick's commands (what its station max adds up)
        sent = unchanged = 0
        rows_by_charger: dict[str, list[int]] = {}
        for row, session in self.plant.plugged_sessions():
            charger = site.charger(session.charger_id)
            rows_by_charger.setdefault(charger.id, []).append(row)
            cp = plan.for_connector(session.charger_id, session.connector_id)
            if cp is None:
                self._tx.pop(row, None)  # nothing planned: nothing allowed
                continue
            unit = commands.profile_unit(charger)
            limit, unit, phases = commands.connector_command(charger, cp, unit)
            told.setdefault(charger.id, []).append(limit)
            limit_kw = commands.limit_kw_of(charger, limit, unit, phases)
            limit_a = limit if unit is RateUnit.AMPS and not charger.dc else None
            held = self._tx.get(row)
            if held is not None and self._fresh(held, now) and commands.within_deadband_kw(
                    charger, limit_kw, held.limit_kw, phases, deadband_a, held.limit_a):
                unchanged += 1
            else:
                held = _Held(limit, limit_kw, limit_a, now)
                self._tx[row] = held
                sent += 1
            allowed[row] = charger_allows(charger, held.limit_kw, held.limit_a, phases)
        extra_kw = {a.charger_id: a.limit_kw for a in plan.plug_in}
        for charger_id, limits in told.items():
            charger = site.charger(charger_id)
            limit, unit, phases = commands.station_limit(charger, commands.profile_unit(charger), limits,
                                                         extra_kw.get(charger_id, 0.0))
            held = self._station.get(charger_id)
            if held is None or not self._fresh(held, now) or not commands.station_limits_within_deadband(
                    charger, limit, held.limit, unit, phases, deadband_a):
                held = _Held(limit, commands.limit_kw_of(charger, limit, unit, phases), None, now)
                self._station[charger_id] = held
            drawn_kw = sum(allowed.get(row, 0.0) for row in rows_by_charger.get(charger_id, ()))
            if drawn_kw > held.limit_kw:
                # The charger shares its station max between its connectors; pro rata is one fair way.
                for row in rows_by_charger[charger_id]:
                    allowed[row] = allowed.get(row, 0.0) * held.limit_kw / drawn_kw
        self.plant.set_allowed(allowed)
        return Applied(sent, unchanged, allowed)

    def _fitted_socs(self, sessions: tuple[SessionState, ...]) -> tuple[SessionState, ...]:
        """Each reported SoC replaced by the line fitted to the session's readings so far."""
        tracks: dict[tuple[str, int, datetime | None], SocTrack] = {}
        out: list[SessionState] = []
        for state in sessions:
            if state.soc is None or state.battery_kwh is None:
                out.append(state)
                continue
            key = (state.charger_id, state.connector_id, state.plugged_in_at)
            line = SocLine(state.battery_kwh, self.site.charger(state.charger_id).efficiency,
                           state.soc_resolution or DEFAULT_SOC_RESOLUTION)
            track = self._soc_tracks.get(key, SocTrack()).add(state.soc, state.energy_delivered_kwh, line)
            tracks[key] = track
            fitted = track.fitted(state.energy_delivered_kwh, line)
            if fitted is not None:
                state = dataclasses.replace(state, soc=fitted.soc, soc_error=fitted.error)
            out.append(state)
        self._soc_tracks = tracks
        return tuple(out)

    def _fresh(self, held: _Held, now: datetime) -> bool:
        return 0 <= (now - held.sent_at).total_seconds() <= self.refresh_after_s
