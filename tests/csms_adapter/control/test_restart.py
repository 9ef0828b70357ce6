"""Controller restart with a real SQLite store: sessions resume, and what happened was recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_chargers import Charger16, Recorder, charger
from live_site import ENV, PASSWORD_A, make_site
from polling import eventually

from csms_adapter.control.controller import Controller
from csms_adapter.control.recorder import StoreRecorder
from csms_adapter.store import Store

pytestmark = pytest.mark.slow  # long end-to-end: `pytest -m "not slow"` for a quick round


async def test_restart_resumes_open_sessions_from_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'depot.db'}"
    site = make_site()
    rec = Recorder()
    async with (
        Controller(site, env=ENV, recorder=StoreRecorder.open(url), debounce_real_s=0.05) as first,
        charger(first.url, "cp-a", PASSWORD_A, "1.6", rec) as cp,
    ):
        assert isinstance(cp, Charger16)
        await cp.boot()
        await rec.wait_for(lambda: len(rec.of("ChangeConfiguration")) >= 2)
        tx = await cp.start_tx(1, "TAG1", 2000)
        await cp.meter(1, tx, [{"value": "3000", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                               {"value": "7000", "measurand": "Power.Active.Import", "unit": "W"}])
        await rec.wait_for(lambda: bool(rec.tx_profiles()))
        await eventually(lambda: first.last_tick is not None and first.last_tick.report is not None)

    store = Store.open(url)
    try:
        (row,) = store.open_sessions()
        assert (row.charger_id, row.connector_id, row.transaction_id, row.meter_start_wh) == ("cp-a", 1, str(tx),
                                                                                             2000.0)
        assert store.last_plan() is not None
        assert store.commands("cp-a", 1)[0].answer == "Accepted"
        assert {s.measurand for s in store.meter_history("cp-a", 1, row.started_at, first.clock())} >= {
            "Energy.Active.Import.Register", "Power.Active.Import"}
        assert store.journal_mode() == "wal"
    finally:
        store.close()

    rec2 = Recorder()
    async with Controller(site, env=ENV, recorder=StoreRecorder.open(url), debounce_real_s=0.05) as second:
        assert [(c, n, s.transaction_id) for c, n, s in second.live.open_sessions()] == [("cp-a", 1, str(tx))]
        async with charger(second.url, "cp-a", PASSWORD_A, "1.6", rec2) as cp2:
            assert isinstance(cp2, Charger16)
            # No BootNotification: the store knew the charger, so the controller resyncs and re-checks the fail-safe.
            await rec2.wait_for(lambda: bool(rec2.of("TriggerMessage")))
            await eventually(lambda: second.live.charger("cp-a").set_up)  # resync and fail-safe re-check done
            await cp2.meter(1, tx, [{"value": "4000", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}])
            await eventually(lambda: not second.loop._lock.locked())
            result = await second.loop.tick()
            assert result is not None and result.plan is not None
            (session,) = result.snapshot.sessions
            assert session.energy_delivered_kwh == pytest.approx(2.0)  # from the stored meter start
            await rec2.wait_for(lambda: any(p["transaction_id"] == tx for p in rec2.tx_profiles()))


async def test_a_charger_offline_after_a_restart_is_budgeted_at_the_share_it_holds(tmp_path: Path) -> None:
    """The fail-safe share a charger accepted is stored: after a restart, until it reconnects, it is budgeted at
    that share (what it holds) instead of at its maximum; a charger that never took one stays at its maximum."""
    url = f"sqlite:///{tmp_path / 'depot.db'}"
    site = make_site()
    rec = Recorder()
    async with (
        Controller(site, env=ENV, recorder=StoreRecorder.open(url), debounce_real_s=0.05) as first,
        charger(first.url, "cp-a", PASSWORD_A, "1.6", rec) as cp,
    ):
        await cp.boot()
        await eventually(lambda: first.live.charger("cp-a").failsafe_accepted)
        held_kw = first.live.failsafe_kw["cp-a"]
        held_spread = first.live.failsafe_spread["cp-a"]

    async with Controller(site, env=ENV, recorder=StoreRecorder.open(url), debounce_real_s=0.05) as second:
        loads = {u.charger_id: u for u in second.live.snapshot(second.clock()).uncontrolled}
        a = site.charger("cp-a")
        assert held_kw < a.max_power_kw_for(a.phases) * a.connectors  # else the test shows nothing
        assert loads["cp-a"].power_kw == pytest.approx(held_kw)
        assert loads["cp-a"].phases == held_spread
        assert "fail-safe" in loads["cp-a"].reason and "maximum" not in loads["cp-a"].reason
        for other in site.chargers:
            if other.id != "cp-a":
                assert loads[other.id].power_kw == pytest.approx(other.max_power_kw_for(other.phases)
                                                                 * other.connectors)
