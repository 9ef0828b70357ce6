"""Limits the chargers report that depotctl did not set, kept until cleared and handed to the optimizer in kW.

- 2.0.1 NotifyChargingLimit (a local energy manager, the grid operator, the operator): kept per (charger, EVSE,
  source) until ClearedChargingLimit for that source, or until its schedule ends. A report without a schedule says
  a limit exists but not how much: it is kept and shown, but cannot be planned under (the charger enforces it; its
  measured draw shows it). A new report of the same source and EVSE replaces the old one.
- 2.0.1 NotifyEVChargingSchedule: the vehicle's own plan. A period where it asks for less than it was offered is
  what the vehicle will take, so the session is planned at most at that; where it asks for as much as it was
  offered it only follows depotctl's limit and is not a ceiling (else a congested tick would stick forever).
  Without an offer to compare with nothing is capped. It lasts until the session ends or the next schedule.

Amps become kW at the charger's phase voltage and the phases the period names (else the charger's).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from csms_adapter.protocol import events as ev
from csms_adapter.protocol.charging_schedules import watts
from optimizer.domain import ExternalLimit, LimitSource, Site

log = logging.getLogger("depotctl.external_limits")

# A vehicle period counts as "asking for less" below this share of its offer.
EV_BELOW_OFFER = 0.95
_REPORTABLE = frozenset(s.value for s in LimitSource if s is not LimitSource.EV)


@dataclass(frozen=True, slots=True)
class ReportedLimit:
    """One external limit as reported, for display: kW per period (empty: the charger gave no value)."""

    charger_id: str
    evse_id: int
    source: str
    reported_at: datetime
    limits: tuple[ExternalLimit, ...]
    grid_critical: bool | None = None


class ExternalLimitBook:
    """Consumes the limit events; ``in_force(now)`` is what the next snapshot plans under."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.reported: dict[tuple[str, int, str], ReportedLimit] = {}
        self.ev_schedules: dict[tuple[str, int], tuple[ExternalLimit, ...]] = {}

    def _kw(self, charger_id: str, period: ev.LimitPeriod) -> float:
        charger = self.site.charger(charger_id)
        return watts(period, charger.voltage_v, charger.phases) / 1000.0

    def apply(self, event: ev.Event) -> None:
        if not self.site.has_charger(event.charger_id):
            return  # a monitor-only charger is not planned
        match event:
            case ev.ChargingLimitReported():
                source = LimitSource(event.source) if event.source in _REPORTABLE else LimitSource.OTHER
                key = (event.charger_id, event.evse_id, source.value)
                limits = tuple(ExternalLimit(event.charger_id, event.evse_id, self._kw(event.charger_id, p), source,
                                             p.start, p.end) for p in event.periods)
                if event.unusable and key in self.reported:
                    limits = self.reported[key].limits  # an unreadable update must not lift a known limit
                self.reported[key] = ReportedLimit(
                    event.charger_id, event.evse_id, source.value, event.time, limits, event.grid_critical)
            case ev.ChargingLimitCleared():
                for gone in [k for k in self.reported if k[0] == event.charger_id and k[2] == event.source
                             and (event.evse_id is None or k[1] == event.evse_id)]:
                    del self.reported[gone]
            case ev.EvScheduleReported():
                evse = (event.charger_id, event.evse_id)
                if not event.accepted or event.offered is None:
                    self.ev_schedules.pop(evse, None)
                    return
                offer_kw = self._kw(event.charger_id, event.offered)
                self.ev_schedules[evse] = tuple(
                    ExternalLimit(event.charger_id, event.evse_id, kw, LimitSource.EV, p.start, p.end)
                    for p in event.periods
                    if (kw := self._kw(event.charger_id, p)) < offer_kw * EV_BELOW_OFFER)
            case ev.TransactionStopped() | ev.TransactionStarted():
                if event.connector_id is not None:
                    self.ev_schedules.pop((event.charger_id, event.connector_id), None)
                else:
                    for ended in [k for k in self.ev_schedules if k[0] == event.charger_id]:
                        del self.ev_schedules[ended]
            case _:
                pass

    def in_force(self, now: datetime) -> tuple[ExternalLimit, ...]:
        """Every limit that has not ended by ``now``; a report whose every period has ended is forgotten."""
        out: list[ExternalLimit] = []
        for key, reported in list(self.reported.items()):
            live = [lim for lim in reported.limits if lim.until is None or lim.until > now]
            if reported.limits and not live:
                log.info("external limit charger=%s evse=%d source=%s ended", *key)
                del self.reported[key]
            out.extend(live)
        for schedule in self.ev_schedules.values():
            out.extend(lim for lim in schedule if lim.until is None or lim.until > now)
        return tuple(out)
