"""The order of set-up on connect (issue #18 item 7, issue #13 item 8), seen on the wire by a scripted charger that
speaks raw OCPP-J frames: nothing reaches a charger before its BootNotification is answered, each set-up step
happens once, a reconnect without boot is resynchronised once, and a CALL before an accepted boot is refused with
SecurityError."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from live_site import ENV, PASSWORD_A, PASSWORD_B, make_site
from scripted_charger import BOOT16, BOOT201, Scripted, purposes, settle
from security_helpers import raw_client

from csms_adapter.control.controller import Controller


@pytest.mark.parametrize(("version", "identity", "password", "boot", "call"), [
    ("ocpp1.6", "cp-a", PASSWORD_A, BOOT16, ("StatusNotification", {"connectorId": 1, "errorCode": "NoError",
                                                                     "status": "Available"})),
    ("ocpp2.0.1", "cp-b", PASSWORD_B, BOOT201, ("Heartbeat", {})),
])
async def test_a_call_before_the_boot_is_accepted_gets_security_error(version: str, identity: str, password: str,
                                                                       boot: dict[str, Any],
                                                                       call: tuple[str, dict[str, Any]]) -> None:
    async with Controller(make_site(), env=ENV, debounce_real_s=0.05) as controller:
        cp = Scripted(await raw_client(controller.url, identity, password, version, boot=False))
        try:
            early = await cp.call(*call)
            assert early[0] == 4 and early[2] == "SecurityError"
            assert cp.calls() == []  # and nothing was sent to it
            booted = await cp.call("BootNotification", boot)
            assert booted[0] == 3 and booted[2]["status"] == "Accepted"
            later = await cp.call(*call)
            assert later[0] == 3  # accepted now
        finally:
            await cp.close()


async def test_a_reconnect_that_boots_gets_each_setup_step_once_and_nothing_before_the_boot() -> None:
    async with Controller(make_site(), env=ENV, debounce_real_s=0.05, boot_wait_s=3.0) as controller:
        first = Scripted(await raw_client(controller.url, "cp-a", PASSWORD_A, boot=False))
        await first.call("BootNotification", BOOT16)
        started = await first.call("StartTransaction", {"connectorId": 1, "idTag": "TAG1", "meterStart": 0,
                                                         "timestamp": "2026-01-01T00:00:00Z"})
        assert started[0] == 3
        await settle(first)
        await first.close()

        # The charger comes back and boots (a power cycle); its transaction was left open on the old connection.
        second = Scripted(await raw_client(controller.url, "cp-a", PASSWORD_A, boot=False))
        try:
            await asyncio.sleep(0.5)  # slower than the socket, quicker than the controller's boot wait
            assert second.calls() == []
            boot_id_before = len(second.log)
            await second.call("BootNotification", BOOT16)
            boot_id = second.log[boot_id_before][2]
            assert second.calls_before(boot_id) == []  # not a TxProfile, not a trigger: nothing before the boot
            await settle(second)
            assert purposes(second).count("ChargePointMaxProfile/0") == 1  # the fail-safe once, not twice
            assert purposes(second).count("TxDefaultProfile/0") == 1
            triggers = second.calls("TriggerMessage")
            assert triggers == [{"requestedMessage": "StatusNotification"}]
            assert len(second.calls("GetConfiguration")) == 1
            assert [run[1] for run in controller.setup.runs if run[0] == "cp-a"] == ["boot", "boot"]
        finally:
            await second.close()


async def test_a_reconnect_without_boot_is_resynchronised_once() -> None:
    async with Controller(make_site(), env=ENV, debounce_real_s=0.05, boot_wait_s=3.0) as controller:
        first = Scripted(await raw_client(controller.url, "cp-a", PASSWORD_A, boot=False))
        await first.call("BootNotification", BOOT16)
        await settle(first)
        await first.close()
        second = Scripted(await raw_client(controller.url, "cp-a", PASSWORD_A, boot=False))
        try:
            answer = await second.call("Heartbeat", {})  # registered on the earlier connection: no SecurityError
            assert answer[0] == 3
            await settle(second)
            assert second.calls("TriggerMessage") == [{"requestedMessage": "StatusNotification"}]
            assert purposes(second).count("ChargePointMaxProfile/0") == 1
            assert second.calls("ClearChargingProfile") == []  # not a boot: its TxProfiles may be live
            assert [run[1] for run in controller.setup.runs if run[0] == "cp-a"] == ["boot", "reconnect"]
        finally:
            await second.close()
