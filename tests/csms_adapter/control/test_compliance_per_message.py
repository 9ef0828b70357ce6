"""Limit compliance is judged once per meter message, not once per draw reading in it: a three-phase wallbox's
MeterValues carries power and three phase currents taken together, one verdict's worth of evidence."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from live_site import ENV, PASSWORD_A, make_site
from outsider_charger import OutsiderCharger, outsider, wire_time
from polling import eventually

from csms_adapter.control import live_judgements
from csms_adapter.control.controller import Controller


async def ok(cp: OutsiderCharger, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    answer = await cp.call(action, payload)
    assert answer.ok and answer.payload is not None, (action, answer)
    return answer.payload


def draw(amps: str) -> list[dict[str, Any]]:
    values = [{"value": str(float(amps) * 3 * 230), "measurand": "Power.Active.Import", "unit": "W"}]
    values += [{"value": amps, "measurand": "Current.Import", "unit": "A", "phase": p} for p in ("L1", "L2", "L3")]
    # whole seconds on the wire: one second ahead, so the reading is not older than the command it is judged by
    return [{"timestamp": wire_time(datetime.now(UTC) + timedelta(seconds=1)), "sampledValue": values}]


async def test_one_meter_message_is_one_compliance_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    verdicts: list[tuple[str, int]] = []
    judge = live_judgements.update_compliance

    def counting(live: Any, charger: Any, connector_id: int, connector: Any) -> None:
        verdicts.append((charger.id, connector_id))
        judge(live, charger, connector_id, connector)

    monkeypatch.setattr(live_judgements, "update_compliance", counting)
    async with (
        Controller(make_site(), env=ENV, debounce_real_s=0.05, ignore_grace_s=0.0) as controller,
        outsider(controller.url, "cp-a", PASSWORD_A, "1.6") as cp,
    ):
        await ok(cp, "BootNotification", {"chargePointVendor": "Outsider", "chargePointModel": "OX-22"})
        await eventually(lambda: controller.live.charger("cp-a").set_up)
        started = await ok(cp, "StartTransaction", {"connectorId": 1, "idTag": "TAG1", "meterStart": 0,
                                                    "timestamp": wire_time()})
        await ok(cp, "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Charging"})
        await eventually(lambda: controller.live.chargers["cp-a"].connectors[1].command is not None)
        await asyncio.sleep(0.1)  # let a tick that was already running end
        verdicts.clear()
        for _ in range(3):
            await ok(cp, "MeterValues", {"connectorId": 1, "transactionId": started["transactionId"],
                                         "meterValue": draw("21")})
        await asyncio.sleep(0)  # the judgement runs right after the message's handler
        per_message = [v for v in verdicts if v == ("cp-a", 1)]
        # three messages of four draw readings each; a tick in between may judge once more
        assert 3 <= len(per_message) <= 4, verdicts
        # and the verdict still comes: 21 A on every phase is over any limit this 16 A charger accepts
        await eventually(lambda: controller.live.chargers["cp-a"].connectors[1].session.ignoring_limit)
