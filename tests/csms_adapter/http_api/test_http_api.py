"""The JSON API over real sockets: a controller with its HTTP side on a free loopback port, emulated chargers at
60× time, a SQLite store in a temp dir. Every endpoint is read; every write is made valid and invalid (an invalid
one gets a 4xx naming the field and the reason, and changes nothing)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_depot import AUTH, Depot, running_depot

from csms_adapter.control.control_loop import TickResult
from optimizer.domain import ValueSource

ALL_METRICS = (
    "depotctl_site_power_kw", "depotctl_ev_power_kw", "depotctl_grid_limit_kw", "depotctl_grid_import_limit_kw",
    "depotctl_grid_cap_kw", "depotctl_sessions", "depotctl_chargers_connected", "depotctl_chargers_configured",
    "depotctl_circuit_load_kw", "depotctl_circuit_current_a", "depotctl_circuit_limit_a", "depotctl_connector_power_kw",
    "depotctl_connector_limit_kw", "depotctl_connector_soc_ratio", "depotctl_charger_connected",
    "depotctl_tick_duration_seconds_bucket", "depotctl_solve_duration_seconds_count", "depotctl_plans_total",
    "depotctl_ocpp_messages_total", "depotctl_ocpp_refused", "depotctl_ticks_brought_forward_for_stops_total",
)


async def wait_for_tick(depot: Depot, ok: Any, timeout_s: float = 15.0) -> TickResult:
    """The first tick (from now on, or the last one) for which ``ok(tick)`` holds."""
    async with asyncio.timeout(timeout_s):
        while True:
            tick = depot.controller.last_tick
            if tick is not None and tick.plan is not None and ok(tick):
                return tick
            await asyncio.sleep(0.05)


async def planned(depot: Depot, sessions: int) -> TickResult:
    assert depot.fleet is not None
    await depot.fleet.wait_booted(timeout_s=10)
    return await wait_for_tick(depot, lambda t: len(t.plan.connectors) >= sessions)


async def test_every_read_endpoint_shows_the_live_depot(tmp_path: Path) -> None:
    async with running_depot(tmp_path) as depot, depot.client() as api:
        await planned(depot, 3)
        await asyncio.sleep(1.2)  # one more dashboard sample and a few meter batches

        status = (await api.get("/api/status")).json()
        assert status["site"] == "test-depot" and status["chargers_online"] == 2 and status["sessions"] == 3
        assert status["site_power_kw"] == pytest.approx(status["ev_power_kw"] + status["base_load_kw"], abs=1e-3)
        assert status["grid_limit_kw"] == 30.0 and status["grid_cap"] is None and status["writes_enabled"]
        assert status["last_tick"]["status"] in ("optimal", "feasible")

        chargers = (await api.get("/api/chargers")).json()
        assert [c["id"] for c in chargers] == ["cp-a", "cp-b"]
        assert all(c["online"] and c["failsafe_share_kw"] > 0 for c in chargers)
        assert [len(c["connectors"]) for c in chargers] == [2, 1]

        connectors = (await api.get("/api/connectors")).json()
        assert len(connectors) == 3 and all(c["transaction_id"] for c in connectors)
        assert all(c["will_make_it"] is not None and c["departure"] for c in connectors)
        assert any(c["vehicle"] == "van-1" for c in connectors)  # the roster vehicle behind id tag TAG1

        sessions = (await api.get("/api/sessions")).json()
        assert {(s["charger"], s["connector"]) for s in sessions} == {("cp-a", 1), ("cp-a", 2), ("cp-b", 1)}

        plan = (await api.get("/api/plan")).json()
        assert plan["status"] in ("optimal", "feasible") and len(plan["connectors"]) == 3
        assert plan["import_limit_kw"][0] <= 30.0

        ticks = (await api.get("/api/ticks", params={"limit": 2})).json()
        assert 1 <= len(ticks) <= 2 and ticks[0]["time"] >= ticks[-1]["time"]
        assert ticks[0]["solve_ms"] is not None and ticks[0]["profiles_sent"] + ticks[0]["sessions"] > 0

        history = (await api.get("/api/history", params={"hours": 1})).json()
        assert len(history) >= 2 and all(p["grid_limit_kw"] == 30.0 for p in history)
        ahead = (await api.get("/api/plan-ahead")).json()
        assert ahead and all(p["site_power_kw"] <= p["grid_limit_kw"] + 0.05 for p in ahead)

        circuits = (await api.get("/api/circuits")).json()
        assert circuits[0]["id"] == "main" and circuits[0]["load_kw"] > 0
        assert circuits[0]["current_a"]["L1"] <= 40.0 + 1.0

        assert (await api.get("/api/grid-cap")).json() is None
        dashboard = (await api.get("/api/dashboard")).json()
        assert set(dashboard) == {"status", "connectors", "circuits", "ticks", "uncontrolled", "plan_ahead",
                                  "incidents"}

        async with asyncio.timeout(10):  # samples reach the store in batches
            while True:
                meter = (await api.get("/api/connectors/cp-a/1/meter", params={"measurand": "Power.Active.Import"}))
                if meter.json()["samples"]:
                    break
                await asyncio.sleep(0.2)
        assert all(s["measurand"] == "Power.Active.Import" for s in meter.json()["samples"])

        page = await api.get("/")
        assert page.status_code == 200 and "/static/app.js" in page.text
        assert (await api.get("/static/app.js")).status_code == 200

        metrics = (await api.get("/metrics")).text
        for name in ALL_METRICS:
            assert name in metrics, name
        assert 'depotctl_ocpp_messages_total{action="BootNotification",direction="in",kind="call"}' in metrics

        spec = (await api.get("/openapi.json")).json()
        assert {"/api/status", "/api/chargers", "/api/sessions", "/api/plan", "/api/ticks", "/api/grid-cap",
                "/api/connectors/{charger}/{connector}/meter", "/api/sessions/{charger}/{connector}",
                "/api/vehicle-data", "/api/events", "/metrics"} <= set(spec["paths"])
        assert spec["components"]["schemas"]["GridCapIn"]["additionalProperties"] is False
        assert "HTTPBasic" in spec["components"]["securitySchemes"]


async def test_grid_cap_reaches_the_next_plan_and_lapses_by_itself(tmp_path: Path) -> None:
    async with running_depot(tmp_path) as depot, depot.client() as api:
        await planned(depot, 3)
        until = depot.clock.now() + timedelta(minutes=4)  # 4 s of wall time at 60×
        answer = await api.put("/api/grid-cap", json={"limit_kw": 15, "until": until.isoformat(), "reason": "DSO"},
                               auth=AUTH)
        assert answer.status_code == 200 and answer.json()["limit_kw"] == 15
        capped = await wait_for_tick(depot, lambda t: t.snapshot.grid_cap_kw == 15)
        assert capped.plan is not None and capped.plan.import_limit_kw[0] <= 15
        # the cap holds until its end time and no longer: the plan ahead sees the limit come back
        assert capped.snapshot.grid_cap_until == until
        assert max(capped.plan.import_limit_kw) > 15
        assert (await api.get("/api/status")).json()["grid_limit_kw"] == 15
        await wait_for_tick(depot, lambda t: t.time > until and t.snapshot.grid_cap_kw is None, timeout_s=10)
        assert (await api.get("/api/grid-cap")).json() is None

        assert (await api.put("/api/grid-cap", json={"limit_kw": 20}, auth=AUTH)).status_code == 200
        assert (await api.delete("/api/grid-cap", auth=AUTH)).status_code == 204
        assert depot.controller.live.inputs.grid_cap is None


async def test_session_override_and_vehicle_data_feed_the_snapshot(tmp_path: Path) -> None:
    async with running_depot(tmp_path) as depot, depot.client() as api:
        await planned(depot, 3)
        departure = depot.clock.now() + timedelta(hours=3)
        answer = await api.patch("/api/sessions/cp-b/1", auth=AUTH,
                                 json={"departure": departure.isoformat(), "target_soc": 0.7, "priority": 3})
        assert answer.status_code == 200, answer.text
        assert answer.json()["override"]["target_soc"] == 0.7

        data = await api.post("/api/vehicle-data", auth=AUTH,
                              json={"vehicle": "van-1", "battery_temp_c": 31.5, "battery_kwh": 77, "soc": 0.5})
        assert data.status_code == 200, data.text
        assert (data.json()["charger"], data.json()["connector"]) == ("cp-a", 1)
        by_charger = await api.post("/api/vehicle-data", auth=AUTH,
                                    json={"charger": "cp-a", "connector": 2, "battery_temp_c": 28.0})
        assert by_charger.status_code == 200

        def applied(tick: TickResult) -> bool:
            # A tick that also holds a fresh SoC measurement of cp-a/1: on a busy host the emulator's meter values
            # can be late, and a stale measurement rightly yields to the telematics SoC (ValueSource order).
            by_key = {(s.charger_id, s.connector_id): s for s in tick.snapshot.sessions}
            return (by_key[("cp-b", 1)].priority == 3 and by_key[("cp-a", 2)].battery_temp_c == 28.0
                    and by_key[("cp-a", 1)].soc_source is ValueSource.MEASURED)

        tick = await wait_for_tick(depot, applied, timeout_s=30.0)
        sessions = {(s.charger_id, s.connector_id): s for s in tick.snapshot.sessions}
        b1, a1 = sessions[("cp-b", 1)], sessions[("cp-a", 1)]
        assert b1.target_soc == 0.7 and b1.departure == departure and b1.energy_needed_kwh is None
        assert a1.battery_temp_c == 31.5 and a1.temp_source is ValueSource.VEHICLE_DATA
        assert a1.battery_kwh == 77
        # The emulated charger measures SoC itself; a fresh measurement beats telematics (the SoC is not 0.5 advanced).
        assert a1.soc_source is ValueSource.MEASURED
        plan_b1 = tick.plan.for_connector("cp-b", 1) if tick.plan is not None else None
        assert plan_b1 is not None and plan_b1.departure == departure

        clear = await api.patch("/api/sessions/cp-b/1", auth=AUTH, json={"priority": None})
        assert clear.status_code == 200 and clear.json()["override"]["priority"] is None
        assert clear.json()["override"]["target_soc"] == 0.7  # fields left out are unchanged


INVALID: list[tuple[str, str, dict[str, Any] | None, int, str]] = [
    ("put", "/api/grid-cap", {"limit_kw": -5}, 422, "limit_kw"),
    ("put", "/api/grid-cap", {"limit_kw": 10, "limit": 3}, 422, "limit"),
    ("put", "/api/grid-cap", {"limit_kw": "a lot"}, 422, "limit_kw"),
    ("put", "/api/grid-cap", {}, 422, "limit_kw"),
    ("put", "/api/grid-cap", {"limit_kw": 10, "until": "2020-01-01T00:00:00Z"}, 422, "until"),
    ("put", "/api/grid-cap", {"limit_kw": 10, "until": "2099-01-01T00:00:00"}, 422, "until"),  # no UTC offset
    ("patch", "/api/sessions/cp-a/1", {}, 422, ""),
    ("patch", "/api/sessions/cp-a/1", {"target_soc": 1.5}, 422, "target_soc"),
    ("patch", "/api/sessions/cp-a/1", {"departure": "2020-01-01T00:00:00Z"}, 422, "departure"),
    ("patch", "/api/sessions/cp-a/1", {"priority": 2, "colour": "red"}, 422, "colour"),
    ("patch", "/api/sessions/cp-x/1", {"priority": 2}, 404, "charger"),
    ("patch", "/api/sessions/cp-a/7", {"priority": 2}, 404, "connector"),
    ("patch", "/api/sessions/cp-b/1", {"priority": 2}, 409, "connector"),  # cp-b is not emulated: no session
    ("post", "/api/vehicle-data", {"vehicle": "van-1", "charger": "cp-a", "soc": 0.5}, 422, ""),
    ("post", "/api/vehicle-data", {"vehicle": "van-1"}, 422, ""),
    ("post", "/api/vehicle-data", {"vehicle": "van-1", "soc": 50}, 422, "soc"),
    ("post", "/api/vehicle-data", {"vehicle": "van-1", "battery_temp_c": 31, "measured_at": "2099-01-01T00:00:00Z"},
     422, "measured_at"),
    ("post", "/api/vehicle-data", {"vehicle": "no-such-van", "soc": 0.5}, 404, "vehicle"),
    ("post", "/api/vehicle-data", {"charger": "cp-b", "connector": 1, "soc": 0.5}, 409, "connector"),
]


async def test_invalid_writes_get_a_4xx_naming_the_field_and_change_nothing(tmp_path: Path) -> None:
    async with running_depot(tmp_path, chargers=1) as depot, depot.client() as api:
        await planned(depot, 2)
        inputs = depot.controller.live.inputs
        for method, path, body, status, field in INVALID:
            answer = await api.request(method, path, json=body, auth=AUTH)
            assert answer.status_code == status, (path, body, answer.text)
            problems = answer.json()["detail"]
            assert any(p["field"] == field and p["reason"] for p in problems), (path, body, problems)
        garbage = await api.put("/api/grid-cap", content=b"{not json", auth=AUTH,
                                headers={"Content-Type": "application/json"})
        assert garbage.status_code == 422
        assert inputs.grid_cap is None and not inputs.overrides and not inputs.vehicle_data

        unauthenticated = await api.put("/api/grid-cap", json={"limit_kw": 10})
        wrong = await api.put("/api/grid-cap", json={"limit_kw": 10}, auth=("operator", "guess"))
        wrong_user = await api.put("/api/grid-cap", json={"limit_kw": 10}, auth=("admin", AUTH[1]))
        for answer in (unauthenticated, wrong, wrong_user):
            assert answer.status_code == 401 and answer.headers["WWW-Authenticate"].startswith("Basic")
        assert inputs.grid_cap is None
        assert (await api.get("/api/connectors/cp-a/1/meter", params={"since": "2030-01-01T00:00:00Z",
                                                                        "until": "2029-01-01T00:00:00Z"})).status_code == 422
        assert (await api.get("/api/connectors/cp-z/1/meter")).status_code == 404
        assert (await api.get("/api/ticks", params={"limit": 0})).status_code == 422


async def test_writes_are_refused_when_no_operator_password_is_set(tmp_path: Path) -> None:
    async with running_depot(tmp_path, chargers=0, store=False, password=None) as depot, depot.client() as api:
        answer = await api.put("/api/grid-cap", json={"limit_kw": 10}, auth=AUTH)
        assert answer.status_code == 403 and "DEPOTCTL_OPERATOR_PASSWORD" in answer.json()["detail"][0]["reason"]
        assert (await api.get("/api/status")).json()["writes_enabled"] is False
        # Reads need no password: 404 before the first tick, an empty plan after it (a loaded host may tick first).
        plan = await api.get("/api/plan")
        assert plan.status_code in (200, 404)
        if plan.status_code == 200:
            assert plan.json()["connectors"] == []
        assert (await api.get("/api/connectors/cp-a/1/meter")).status_code == 503  # no store


async def test_event_stream_pushes_changing_dashboard_states(tmp_path: Path) -> None:
    async with running_depot(tmp_path) as depot, depot.client() as api:
        await planned(depot, 3)
        states: list[dict[str, Any]] = []
        async with asyncio.timeout(10), api.stream("GET", "/api/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            async for line in stream.aiter_lines():
                if line.startswith("data: "):
                    states.append(json.loads(line.removeprefix("data: ")))
                    if len(states) == 3:
                        break
        times = [s["status"]["time"] for s in states]
        assert times == sorted(times) and len(set(times)) == 3
        assert all(len(s["connectors"]) == 3 for s in states)


async def test_stopping_the_controller_ends_open_event_streams(tmp_path: Path) -> None:
    async with running_depot(tmp_path, chargers=0, store=False) as depot:
        client = depot.client()
        request = asyncio.ensure_future(_read_stream(client))
        await asyncio.sleep(0.5)
        async with asyncio.timeout(5):
            await depot.controller.stop()
        async with asyncio.timeout(5):
            events = await request
        await client.aclose()
    assert events >= 1


async def _read_stream(client: httpx.AsyncClient) -> int:
    events = 0
    async with client.stream("GET", "/api/events") as stream:
        async for line in stream.aiter_lines():
            events += line.startswith("event: state")
    return events
