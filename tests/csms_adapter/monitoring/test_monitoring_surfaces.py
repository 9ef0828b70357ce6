"""Acceptance of issue #12's surfaces, end to end over real sockets: emulated chargers with injected faults, the
controller with its Monitor, the HTTP API, /metrics and a signed webhook to a receiver on 127.0.0.1. An injected
fault shows everywhere within the debounce plus one tick and resolves exactly once; an offline blip shorter than
the debounce sends nothing."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from http_receiver import Receiver, receiving
from live_site import make_site
from polling import eventually
from prometheus_text import metric

from csms_adapter.control.alert_hooks import attach_webhooks
from csms_adapter.control.controller import Controller
from csms_adapter.control.recorder import StoreRecorder
from csms_adapter.emulator.clock import EmulatorClock
from csms_adapter.emulator.credentials import simulated_site
from csms_adapter.emulator.faults import FaultInjection, InjectionRecord, parse_fault
from csms_adapter.emulator.fleet import Fleet, start_fleet
from csms_adapter.http_api import attach_http_api
from csms_adapter.monitoring.webhooks import RetryPolicy, WebhookNotifier, verify
from optimizer.domain import WebhookSpec

SPEED = 60.0  # one wall second is one emulated minute; the control interval (60 s) is one wall second
SECRET = "webhook-test-secret"
OFFLINE_DEBOUNCE_S = 120.0  # the contract's default


@dataclass
class Depot:
    controller: Controller
    fleet: Fleet
    clock: EmulatorClock
    api: httpx.AsyncClient
    hooks: WebhookNotifier
    receiver: Receiver

    async def get(self, path: str) -> object:
        response = await self.api.get(path)
        assert response.status_code == 200, response.text
        return response.json()

    async def metrics(self) -> str:
        response = await self.api.get("/metrics")
        assert response.status_code == 200
        return response.text


@contextlib.asynccontextmanager
async def depot_with(tmp_path: Path, *faults: FaultInjection) -> AsyncIterator[Depot]:
    site, env, passwords = simulated_site(make_site(), 2)
    env["HOOK_SECRET"] = SECRET
    async with receiving() as receiver:
        hooks = (WebhookSpec(receiver.url, "info", "HOOK_SECRET"),)
        site = dataclasses.replace(site, monitoring=dataclasses.replace(site.monitoring, webhooks=hooks))
        clock = EmulatorClock(SPEED)
        receiver.clock = clock.now
        controller = Controller(site, env=env, clock=clock.now, speed=SPEED, debounce_real_s=0.05,
                                recorder=StoreRecorder.open(f"sqlite:///{tmp_path / 'depot.db'}"))
        notifier = attach_webhooks(controller, retry=RetryPolicy(first_delay_s=0.05, max_delay_s=0.2))
        assert notifier is not None
        api = attach_http_api(controller, "127.0.0.1:0")
        await controller.start()
        fleet = await start_fleet(site, controller.url, n=2, speed=SPEED, passwords=passwords, clock=clock,
                                  arrival_window_s=10.0)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api.port}", timeout=10.0) as client:
                await fleet.wait_booted(timeout_s=20)
                # On a busy machine booting may take longer than the offline debounce (2 s of wall time here), and
                # chargers not connected since the start are offline: wait until that is over, then inject.
                await eventually(lambda: not controller.monitor.incidents(open=True) and notifier.pending == 0)
                receiver.requests.clear()
                fleet.injections = [InjectionRecord(f) for f in faults]
                fleet.schedule_faults()
                yield Depot(controller, fleet, clock, client, notifier, receiver)
        finally:
            await controller.stop()
            await fleet.stop()


async def test_injected_fault_shows_everywhere_within_one_tick_and_resolves_once(tmp_path: Path) -> None:
    fault = parse_fault("fault:cp-a:1@120+600,code=GroundFailure,vendor=GF-12,info=RCD tripped")
    async with depot_with(tmp_path, fault) as depot:
        record = depot.fleet.injections[0]
        rx = depot.receiver
        await eventually(lambda: ("opened", "fault", "cp-a") in rx.events())
        opened_req = next(r for r in rx.requests if r.json()["event"] == "opened")
        assert verify(SECRET.encode(), opened_req.body, opened_req.headers["x-depotctl-signature"])
        assert record.started_at is not None and isinstance(opened_req.at, datetime)
        tick_s = depot.controller.site.control.interval_s
        # debounce 0 for a fault, plus one tick (and the 1.6 message's trip over loopback)
        assert (opened_req.at - record.started_at).total_seconds() <= tick_s + 30
        incident = opened_req.json()["incident"]
        assert isinstance(incident, dict)
        assert (incident["connector"], incident["code"], incident["vendor_code"]) == (1, "GroundFailure", "GF-12")

        # the same incident on the API, the dashboard state, the health panel and /metrics while it is open
        open_now = await depot.get("/api/incidents?open=true&charger=cp-a")
        assert isinstance(open_now, list)
        assert [i["id"] for i in open_now if i["kind"] == "fault"] == [incident["id"]]
        dashboard = await depot.get("/api/dashboard")
        assert isinstance(dashboard, dict)
        assert incident["id"] in [i["id"] for i in dashboard["incidents"]]
        health = await depot.get("/api/health")
        assert isinstance(health, dict)
        assert incident["id"] in [i["id"] for i in health["open_incidents"]]
        timeline = next(t for t in health["timeline"] if t["charger"] == "cp-a")
        assert timeline["segments"][-1]["state"] == "faulted"
        text = await depot.metrics()
        assert metric(text, "depotctl_incidents_open", kind="fault", severity=str(incident["severity"])) == 1.0
        assert metric(text, "depotctl_incidents_total", kind="fault") == 1.0
        events = await depot.get("/api/chargers/cp-a/events?limit=1000")
        assert isinstance(events, list)
        faulted = [e for e in events if e["type"] == "status" and e["code"] == "GroundFailure"]
        assert faulted and faulted[0]["vendor_code"] == "GF-12" and faulted[0]["connector"] == 1

        # resolution: exactly once, on the webhook and the API; the fault's seconds count against availability
        await eventually(lambda: ("resolved", "fault", "cp-a") in rx.events(), timeout_s=20)
        assert record.cleared_at is not None
        resolved_req = next(r for r in rx.requests if r.json()["event"] == "resolved")
        assert isinstance(resolved_req.at, datetime)
        assert (resolved_req.at - record.cleared_at).total_seconds() <= tick_s + 30
        await asyncio.sleep(2.0)  # two more ticks and monitor evaluations: nothing else may be sent
        assert [e for e in rx.events() if e[1] == "fault"] == [("opened", "fault", "cp-a"), ("resolved", "fault", "cp-a")]
        closed = await depot.get("/api/incidents?open=false&charger=cp-a")
        assert isinstance(closed, list)
        [done] = [i for i in closed if i["id"] == incident["id"]]
        assert done["resolved_at"] is not None and done["occurrences"] >= 1
        text = await depot.metrics()
        assert metric(text, "depotctl_incidents_open", kind="fault", severity=str(incident["severity"])) == 0.0
        assert metric(text, "depotctl_charger_up", charger="cp-a") == 1.0
        assert metric(text, "depotctl_webhook_failures_total") == 0.0
        rows = await depot.get("/api/availability")
        assert isinstance(rows, list)
        [row] = [r for r in rows if r["charger"] == "cp-a" and r["connector"] == 1]
        every = await depot.get("/api/incidents?charger=cp-a")
        assert isinstance(every, list)
        outages = [i for i in every if i["kind"] in ("offline", "fault", "unavailable") and i["connector"] in (None, 1)]
        assert row["faulted_s"] == pytest.approx(600, abs=90) and row["incidents"] == len(outages) >= 1
        assert 0 < row["availability_ratio"] < 1
        ratio = metric(text, "depotctl_charger_availability_ratio", charger="cp-a")
        assert ratio is not None and 0 < ratio <= 1


async def test_an_offline_blip_shorter_than_the_debounce_sends_nothing(tmp_path: Path) -> None:
    blip = parse_fault(f"offline:cp-b@60+{OFFLINE_DEBOUNCE_S / 4:g}")
    async with depot_with(tmp_path, blip) as depot:
        record = depot.fleet.injections[0]
        await eventually(lambda: record.cleared_at is not None)
        await eventually(lambda: depot.fleet.chargers[1].online.is_set())
        await asyncio.sleep(OFFLINE_DEBOUNCE_S * 2 / SPEED)  # well past when a debounced offline would fire
        assert depot.receiver.requests == []
        assert depot.hooks.stats.delivered == 0
        text = await depot.metrics()
        assert metric(text, "depotctl_incidents_total", kind="offline") == 0.0
        assert metric(text, "depotctl_charger_up", charger="cp-b") == 1.0
        events = await depot.get("/api/chargers/cp-b/events?limit=1000")
        assert isinstance(events, list)
        kinds = [e["type"] for e in events]
        assert "disconnected" in kinds and kinds.count("connected") >= 2  # the blip is in the history


async def test_an_offline_charger_alerts_after_the_debounce(tmp_path: Path) -> None:
    outage = parse_fault("offline:cp-b@60+600")
    async with depot_with(tmp_path, outage) as depot:
        record = depot.fleet.injections[0]
        rx = depot.receiver
        await eventually(lambda: ("opened", "offline", "cp-b") in rx.events())
        assert record.started_at is not None
        opened_at = next(r.at for r in rx.requests if r.json()["event"] == "opened")
        assert isinstance(opened_at, datetime)
        waited_s = (opened_at - record.started_at).total_seconds()
        assert OFFLINE_DEBOUNCE_S - 5 <= waited_s <= OFFLINE_DEBOUNCE_S + 60
        text = await depot.metrics()
        assert metric(text, "depotctl_charger_up", charger="cp-b") == 0.0
        await eventually(lambda: ("resolved", "offline", "cp-b") in rx.events(), timeout_s=20)
        assert [e for e in rx.events() if e[2] == "cp-b"] == [("opened", "offline", "cp-b"),
                                                              ("resolved", "offline", "cp-b")]


async def test_monitoring_reads_refuse_bad_parameters(tmp_path: Path) -> None:
    async with depot_with(tmp_path) as depot:
        api = depot.api
        now = depot.clock.now()
        cases = [
            ("/api/incidents?open=maybe", 422, "open"),
            ("/api/incidents?since=2026-01-01T00:00:00", 422, "since"),  # no offset: ambiguous
            ("/api/incidents?charger=nope", 404, "charger"),
            ("/api/incidents?limit=0", 422, "limit"),
            ("/api/chargers/nope/events", 404, "charger"),
            ("/api/chargers/cp-a/events?limit=100001", 422, "limit"),
            ("/api/chargers/cp-a/events?since=garbage", 422, "since"),
            (f"/api/chargers/cp-a/events?since={(now + timedelta(hours=1)).isoformat()}&until={now.isoformat()}",
             422, "since"),
            (f"/api/availability?since={now.isoformat()}&until={(now - timedelta(hours=1)).isoformat()}", 422, "since"),
            (f"/api/availability?since={(now - timedelta(days=400)).isoformat()}", 422, "since"),
            ("/api/health?hours=0", 422, "hours"),
            ("/api/health?hours=1000", 422, "hours"),
        ]
        for path, status, field in cases:
            response = await api.get(path.replace("+", "%2B"))
            assert response.status_code == status, (path, response.text)
            assert response.json()["detail"][0]["field"] == field, (path, response.text)
        window = await api.get("/api/availability")
        assert window.status_code == 200
        rows = window.json()
        assert {(r["charger"], r["connector"]) for r in rows} >= {("cp-a", None), ("cp-a", 1), ("cp-a", 2),
                                                                 ("cp-b", None), ("cp-b", 1)}
        assert all(r["window_s"] == pytest.approx(86400) for r in rows)
