"""Operator-requested unavailability: the pure bookkeeping, how availability counts it (excluded, not an outage),
the charger's answers (Rejected, Scheduled, garbage) over real websockets with fake 1.6 and 2.0.1 chargers, and
stored rows read back (a corrupt one skipped with its reason)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fake_chargers import Charger16, Charger201, Recorder, charger, now_iso
from live_site import ENV, PASSWORD_A, PASSWORD_B, make_site
from ocpp.v16 import call as call16

from csms_adapter.control.controller import Controller
from csms_adapter.control.operator_journal import load_operator_state
from csms_adapter.errors import ChargerError
from csms_adapter.monitoring import IncidentKind, Severity
from csms_adapter.monitoring.availability import availability
from csms_adapter.monitoring.model import Incident
from csms_adapter.monitoring.operator_unavailability import OperatorAvailability, OperatorSpan
from csms_adapter.protocol.link import availability_answer
from csms_adapter.store import Store
from csms_adapter.store.models import OperatorAvailabilityRow
from csms_adapter.store.operator_state import OperatorStateStore

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
H = timedelta(hours=1)


def ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"op-{next(counter)}"


# ------------------------------------------------------------------------------------------ bookkeeping

def test_accepted_inoperative_is_in_effect_at_once_and_ends_when_made_operative() -> None:
    book = OperatorAvailability()
    [span] = book.inoperative_requested("cp-a", 2, "Accepted", T0, "cable check", ids())
    assert span.started_at == T0 and book.inoperative("cp-a", 2) and not book.inoperative("cp-a", 1)
    assert book.inoperative_requested("cp-a", 2, "Accepted", T0 + H, "again", ids()) == []  # no second span
    [ended] = book.operative_accepted("cp-a", 2, T0 + 2 * H)
    assert ended.ended_at == T0 + 2 * H and not book.inoperative("cp-a", 2)


def test_scheduled_inoperative_waits_for_the_transaction_and_covers_the_whole_charger() -> None:
    book = OperatorAvailability()
    book.inoperative_requested("cp-a", 0, "Scheduled", T0, "", ids())
    assert book.asked_unavailable("cp-a", 1) and not book.inoperative("cp-a", 1)
    busy = {("cp-a", 1)}
    assert book.transactions_over(lambda c, k: (c, k) in busy, lambda c: 2, T0 + H) == []
    busy.clear()
    [started] = book.transactions_over(lambda c, k: (c, k) in busy, lambda c: 2, T0 + 2 * H)
    assert started.started_at == T0 + 2 * H and book.inoperative("cp-a", 1) and book.inoperative("cp-a", 2)


def _fault(opened: datetime, resolved: datetime) -> Incident:
    return Incident("f1", "cp-a", 1, IncidentKind.FAULT, "GroundFailure", None, None, Severity.CRITICAL, opened,
                    resolved, 1, "StatusNotification")


def test_operator_time_is_excluded_from_outage_ratio_mtbf_and_mttr() -> None:
    span = OperatorSpan("op-1", "cp-a", 1, T0, "Accepted", T0 + 2 * H, T0 + 8 * H)
    rows = availability([_fault(T0 + 10 * H, T0 + 12 * H)], {"cp-a": 1}, T0, T0 + 24 * H, [span])
    whole, one = rows
    assert one.unavailable_operator_s == 6 * 3600 and one.unavailable_s == 0
    assert one.faulted_s == 2 * 3600 and one.available_s == 16 * 3600
    assert one.availability_ratio == pytest.approx(22 / 24)  # operator time counts for the charger, as excluded
    assert one.mtbf_s == 16 * 3600 and one.mttr_s == 2 * 3600  # available time only; the one fault's repair
    assert whole.unavailable_operator_s == 6 * 3600


def test_a_fault_during_operator_time_is_not_counted_as_down() -> None:
    span = OperatorSpan("op-1", "cp-a", 0, T0, "Accepted", T0, None)  # still out of service
    [whole, one] = availability([_fault(T0 + H, T0 + 3 * H)], {"cp-a": 1}, T0, T0 + 4 * H, [span])
    assert one.unavailable_operator_s == 4 * 3600 and one.faulted_s == 0 and one.availability_ratio == 1.0
    assert whole.unavailable_operator_s == 4 * 3600


# ------------------------------------------------------------------------------ answers over websockets

@pytest.fixture
async def controller() -> AsyncIterator[Controller]:
    async with Controller(make_site(), env=ENV, debounce_real_s=0.05) as c:
        yield c


async def eventually(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_16_rejected_and_garbage_answers_change_nothing(controller: Controller) -> None:
    rec = Recorder()
    async with charger(controller.url, "cp-a", PASSWORD_A, "1.6", rec) as cp:
        assert isinstance(cp, Charger16)
        await cp.boot()
        await eventually(lambda: controller.live.charger("cp-a").set_up)
        rec.availability_status = "Rejected"
        result = await controller.availability.request("cp-a", 1, operative=False)
        assert result.status == "Rejected" and result.span is None
        assert rec.of("ChangeAvailability")[-1] == {"connector_id": 1, "type": "Inoperative"}
        rec.availability_status = "Maybe"
        with pytest.raises(ChargerError):  # the schema check (or ours) refuses an answer outside the enum
            await controller.availability.request("cp-a", 0, operative=False)
        assert controller.monitor.operator.spans == []
        assert controller.monitor.connector_out_of_service("cp-a", 1) is None
        await cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Unavailable",
                                                timestamp=now_iso()))
        await eventually(lambda: controller.monitor.open_incident("cp-a", 1, IncidentKind.UNAVAILABLE) is not None)


async def test_201_scheduled_takes_effect_when_the_transaction_ends(controller: Controller) -> None:
    rec = Recorder()
    async with charger(controller.url, "cp-b", PASSWORD_B, "2.0.1", rec) as cp:
        assert isinstance(cp, Charger201)
        await cp.boot()
        await eventually(lambda: controller.live.charger("cp-b").set_up)
        await cp.status(1, "Occupied")
        await cp.tx_event("Started", "tx-1", 1, [{"value": 0.0, "measurand": "Energy.Active.Import.Register"}],
                          trigger="CablePluggedIn", id_token="TAG1")
        await eventually(lambda: controller.live.controllable("cp-b", 1))
        rec.availability_status = "Scheduled"
        result = await controller.availability.request("cp-b", 1, operative=False, reason="swap cable")
        assert result.status == "Scheduled" and result.span is not None and result.span.started_at is None
        assert rec.of("ChangeAvailability")[-1] == {"operational_status": "Inoperative", "evse": {"id": 1}}
        await cp.status(1, "Unavailable")  # the station may announce it early: it was asked, so no incident
        controller.loop.request_tick("test")
        await asyncio.sleep(0.3)
        assert controller.monitor.connector_out_of_service("cp-b", 1) is None  # still charging: still planned
        await cp.tx_event("Ended", "tx-1", 1, trigger="EVCommunicationLost")
        controller.loop.request_tick("test")
        await eventually(lambda: controller.monitor.connector_out_of_service("cp-b", 1) == "inoperative (operator)")
        assert controller.monitor.open_incident("cp-b", 1, IncidentKind.UNAVAILABLE) is None
        rec.availability_status = "Accepted"
        back = await controller.availability.request("cp-b", 0, operative=True)
        assert back.span is None and rec.of("ChangeAvailability")[-1] == {"operational_status": "Operative"}
        assert controller.monitor.connector_out_of_service("cp-b", 1) is None


# ------------------------------------------------------------------------------------------- the store

def test_stored_spans_read_back_and_a_corrupt_row_is_skipped_with_its_reason(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'depot.db'}", site="north")
    ops = OperatorStateStore(store)
    try:
        ops.save_operator_availability(OperatorAvailabilityRow(
            id="good", charger_id="cp-a", connector_id=2, requested_at=T0, status="Accepted", started_at=T0))
        ops.save_operator_availability(OperatorAvailabilityRow(
            id="bad", charger_id="cp-a", connector_id=1, requested_at=T0, status="Perhaps", started_at=T0))
        ops.save_operator_availability(OperatorAvailabilityRow(
            id="backwards", charger_id="cp-b", connector_id=1, requested_at=T0, status="Accepted", started_at=T0,
            ended_at=T0 - H))
        state = load_operator_state(ops, T0)
        assert [(s.id, s.connector, s.started_at) for s in state.operator_spans] == [("good", 2, T0)]
        assert any("Perhaps" in p for p in state.problems) and any("ended_at" in p for p in state.problems)
    finally:
        store.close()


@pytest.mark.parametrize("status", ["Maybe", "", None, 3, "accepted"])
def test_an_answer_outside_the_enum_is_a_charger_error(status: object) -> None:
    with pytest.raises(ChargerError, match="unexpected status"):
        availability_answer("cp-a", status)


def test_ended_requests_are_forgotten_after_the_retention_and_open_ones_kept() -> None:
    book = OperatorAvailability([OperatorSpan("old", "cp-a", 1, T0, "Accepted", T0, T0 + H),
                                 OperatorSpan("open", "cp-a", 2, T0, "Accepted", T0, None)])
    book.forget_ended_before(T0 + 2 * H)
    assert [s.id for s in book.spans] == ["open"]


def test_an_unavailable_reported_before_the_answer_arrives_was_asked_for() -> None:
    book = OperatorAvailability()
    book.pending.add(("cp-a", 0))
    assert book.asked_unavailable("cp-a", 2) and not book.inoperative("cp-a", 2)
    book.pending.clear()
    assert not book.asked_unavailable("cp-a", 2)
