"""External limits end to end: what a charger reports is kept, shown at /api/external-limits, lapses when its
schedule ends, and a report of garbage loses nothing already known."""

from __future__ import annotations

from datetime import timedelta

import httpx
from fake_chargers import Charger201, charger, now_iso
from live_site import ENV, PASSWORD_B, make_site
from ocpp.v201 import call as call201

from csms_adapter.control.controller import Controller
from csms_adapter.control.external_limits import ExternalLimitBook
from csms_adapter.http_api import attach_http_api
from csms_adapter.protocol import events as ev
from optimizer.domain import LimitSource, RateUnit
from tests.optimizer.helpers import NOW


async def test_reported_limits_are_shown_and_cleared() -> None:
    controller = Controller(make_site(), env=ENV, debounce_real_s=0.05)
    api = attach_http_api(controller, "127.0.0.1:0")
    async with controller, charger(controller.url, "cp-b", PASSWORD_B, "2.0.1") as cp:
        assert isinstance(cp, Charger201)
        await cp.boot()
        await cp.call(call201.NotifyChargingLimit(
            charging_limit={"charging_limit_source": "EMS"}, evse_id=0,
            charging_schedule=[{"id": 1, "charging_rate_unit": "W", "start_schedule": now_iso(), "duration": 3600,
                                "charging_schedule_period": [{"start_period": 0, "limit": 9000.0},
                                                             {"start_period": 1800, "limit": 7000.0}]}]),
            suppress=False)
        # A second source without a value: kept and shown, nothing to plan under.
        await cp.call(call201.NotifyChargingLimit(charging_limit={"charging_limit_source": "SO",
                                                                  "is_grid_critical": True}), suppress=False)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api.port}", timeout=10) as http:
            shown = (await http.get("/api/external-limits")).json()
            by_source = {item["source"]: item for item in shown}
            assert set(by_source) == {"EMS", "SO"}
            assert [p["limit_kw"] for p in by_source["EMS"]["periods"]] == [9.0, 7.0]
            assert by_source["EMS"]["connector"] == 0 and by_source["SO"]["grid_critical"] is True
            assert by_source["SO"]["periods"] == []
            limits = controller.live.snapshot(controller.clock()).external_limits
            assert sorted(lim.limit_kw for lim in limits) == [7.0, 9.0]
            # An unreadable update (periods out of order) is answered and keeps the known limit.
            await cp.call(call201.NotifyChargingLimit(
                charging_limit={"charging_limit_source": "EMS"}, evse_id=0,
                charging_schedule=[{"id": 1, "charging_rate_unit": "W", "charging_schedule_period": [
                    {"start_period": 60, "limit": 1.0}, {"start_period": 0, "limit": 2.0}]}]), suppress=False)
            limits = controller.live.snapshot(controller.clock()).external_limits
            assert sorted(lim.limit_kw for lim in limits) == [7.0, 9.0]
            await cp.call(call201.ClearedChargingLimit(charging_limit_source="EMS"), suppress=False)
            assert [item["source"] for item in (await http.get("/api/external-limits")).json()] == ["SO"]


def test_the_book_converts_amps_and_lets_ended_limits_lapse() -> None:
    site = make_site()
    book = ExternalLimitBook(site)
    period = ev.LimitPeriod(NOW, NOW + timedelta(minutes=30), 10.0, RateUnit.AMPS, None)
    book.apply(ev.ChargingLimitReported("cp-a", NOW, "CSO", 2, (period,)))
    book.apply(ev.ChargingLimitReported("not-in-site", NOW, "CSO", 1, (period,)))  # monitor-only: ignored
    (limit,) = book.in_force(NOW)
    assert (limit.charger_id, limit.connector_id, limit.source) == ("cp-a", 2, LimitSource.CSO)
    assert abs(limit.limit_kw - 10 * 230 * 3 / 1000) < 1e-9  # the charger's 3 phases at 230 V
    assert book.in_force(NOW + timedelta(minutes=31)) == ()
    assert book.reported == {}
    # An EV schedule with no offer to compare with caps nothing; one below its offer caps the session.
    offer = ev.LimitPeriod(NOW, None, 11000.0, RateUnit.WATTS, 3)
    low = ev.LimitPeriod(NOW, None, 4000.0, RateUnit.WATTS, None)
    book.apply(ev.EvScheduleReported("cp-a", NOW, 1, (low,), None, True))
    assert book.in_force(NOW) == ()
    book.apply(ev.EvScheduleReported("cp-a", NOW, 1, (low,), offer, True))
    assert [(x.source, x.limit_kw) for x in book.in_force(NOW)] == [(LimitSource.EV, 4.0)]
    book.apply(ev.TransactionStopped("cp-a", "7", None, None, None, NOW))
    assert book.in_force(NOW) == ()
