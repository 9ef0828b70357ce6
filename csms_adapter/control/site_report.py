"""The site's own line in a shared database: configured chargers, power against the limit in force, last seen.

The fleet view (``depotctl fleet``) reads these rows for every depot; it never reads a site file. Written once
at start and after every tick, through the store's own thread (never on the event loop)."""

from __future__ import annotations

import logging
from datetime import datetime

from csms_adapter.control.control_loop import TickResult
from csms_adapter.control.controller import Controller
from csms_adapter.store import Store, StoreError
from csms_adapter.store.models import SiteRow
from optimizer.horizon import base_load_kw_at, import_limit_kw_at

log = logging.getLogger("depotctl.site_report")


class SiteReporter:
    """Keeps ``sites`` up to date for one controller. Attach with ``attach_site_report``."""

    def __init__(self, controller: Controller, store: Store) -> None:
        self.controller = controller
        self.store = store
        self._writing = False

    def row(self, now: datetime) -> SiteRow:
        site, live = self.controller.site, self.controller.live
        base_kw = live.base_load_kw(now)
        power_kw = live.site_power_kw(now) + (base_kw if base_kw is not None else base_load_kw_at(site, now))
        limit_kw = import_limit_kw_at(site, now)
        cap_kw = live.inputs.grid_cap_kw(now)
        if cap_kw is not None:
            limit_kw = min(limit_kw, cap_kw)
        return SiteRow(site=site.name, timezone=site.timezone, chargers_configured=len(site.chargers),
                       limit_kw=round(limit_kw, 3), power_kw=round(power_kw, 3), last_seen_at=now)

    async def start(self) -> None:
        now = self.controller.clock()
        row = self.row(now)
        row.started_at = now
        await self._write(row)

    async def stop(self) -> None:
        return None

    def on_tick(self, result: TickResult) -> None:
        if self._writing:
            return  # the last write is still queued: skip one line rather than pile them up
        self.controller.supervisor.spawn(self._write(self.row(result.time)), "site-report")

    async def _write(self, row: SiteRow) -> None:
        self._writing = True
        try:
            await self.store.run(self.store.report_site, row)
        except StoreError as exc:
            log.warning("could not write the site line for the fleet view (%s)", exc)
        finally:
            self._writing = False


def attach_site_report(controller: Controller, store: Store) -> SiteReporter:
    reporter = SiteReporter(controller, store)
    controller.tick_listeners.append(reporter.on_tick)
    controller.services.append(reporter)
    return reporter
