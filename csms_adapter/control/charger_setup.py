"""What the controller does with a charger once it may talk to it, in order and each step once.

A charger may be talked to once its BootNotification was answered Accepted, or, when it reconnects without
booting (OCPP-J §5.4), once it has shown that it is not booting: its first CALL is something else, or it stays
silent for ``boot_wait_s``. Until then nothing is sent to it, and the dispatcher leaves it alone (its connectors
stay budgeted at the fail-safe share). Then one list of steps runs, in one supervised task per charger:

- after a boot: ``BOOT_STEPS`` (what a fresh charger needs: capabilities, no stale TxProfiles, the fail-safe
  profiles, sampling; then resynchronise status and transactions);
- after a reconnect without boot: ``RECONNECT_STEPS`` (resynchronise, then re-verify the fail-safe).

The lists are the hook for more set-up: a step is a name in ``Step`` and a method here. (2.0.1: GetBaseReport and
the variable monitors of condition monitoring run after the charger is under control, spread over time:
``AFTER_READY_STEPS``; see docs/monitoring.md.)

At most ``MAX_CONCURRENT_SETUPS`` chargers run their steps at once: after a power cut a thousand chargers boot
within seconds, and their set-up calls, all at once, would crowd out the messages the chargers send (a charger
waiting for a slot is budgeted at its fail-safe share, as while its steps run).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from enum import StrEnum

from csms_adapter.control.failsafe_keeper import FailsafeKeeper
from csms_adapter.control.live_state import LiveState
from csms_adapter.errors import ChargerError
from csms_adapter.protocol import events as ev
from csms_adapter.protocol.link import SAMPLED_MEASURANDS, Capabilities, ChargerLink, Clock
from csms_adapter.tasks import cancel_and_wait
from optimizer.domain import Site

log = logging.getLogger("depotctl.setup")

# High enough that a thousand chargers on 1 s cellular round trips are set up within about a minute.
MAX_CONCURRENT_SETUPS = 200

# A reason recorded for a session the charger no longer has (it ended while nobody was listening).
ENDED_WHILE_AWAY = "EndedWhileControllerAway"


class Step(StrEnum):
    CAPABILITIES = "capabilities"
    CLEAR_STALE_TX_PROFILES = "clear stale TxProfiles"
    FAILSAFE = "fail-safe profiles"
    DEVICE_MODEL = "device model and monitors"
    SAMPLING = "sampling"
    STATUS_RESYNC = "status resync"
    TRANSACTIONS = "transaction reconcile"


BOOT_STEPS: dict[str, tuple[Step, ...]] = {
    "1.6": (Step.CAPABILITIES, Step.CLEAR_STALE_TX_PROFILES, Step.FAILSAFE, Step.SAMPLING, Step.STATUS_RESYNC,
            Step.TRANSACTIONS),
    "2.0.1": (Step.CAPABILITIES, Step.CLEAR_STALE_TX_PROFILES, Step.FAILSAFE, Step.SAMPLING, Step.STATUS_RESYNC,
              Step.TRANSACTIONS),
}
# After a boot, once the charger is under control: the 2.0.1 device model (a full inventory report, then the
# variable monitors of condition monitoring). Not needed to control the charger, and heavy (a full report is
# hundreds of variables), so each charger waits a delay of its own within ``spread_s``: a thousand chargers
# booting together after a power cut do not all report at once while their vehicles plug in.
AFTER_READY_STEPS: dict[str, tuple[Step, ...]] = {"1.6": (), "2.0.1": (Step.DEVICE_MODEL,)}
RECONNECT_STEPS: tuple[Step, ...] = (Step.CAPABILITIES, Step.STATUS_RESYNC, Step.TRANSACTIONS, Step.FAILSAFE)


def spread_delay_s(charger_id: str, spread_s: float) -> float:
    """A charger's own delay within ``spread_s``: fixed by its identity (no random source), even over a fleet."""
    return (zlib.crc32(charger_id.encode()) % 10_000) / 10_000 * spread_s


