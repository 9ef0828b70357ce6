"""The live terminal view of ``depotctl run``: per connector SoC, power, limit, temperature; site power against
its limit; the last tick. Pure rendering from the controller's state (and the emulated plant, when simulating)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from rich.console import Group
from rich.table import Table
from rich.text import Text

from csms_adapter.control.connector_state import ConnectorView
from csms_adapter.control.controller import Controller
from optimizer.horizon import import_limit_by_minute


def _num(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def import_limit_now_kw(controller: Controller, now: datetime) -> float:
    import zoneinfo

    local = now.astimezone(zoneinfo.ZoneInfo(controller.site.timezone))
    return float(import_limit_by_minute(controller.site)[local.hour * 60 + local.minute])


def render(controller: Controller, now: datetime, plant_power_kw: Mapping[tuple[str, int], float] | None = None,
           plant_soc: Mapping[tuple[str, int], float] | None = None) -> Group:
    """One frame. ``plant_*`` (emulated ground truth) replace the measured values when given."""
    views: list[ConnectorView] = controller.live.views(now)
    table = Table(expand=False, header_style="bold")
    for column in ("charger", "#", "ocpp", "state", "SoC%", "src", "kW", "lim A", "lim kW", "°C", "note"):
        table.add_column(column, overflow="fold", min_width=len(column),
                         justify="right" if column not in ("charger", "state", "note", "src") else "left")
    for v in views:
        key = (v.charger_id, v.connector_id)
        soc = plant_soc.get(key) if plant_soc is not None and key in plant_soc else v.soc
        power = plant_power_kw.get(key) if plant_power_kw is not None and key in plant_power_kw else v.power_kw
        state = "offline" if not v.connected else ("session" if v.transaction_id else v.plug.value)
        version = controller.live.chargers.get(v.charger_id)
        table.add_row(
            v.charger_id, str(v.connector_id), (version.ocpp_version or "") if version else "", state,
            _num(soc * 100 if soc is not None else None, ".0f"),
            v.soc_source.value if v.soc_source is not None else "",
            _num(power, ".2f"), _num(v.limit_a, ".1f"), _num(v.limit_kw, ".2f"), _num(v.temp_c, ".1f"), v.note,
        )
    base_kw = controller.site.base_load.profile_kw[0] if len(controller.site.base_load.profile_kw) == 1 else None
    ev_kw = sum(plant_power_kw.values()) if plant_power_kw is not None else controller.live.site_power_kw(now)
    limit_kw = import_limit_now_kw(controller, now)
    total_kw = ev_kw + (base_kw or 0.0)
    style = "green" if total_kw <= limit_kw + 1e-6 else "bold red"
    header = Text.assemble(
        (f"{controller.site.name}  ", "bold"), f"{now:%Y-%m-%d %H:%M:%S} UTC  OCPP {controller.url}<id>\n",
        "site power ", (f"{total_kw:.1f} kW", style),
        f" (EV {ev_kw:.1f} + base {base_kw or 0:.1f}) / limit {limit_kw:.1f} kW",
    )
    tick = controller.last_tick
    if tick is None:
        footer = Text("no tick yet")
    elif tick.plan is None:
        footer = Text(f"last tick {tick.time:%H:%M:%S}: no plan ({tick.error})", style="red")
    else:
        sent = sum(1 for r in tick.report.records if r.outcome == "accepted") if tick.report is not None else 0
        footer = Text(
            f"last tick {tick.time:%H:%M:%S}: {tick.plan.strategy} {tick.plan.status}, "
            f"solve {tick.plan.solve_ms:.0f} ms, tick {tick.tick_ms:.0f} ms, {len(tick.plan.connectors)} sessions, "
            f"{len(tick.snapshot.uncontrolled)} uncontrolled "
            f"({sum(u.power_kw for u in tick.snapshot.uncontrolled):.1f} kW budgeted), {sent} profiles sent"
        )
    return Group(header, table, footer, _incidents(controller))


def _incidents(controller: Controller, shown: int = 5) -> Text:
    """Open incidents (newest first) and the last resolved one: a fault raised and cleared is visible here too."""
    open_now = controller.monitor.incidents(open=True)
    resolved = controller.monitor.incidents(open=False)
    lines = Text(f"incidents: {len(open_now)} open, {len(resolved)} resolved", style="bold" if open_now else "")
    for i in open_now[:shown]:
        where = f"{i.charger}" + (f" #{i.connector}" if i.connector else "")
        codes = " ".join(c for c in (i.code, i.vendor_code) if c)
        lines.append(f"\n  OPEN {i.severity.value:<8} {i.kind.value:<13} {where:<12} {codes} "
                     f"since {i.opened_at:%H:%M:%S}", style="red" if i.severity.value == "critical" else "yellow")
    if resolved:
        last = max(resolved, key=lambda i: i.resolved_at or i.opened_at)
        where = f"{last.charger}" + (f" #{last.connector}" if last.connector else "")
        lines.append(f"\n  resolved {last.kind.value} {where} {last.code or ''} "
                     f"{last.opened_at:%H:%M:%S}–{last.resolved_at:%H:%M:%S}", style="green")
    return lines
