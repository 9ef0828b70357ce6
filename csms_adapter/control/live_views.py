"""The live state for display (``LiveState.views``, ``LiveState.site_power_kw``): one row per site connector and
the measured EV power of the site."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from csms_adapter.control.connector_state import ConnectorState, ConnectorView
from csms_adapter.control.live_readings import measured_power_kw
from csms_adapter.control.live_snapshot import session_state_of

if TYPE_CHECKING:
    from csms_adapter.control.live_state import LiveState


def connector_views(live: LiveState, now: datetime) -> list[ConnectorView]:
    """Every site connector for display, sessions or not."""
    out: list[ConnectorView] = []
    for charger in live.site.chargers:
        state = live.charger(charger.id)
        snapshot_soc = {
            s.connector_id: s for s in (
                session_state_of(live, charger, cid, c, now)
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
                power_kw=measured_power_kw(charger, connector, now, live.stale_after),
                limit_kw=connector.command.limit_kw if connector.command else None,
                limit_a=connector.command.limit_a if connector.command else None,
                temp_c=temp.value if temp is not None else None,
                controlled=live.controllable(charger.id, connector_id),
                note=note,
            ))
    return out


def site_power_kw(live: LiveState, now: datetime) -> float:
    """Measured EV power of the whole site (fresh values only)."""
    total = 0.0
    for charger in live.site.chargers:
        state = live.chargers.get(charger.id)
        if state is None:
            continue
        for connector_id, connector in state.connectors.items():
            if connector_id >= 1:
                total += measured_power_kw(charger, connector, now, live.stale_after) or 0.0
    return total