class ChargerSetup:
    """Runs the set-up of each charger connection; at most one run per charger at a time (a newer one replaces
    a run still going, e.g. a BootNotification arriving while a reconnect's steps run)."""

    def __init__(self, site: Site, live: LiveState, capabilities: dict[str, Capabilities],
                 failsafe: FailsafeKeeper, *, clock: Clock, publish: Callable[[ev.Event], None],
                 ready: Callable[[str], None], boot_wait_s: float,
                 on_failsafe: Callable[[str, bool, datetime], None] | None = None, spread_s: float = 0.0,
                 max_concurrent: int = MAX_CONCURRENT_SETUPS) -> None:
        self.site = site
        self.live = live
        self.capabilities = capabilities
        self.failsafe = failsafe  # the shares in force and how they are sent (csms_adapter.control.failsafe_keeper)
        self.clock = clock
        self.publish = publish
        self.ready = ready  # told when a charger's set-up is done
        self.boot_wait_s = boot_wait_s
        self.on_failsafe = on_failsafe  # condition monitoring: a refused fail-safe is an incident
        self.spread_s = spread_s  # after-ready steps of the fleet are spread over this many seconds
        self._running: dict[str, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(max_concurrent)
        self.waiting = 0  # chargers waiting for a set-up slot
        self.runs: list[tuple[str, str, tuple[Step, ...]]] = []  # (charger, "boot"|"reconnect", steps): for tests

    async def after_boot(self, link: ChargerLink) -> None:
        """Runs after the Accepted BootNotification answer is on the wire (never before: some firmwares loop)."""
        await self._run(link, "boot", BOOT_STEPS.get(link.ocpp_version, BOOT_STEPS["2.0.1"]))

    async def after_reconnect(self, link: ChargerLink, first_call: Awaitable[str]) -> None:
        """A charger accepted on an earlier connection is back. Wait until it shows whether it boots: a boot
        runs ``after_boot`` (from the BootNotification handler) and this does nothing."""
        try:
            action = await asyncio.wait_for(asyncio.shield(first_call), self.boot_wait_s)
        except TimeoutError:
            action = None  # silent: it is not booting
        if action == "BootNotification" or not link.connected:
            return
        await self._run(link, "reconnect", RECONNECT_STEPS)

    async def _run(self, link: ChargerLink, kind: str, steps: tuple[Step, ...]) -> None:
        charger_id = link.charger_id
        current = asyncio.current_task()
        previous = self._running.get(charger_id)
        if previous is not None and previous is not current and not previous.done():
            await cancel_and_wait([previous])
        if current is not None:
            self._running[charger_id] = current
        self.runs.append((charger_id, kind, steps))
        self.failsafe.setting_up(charger_id)  # its fail-safe goes out in its steps: no update for it meanwhile
        try:
            async with self._slot():
                for step in steps:
                    if not link.connected:
                        return
                    await self._step(step, link, kind)
            self.ready(charger_id)
            after = AFTER_READY_STEPS.get(link.ocpp_version, ()) if kind == "boot" else ()
            if after:
                await asyncio.sleep(spread_delay_s(charger_id, self.spread_s))
                async with self._slot():
                    for step in after:
                        if not link.connected:
                            return
                        await self._step(step, link, kind)
        finally:
            self.failsafe.set_up_done(charger_id)
            if self._running.get(charger_id) is current:
                del self._running[charger_id]

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self._slots.release()

    async def _step(self, step: Step, link: ChargerLink, kind: str) -> None:
        try:
            match step:
                case Step.CAPABILITIES:
                    if kind == "boot" or link.charger_id not in self.capabilities:
                        await self._capabilities(link)
                case Step.CLEAR_STALE_TX_PROFILES:
                    # A charger that just booted has no transaction: a TxProfile still installed is a stale
                    # leftover that only takes up one of its few profile slots.
                    if await link.clear_tx_profiles():
                        log.info("charger=%s had stale TxProfiles; cleared", link.charger_id)
                case Step.FAILSAFE:
                    await self._failsafe(link)
                case Step.DEVICE_MODEL:
                    await link.configure_monitoring()
                case Step.SAMPLING:
                    await self._sampling(link)
                case Step.STATUS_RESYNC:
                    await link.trigger_status()
                case Step.TRANSACTIONS:
                    await self._transactions(link)
        except ChargerError as exc:
            log.warning("charger=%s set-up step '%s' failed: %s", link.charger_id, step.value, exc.reason)

    async def _capabilities(self, link: ChargerLink) -> None:
        try:
            self.capabilities[link.charger_id] = await link.read_capabilities()
            self.failsafe.unit_known(link.charger_id)
        except ChargerError as exc:
            log.warning("charger=%s capabilities unknown (%s); assuming A and W", link.charger_id, exc.reason)

    async def _failsafe(self, link: ChargerLink) -> None:
        ok = await self.failsafe.apply(link)
        if self.on_failsafe is not None and link.connected:  # a charger that went away mid-setup refused nothing
            self.on_failsafe(link.charger_id, ok, self.clock())

    async def _sampling(self, link: ChargerLink) -> None:
        result = await link.configure_sampling(SAMPLED_MEASURANDS, self.site.ocpp.meter_interval_s)
        if result.interval_s is None or "Power.Active.Import" not in result.measurands:
            log.warning("charger=%s samples only %s (interval %s): limit-compliance checks are weaker",
                        link.charger_id, ",".join(result.measurands), result.interval_s)

    async def _transactions(self, link: ChargerLink) -> None:
        """Close the sessions the charger says are over (2.0.1 GetTransactionStatus); 1.6 answers through the
        status notifications the resync step asked for (Available/Finishing end a session)."""
        state = self.live.chargers.get(link.charger_id)
        if state is None:
            return
        open_sessions = [(cid, c.session.transaction_id) for cid, c in sorted(state.connectors.items())
                         if c.session is not None]
        for connector_id, transaction_id in open_sessions:
            status = await link.transaction_status(transaction_id)
            if status is None:
                return  # the version cannot tell
            if status.ongoing is False and not status.queued:
                log.info("charger=%s transaction=%s ended while the controller was away; closing it",
                         link.charger_id, transaction_id)
                self.publish(ev.TransactionStopped(link.charger_id, transaction_id, connector_id, None,
                                                   ENDED_WHILE_AWAY, self.clock()))
            # Queued: its end (if any) is among the messages the station still sends us.

    @property
    def in_progress(self) -> int:
        """Chargers whose set-up (after-ready steps included) is still running."""
        return len(self._running)

    async def close(self) -> None:
        await cancel_and_wait(list(self._running.values()))
