"""Monitor-only chargers are budgeted as base load; 1.6 transaction ids never repeat across restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fake_chargers import Charger16, charger
from live_site import ENV, make_site

from csms_adapter.control.controller import Controller
from csms_adapter.control.live_state import LiveState
from csms_adapter.control.recorder import StoreRecorder
from csms_adapter.protocol import events as ev
from csms_adapter.store import Store
from csms_adapter.store.repository import INT32_MAX

T0 = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)


def test_monitor_only_draw_is_added_to_the_base_load_until_the_session_ends() -> None:
    live = LiveState(make_site("  accept_unknown: true\n"), {})
    assert live.observe(T0).base_load_kw is None  # nothing monitored: the optimizer uses the site profile
    live.apply(ev.ChargerConnected("cp-zz", "1.6", T0, monitor_only=True))
    live.apply(ev.TransactionStarted("cp-zz", 1, "9", None, 0.0, T0))
    live.apply(ev.MeterSample("cp-zz", 1, ev.Quantity.POWER_KW, 7.0, "Power.Active.Import", T0))
    live.apply(ev.TransactionStarted("cp-zz", 2, "10", None, 0.0, T0))
    for phase in ("L1", "L2", "L3"):  # no power measurand: per-phase currents at the site voltage
        live.apply(ev.MeterSample("cp-zz", 2, ev.Quantity.CURRENT_A, 10.0, "Current.Import", T0, phase=phase))
    # Stale readings still count: an unknown charger has no maximum to fall back to.
    snapshot = live.observe(T0 + timedelta(hours=1))
    assert snapshot.base_load_kw == pytest.approx(5.0 + 7.0 + 3 * 10.0 * 230 / 1000)
    assert snapshot.sessions == ()  # never controlled
    live.apply(ev.TransactionStopped("cp-zz", "9", 1, None, None, T0 + timedelta(hours=1)))
    live.apply(ev.TransactionStopped("cp-zz", "10", 2, None, None, T0 + timedelta(hours=1)))
    assert live.observe(T0 + timedelta(hours=1)).base_load_kw is None


async def test_monitor_only_charger_draw_reaches_the_plan_input() -> None:
    site = make_site("  accept_unknown: true\n")
    async with Controller(site, env=ENV, debounce_real_s=0.05) as c, charger(c.url, "cp-zz", "x", "1.6") as cp:
        assert isinstance(cp, Charger16)
        await cp.boot()
        tx = await cp.start_tx(1, "TAGX", 0)
        await cp.meter(1, tx, [{"value": "6500", "measurand": "Power.Active.Import", "unit": "W"}])
        result = await c.loop.tick(wait=True)
        assert result is not None and result.snapshot.base_load_kw == pytest.approx(11.5)
        assert result.plan is not None and result.plan.base_load_kw[0] == pytest.approx(11.5)
        assert cp.rec.of("SetChargingProfile") == []


def test_max_numeric_transaction_id_skips_text_ids_and_sees_closed_sessions(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'depot.db'}")
    try:
        assert store.max_numeric_transaction_id() is None
        for tx in ("17", "900", "2147483648", "abc-123", "0815", "uuid-8d1c6f3e-0000-4000-8000-000000000000", "99x"):
            store.open_session("cp-01", 1, tx, started_at=T0)
        store.close_session("cp-01", "900", stopped_at=T0 + timedelta(hours=1))
        assert store.max_numeric_transaction_id() == 900  # closed sessions count; above int32 and text do not
    finally:
        store.close()


async def test_transaction_ids_continue_above_every_stored_id_after_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'depot.db'}"
    high = INT32_MAX - 10  # far above the clock-based floor: only the store can know it
    store = Store.open(url)
    try:
        store.open_session("cp-a", 1, str(high), started_at=T0)
        store.close_session("cp-a", str(high), stopped_at=T0 + timedelta(minutes=5))
    finally:
        store.close()
    recorder = StoreRecorder.open(url)
    await recorder.start()
    try:
        assert [recorder.next_transaction_id() for _ in range(3)] == [high + 1, high + 2, high + 3]
    finally:
        await recorder.close()
