"""Whether an emulated station's connectors are in service (``EmulatedCharger``'s service job): injected faults
(``csms_adapter.emulator.faults``) start and end as the charger would report and behave, and the CSMS's
ChangeAvailability is honoured (Inoperative: Unavailable and nothing delivered; asked during a transaction:
"Scheduled", applied when it ends). Functions of the station they serve."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import TYPE_CHECKING

from csms_adapter.emulator.events import ConnectorStatus, DeviceProblem, StatusChange
from csms_adapter.emulator.faults import FaultInjection, FaultKind

if TYPE_CHECKING:
    from csms_adapter.emulator.station import EmulatedCharger


async def start_fault(station: EmulatedCharger, fault: FaultInjection) -> None:
    """Make ``fault`` take effect now (see ``csms_adapter.emulator.faults``)."""
    now = station.clock.now()
    station.advance(now)  # the physics up to now ran without it
    if fault.kind is FaultKind.OFFLINE:
        # No duration: away for good (ten emulated years is as good and keeps the sleep arithmetic finite).
        await station.go_offline(now + timedelta(seconds=fault.duration_s if fault.duration_s is not None else 3e8))
    elif fault.kind is FaultKind.IGNORE_LIMIT:
        station.quirks = dataclasses.replace(station.quirks, ignores_limit=True)
    elif fault.kind is FaultKind.METER_GLITCH:
        rt = station.connectors[fault.connector_id]
        rt.meter.start(fault.glitch, rt.plant.energy_wh)
    else:
        rt = station.connectors[fault.connector_id]
        status = ConnectorStatus.FAULTED if fault.kind is FaultKind.FAULT else ConnectorStatus.UNAVAILABLE
        code = fault.code if fault.kind is FaultKind.FAULT else "NoError"
        rt.outage = StatusChange(fault.connector_id, status, now, code, fault.vendor_code, fault.info)
        rt.status = status
        station.enqueue(rt.outage)
        if station.version == "2.0.1" and fault.kind is FaultKind.FAULT:
            station.enqueue(DeviceProblem(fault.connector_id, True, now, fault.vendor_code or fault.code,
                                       fault.info or fault.code))


def end_fault(station: EmulatedCharger, fault: FaultInjection) -> None:
    """``fault`` is over: the charger reports and behaves as it would have without it."""
    now = station.clock.now()
    station.advance(now)
    if fault.kind is FaultKind.OFFLINE:
        station._offline_until = None  # the connection loop is already waiting to reconnect
    elif fault.kind is FaultKind.IGNORE_LIMIT:
        station.quirks = dataclasses.replace(station.quirks, ignores_limit=False)
    elif fault.kind is FaultKind.METER_GLITCH:
        station.connectors[fault.connector_id].meter.stop()
    else:
        rt = station.connectors[fault.connector_id]
        rt.outage = None
        rt.status = station._charging_state(rt) if rt.local_tx is not None else (
            ConnectorStatus.UNAVAILABLE if rt.inoperative else ConnectorStatus.AVAILABLE)
        station.enqueue(StatusChange(fault.connector_id, rt.status, now))
        if station.version == "2.0.1" and fault.kind is FaultKind.FAULT:
            station.enqueue(DeviceProblem(fault.connector_id, False, now, fault.vendor_code or fault.code,
                                       fault.info or fault.code))


def change_availability(station: EmulatedCharger, connector_id: int, operative: bool) -> str:
    """ChangeAvailability from the CSMS for one connector or (0) all: Accepted, Scheduled (Inoperative asked
    while a transaction runs: applied when it ends, OCPP 1.6 §5.2 / 2.0.1 G03) or Rejected (no such
    connector). The status notifications go out after the answer (``announce_availability``)."""
    if connector_id != 0 and connector_id not in station.connectors:
        return "Rejected"
    station.advance()  # the physics up to now ran under the old availability
    scheduled = False
    for cid, rt in station.connectors.items():
        if connector_id not in (0, cid):
            continue
        if operative:
            rt.inoperative = rt.inoperative_pending = False
        elif rt.local_tx is not None:
            rt.inoperative_pending = scheduled = True
        else:
            rt.inoperative = True
    return "Scheduled" if scheduled else "Accepted"


def announce_availability(station: EmulatedCharger, connector_id: int) -> None:
    """After a ChangeAvailability answer: the status of each connector it touched, where that changed."""
    now = station.clock.now()
    for cid, rt in station.connectors.items():
        if connector_id not in (0, cid):
            continue
        state = station._charging_state(rt) if rt.local_tx is not None else (
            rt.outage.status if rt.outage is not None
            else ConnectorStatus.UNAVAILABLE if rt.inoperative else ConnectorStatus.AVAILABLE)
        if state is not rt.status:
            rt.status = state
            station.enqueue(station._status_change(cid, rt, now))
