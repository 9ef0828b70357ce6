"""Operator-requested unavailability end to end: the HTTP API, the controller, ChangeAvailability over real
websockets to emulated 1.6 (cp-a) and 2.0.1 (cp-b) chargers that honour it, the plan, incidents, availability and
the store across a restart; and garbage requests refused with the field and the reason."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from http_depot import AUTH, Depot, running_depot

from csms_adapter.control.controller import Controller
from csms_adapter.control.recorder import StoreRecorder
from csms_adapter.emulator.events import ConnectorStatus
from csms_adapter.monitoring import IncidentKind


async def until(predicate: Callable[[], bool], timeout_s: float = 15.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.05)


def out_of_plan(depot: Depot, charger: str, connector: int) -> bool:
    return depot.controller.monitor.connector_out_of_service(charger, connector) == "inoperative (operator)"


@pytest.mark.timeout(90)
@pytest.mark.parametrize(("charger", "k"), [("cp-a", 2), ("cp-b", 1)])  # cp-a speaks 1.6, cp-b 2.0.1
async def test_an_operator_takes_a_connector_out_of_service_and_back(tmp_path: Path, charger: str, k: int) -> None:
    async with running_depot(tmp_path, chargers=2) as depot, depot.client() as api:
        assert depot.fleet is not None
        await depot.fleet.wait_booted(timeout_s=10)
        station = depot.fleet.charger(charger)
        await until(lambda: depot.controller.live.charger(charger).set_up)
        answer = await api.put(f"/api/chargers/{charger}/availability", auth=AUTH,
                               json={"connector": k, "state": "inoperative", "reason": "cable check"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["answer"] in ("Accepted", "Scheduled") and body["inoperative"]["reason"] == "cable check"
        if body["answer"] == "Scheduled":  # a vehicle was charging: in effect once its transaction ends
            assert body["inoperative"]["in_effect_since"] is None and not out_of_plan(depot, charger, k)
            await station.unplug(k)
        await until(lambda: station.connectors[k].status is ConnectorStatus.UNAVAILABLE)
        await until(lambda: out_of_plan(depot, charger, k))
        if k == 2:
            assert not out_of_plan(depot, charger, 1)  # the other connector stays in the plan
        await asyncio.sleep(0.1)
        station.advance()
        assert station.connectors[k].plant.offered_a == 0.0 and station.connectors[k].plant.power_kw == 0.0
        async with asyncio.timeout(15):
            while not any(e.type == "status" and e.status == "Unavailable" and e.connector == k
                          for e in await depot.controller.monitor.events(charger)):
                await asyncio.sleep(0.1)
        assert not [i for i in depot.controller.monitor.incidents(charger=charger)
                    if i.kind is IncidentKind.UNAVAILABLE], "an Unavailable the operator asked for is no incident"
        listed = (await api.get(f"/api/chargers/{charger}/availability")).json()
        assert [r["connector"] for r in listed if r["inoperative"]] == [k]
        await asyncio.sleep(0.5)  # 30 emulated seconds out of service
        rows = {(r["charger"], r["connector"]): r for r in (await api.get("/api/availability")).json()}
        row = rows[(charger, k)]
        assert row["unavailable_operator_s"] > 0 and row["unavailable_s"] == 0
        assert row["incidents"] == 0 and row["availability_ratio"] == pytest.approx(1.0)

        back = await api.put(f"/api/chargers/{charger}/availability", auth=AUTH,
                             json={"connector": k, "state": "operative"})
        assert back.status_code == 200 and back.json()["answer"] == "Accepted" and back.json()["inoperative"] is None
        await until(lambda: station.connectors[k].status is not ConnectorStatus.UNAVAILABLE)
        await until(lambda: not out_of_plan(depot, charger, k))
        assert not [i for i in depot.controller.monitor.incidents(charger=charger)
                    if i.kind is IncidentKind.UNAVAILABLE]


@pytest.mark.timeout(90)
async def test_operator_unavailability_is_restored_after_a_restart(tmp_path: Path) -> None:
    async with running_depot(tmp_path, chargers=2) as depot, depot.client() as api:
        assert depot.fleet is not None
        await depot.fleet.wait_booted(timeout_s=10)
        await until(lambda: depot.controller.live.charger("cp-b").set_up)
        answer = await api.put("/api/chargers/cp-b/availability", auth=AUTH,
                               json={"connector": 0, "state": "inoperative"})
        assert answer.status_code == 200 and answer.json()["answer"] in ("Accepted", "Scheduled")
        await asyncio.sleep(0.5)  # the store writes off the loop
    recorder = StoreRecorder.open(f"sqlite:///{tmp_path / 'depot.db'}")
    controller = Controller(depot.controller.site, env=depot.controller.env, recorder=recorder)
    async with controller:
        [span] = controller.monitor.operator.spans
        assert (span.charger, span.connector, span.ended_at) == ("cp-b", 0, None)
        assert controller.monitor.operator.asked_unavailable("cp-b", 2)


INVALID = [
    ({"connector": 1, "state": "maybe"}, 422, "state"),
    ({"connector": -1, "state": "inoperative"}, 422, "connector"),
    ({"connector": "1", "state": "inoperative"}, 422, "connector"),
    ({"connector": 1.5, "state": "inoperative"}, 422, "connector"),
    ({"connector": 1, "state": "inoperative", "until": "never"}, 422, "until"),
    ({"state": "inoperative"}, 422, "connector"),
    ({"connector": 1, "state": "inoperative", "reason": "x" * 500}, 422, "reason"),
    ({"connector": 9, "state": "inoperative"}, 404, "connector"),
]


@pytest.mark.timeout(60)
async def test_garbage_availability_requests_are_refused_and_change_nothing(tmp_path: Path) -> None:
    async with running_depot(tmp_path, chargers=0) as depot, depot.client() as api:
        for body, status, field in INVALID:
            answer = await api.put("/api/chargers/cp-a/availability", json=body, auth=AUTH)
            assert answer.status_code == status, (body, answer.text)
            assert any(p["field"] == field and p["reason"] for p in answer.json()["detail"]), (body, answer.text)
        unknown = await api.put("/api/chargers/cp-zz/availability", json={"connector": 0, "state": "inoperative"},
                                auth=AUTH)
        assert unknown.status_code == 404
        garbage = await api.put("/api/chargers/cp-a/availability", content=b"{not json", auth=AUTH,
                                headers={"Content-Type": "application/json"})
        assert garbage.status_code == 422
        offline = await api.put("/api/chargers/cp-a/availability", json={"connector": 1, "state": "inoperative"},
                                auth=AUTH)
        assert offline.status_code == 409 and "not connected" in offline.text
        anonymous = await api.put("/api/chargers/cp-a/availability", json={"connector": 1, "state": "inoperative"})
        assert anonymous.status_code == 401
        assert depot.controller.monitor.operator.spans == []
