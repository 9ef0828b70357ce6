"""Keeps the fail-safe shares in force fitting the lowest limit in force and what is known of each charger
(docs/safety-phases.md).

The shares (``failsafe.compute_shares``) depend on the external import cap in force and on the unit each charger's
share goes out in (A: a current per phase; W or not yet known: possibly all on one phase). When either changes they
are recomputed and re-sent to every connected charger that holds a share: a share that falls goes out at once, one
that rises only when it fits with what every other charger holds right now (``failsafe.raises_that_fit``), so no
moment has more out than the site carries. A held-back raise is retried every tick.

Recomputing is O(chargers) (tens of ms at a thousand), so a boot storm must not recompute once per charger on the
event loop: a unit that can only make a charger's share land more spread out (W assumed, A learnt) is folded into
one rebalance at most ``REBALANCE_DELAY_S`` later, with every other unit learnt meanwhile; until then the shares
stay the more cautious ones. A charger about to be sent its share gets that rebalance at once unless one ran within
``REBALANCE_DELAY_S`` (a charger booting alone gets its exact share first time; in a storm some get the cautious
one, raised by the fold). A unit that lets a share land more narrowly (A assumed, only W supported) is rebalanced
at once, before that charger's own share goes out.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from csms_adapter.control.dispatch import Dispatcher
from csms_adapter.control.failsafe import (
    FailsafeShare,
    HeldShare,
    apply_failsafe,
    compute_shares,
    profile_unit,
    raises_that_fit,
    share_load,
    worst_case_ev_budget_kw,
)
from csms_adapter.control.live_state import LiveState
from csms_adapter.errors import ChargerError
from csms_adapter.protocol.link import Capabilities, ChargerLink, Supervisor
from optimizer.circuits import PhaseLoad, wired_phases
from optimizer.domain import RateUnit, Site

log = logging.getLogger("depotctl.failsafe")

# The longest a learnt unit that can only raise shares waits to be folded into the shares (boot storms).
REBALANCE_DELAY_S = 0.5


class FailsafeKeeper:
    def __init__(self, site: Site, live: LiveState, dispatcher: Dispatcher, links: Mapping[str, ChargerLink],
                 capabilities: Mapping[str, Capabilities], accepted: set[str], supervisor: Supervisor,
                 shares: dict[str, FailsafeShare], clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        """``shares``: the shares before any unit is known (``compute_shares(site)``); ``accepted``: chargers whose
        boot was accepted (a live set owned by the controller)."""
        self.site = site
        self.live = live
        self.dispatcher = dispatcher
        self.links = links
        self.capabilities = capabilities
        self.accepted = accepted
        self.supervisor = supervisor
        self.shares = shares
        self.units: dict[str, RateUnit] = {}  # the unit each charger's profiles go out in, once its caps are read
        self._cap_kw: float | None = None  # an external cap that lowers the day's lowest budget, if any
        self._key: tuple[float | None, tuple[tuple[str, RateUnit], ...]] = (None, ())
        self._sending: set[str] = set()  # chargers with a fail-safe call in flight
        self._failed: set[str] = set()  # refused or failed: what they hold is not known
        self._later: asyncio.TimerHandle | None = None  # a rebalance folded over several learnt units
        self.recomputes = 0  # how often the shares were recomputed (a boot storm must not do it per charger)
        self._recomputed_at = -math.inf  # event-loop time of the last recompute
        self.clock = clock
        # Told what each charger holds after every fail-safe call (None: not known), so a restart remembers it.
        self.on_held: Callable[[str, HeldShare | None], None] | None = None

    def restore(self, held: Mapping[str, HeldShare]) -> None:
        """Take back what each charger held when the controller last stopped: until it reconnects and is sent
        its share again, an offline charger is budgeted at that share instead of at its maximum."""
        for charger_id, share in held.items():
            if not self.site.has_charger(charger_id):
                continue
            self.live.failsafe_kw[charger_id] = share.station_kw
            self.live.failsafe_spread[charger_id] = share.spread
            self.live.charger(charger_id).failsafe_accepted = True

    def setting_up(self, charger_id: str) -> None:
        """``charger_id`` is being set up and gets its share from that path: no update for it meanwhile."""
        self._sending.add(charger_id)

    def set_up_done(self, charger_id: str) -> None:
        self._sending.discard(charger_id)

    def unit_known(self, charger_id: str) -> None:
        """Its capabilities were read: its unit changes where shares may land; recompute and re-send (at once when
        its share may now land more narrowly, else folded into one rebalance within ``REBALANCE_DELAY_S``)."""
        charger = self.site.charger(charger_id)
        narrow_before = _lands_narrowly(self.units.get(charger_id, charger.rate_unit))
        unit = self.units[charger_id] = profile_unit(charger, self.capabilities[charger_id])
        if _lands_narrowly(unit) and not narrow_before:
            self.rebalance()
        elif self._later is None:
            self._later = asyncio.get_running_loop().call_later(REBALANCE_DELAY_S, self._rebalance_later)

    @property
    def folding(self) -> bool:
        """True while learnt units wait to be folded into the shares (``REBALANCE_DELAY_S``)."""
        return self._later is not None

    def _rebalance_later(self) -> None:
        self._later = None
        self.rebalance()

    def close(self) -> None:
        """Drop a rebalance still waiting (the controller stops)."""
        if self._later is not None:
            self._later.cancel()
            self._later = None

    def follow_cap(self, cap_kw: float | None) -> None:
        """The fail-safe always fits the lowest limit in force: an external import cap below the day's lowest
        limit lowers the shares while it holds, and they come back when it goes."""
        lowers = cap_kw is not None and (worst_case_ev_budget_kw(self.site, cap_kw)
                                         < worst_case_ev_budget_kw(self.site) - 1e-6)
        effective = cap_kw if lowers else None
        if effective != self._cap_kw:
            self._cap_kw = effective
            log.info("fail-safe shares follow the import cap: %s kW",
                     "none" if effective is None else f"{effective:g}")
        self.rebalance()

    def _held(self) -> dict[str, tuple[float, PhaseLoad]]:
        """What each charger holds now for ``raises_that_fit``: its accepted share and the unit it went out in; its
        maximum when a fail-safe call failed; else the share it will be given when it connects."""
        out: dict[str, tuple[float, PhaseLoad]] = {}
        for charger in self.site.chargers:
            if charger.id in self._failed:
                # Whatever it holds, its own current limit holds each phase (as live control budgets it).
                out[charger.id] = (charger.max_power_kw_for(charger.phases) * charger.connectors,
                                   share_load(charger, RateUnit.AMPS))
            elif self.live.charger(charger.id).failsafe_accepted and charger.id in self.live.failsafe_kw:
                spread = self.live.failsafe_spread.get(charger.id, 1)
                unit = RateUnit.WATTS if spread == 1 and charger.phases > 1 else RateUnit.AMPS
                out[charger.id] = (self.live.failsafe_kw[charger.id], share_load(charger, unit))
            else:
                out[charger.id] = (self.shares[charger.id].station_kw,
                                   share_load(charger, self.units.get(charger.id, charger.rate_unit)))
        return out

    def rebalance(self) -> None:
        """Recompute the shares when the limit in force or a known unit changed; send each connected charger its
        new share: at once where it falls, and where it rises only once it fits with every other charger as it
        holds now (so no moment has more out than the site carries; a held-back raise is retried next tick)."""
        key = (self._cap_kw, tuple(sorted(self.units.items())))
        if key != self._key:
            self._key = key
            self.shares = compute_shares(self.site, cap_kw=self._cap_kw, units=self.units)
            self.recomputes += 1
            self._recomputed_at = asyncio.get_running_loop().time()
        elif not self._pending_raise():
            return
        held = self._held()
        ready = {cid: self.links[cid] for cid in self.shares
                 if cid in self.links and cid in self.accepted and cid not in self._sending
                 and self.live.charger(cid).connected and self.live.charger(cid).failsafe_accepted}
        wanted: dict[str, tuple[float, PhaseLoad]] = {}
        for cid, link in sorted(ready.items()):
            share = self.shares[cid]
            if share.station_kw < held[cid][0] - 1e-9:
                self._send(link)
            elif share.station_kw > held[cid][0] + 1e-9:
                wanted[cid] = (share.station_kw, share_load(self.site.charger(cid), self.units.get(cid)))
        if wanted:
            for cid in raises_that_fit(self.site, held, wanted, cap_kw=self._cap_kw):
                self._send(ready[cid])

    def _pending_raise(self) -> bool:
        """A raise is only ever sent to a connected charger: one offline (a restored share, say) waits for its
        set-up, which sends the share in force first thing."""
        def pending(cid: str, share: FailsafeShare) -> bool:
            state = self.live.chargers.get(cid)
            return (state is not None and state.connected and state.failsafe_accepted
                    and cid in self.live.failsafe_kw and share.station_kw > self.live.failsafe_kw[cid] + 1e-9)

        return any(pending(cid, share) for cid, share in self.shares.items())

    def _send(self, link: ChargerLink) -> None:
        self._sending.add(link.charger_id)
        self.supervisor.spawn(self.apply(link), f"{link.charger_id}:failsafe-update")

    async def apply(self, link: ChargerLink) -> bool:
        """Send ``link``'s charger its share now (boot, reconnect, update) and book what it accepted; True when the
        charger accepted it."""
        self._sending.add(link.charger_id)
        try:
            return await self._apply(link)
        finally:
            self._sending.discard(link.charger_id)

    async def _apply(self, link: ChargerLink) -> bool:
        loop = asyncio.get_running_loop()
        if self._later is not None and loop.time() - self._recomputed_at >= REBALANCE_DELAY_S:
            self._later.cancel()
            self._rebalance_later()
        charger = self.site.charger(link.charger_id)
        caps = self.capabilities.get(charger.id, Capabilities())
        share = self.shares[charger.id]
        try:
            # Verify past the live profiles' validity: on a reconnect a live station max may still be in force.
            verify_s = max(300, int(self.dispatcher.valid_s) + 60)
            ok = await apply_failsafe(link, charger, share, caps, verify_s=verify_s)
        except ChargerError as exc:
            log.warning("charger=%s fail-safe not set: %s", charger.id, exc.reason)
            ok = False
        if not ok:
            self._failed.add(charger.id)
        else:
            # What it now holds: budgeted at this share, landing per phase as the unit it went out in lets it.
            self._failed.discard(charger.id)
            unit = profile_unit(charger, caps)
            self.live.failsafe_kw[charger.id] = share.station_kw
            self.live.failsafe_spread[charger.id] = (
                1 if unit is RateUnit.WATTS and not charger.dc else max(1, len(wired_phases(charger))))
            self.dispatcher.default_kw[charger.id] = share.default_kw
        self.live.charger(charger.id).failsafe_accepted = ok
        if self.on_held is not None:
            self.on_held(charger.id, HeldShare(share.station_kw, self.live.failsafe_spread[charger.id], self.clock())
                         if ok else None)
        return ok


def _lands_narrowly(unit: RateUnit | None) -> bool:
    """A share not sent in A may land on one phase (``failsafe.share_load``)."""
    return unit is not RateUnit.AMPS
