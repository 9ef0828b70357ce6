"""How long a tick's command stands, learnt from the ticks: at least an interval, the worst recent span from a
snapshot to the next dispatch, a failed tick counted into the span of the command that stood on, at most the
profiles' time to live."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from csms_adapter.control.command_hold import SPANS_REMEMBERED, CommandHold

T0 = datetime(2026, 6, 15, 15, 0, tzinfo=UTC)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def test_ticks_on_time_hold_one_interval() -> None:
    hold = CommandHold(300.0, 900.0)
    assert hold.estimate_s() == 300.0  # nothing seen yet
    for k in range(5):
        hold.ticked(at(300 * k), at(300 * k + 0.5), dispatched=True)
    assert hold.estimate_s() == 300.5


def test_a_late_tick_is_remembered_then_forgotten() -> None:
    hold = CommandHold(300.0, 3600.0)
    hold.ticked(at(0), at(1), dispatched=True)
    hold.ticked(at(600), at(700), dispatched=True)  # observed late and solved slowly: the first command stood 700 s
    assert hold.estimate_s() == 700.0
    for k in range(SPANS_REMEMBERED):
        hold.ticked(at(900 + 300 * k), at(901 + 300 * k), dispatched=True)
    assert hold.estimate_s() == 301.0


def test_a_tick_that_sent_nothing_lengthens_the_standing_command() -> None:
    hold = CommandHold(300.0, 3600.0)
    hold.ticked(at(0), at(1), dispatched=True)
    hold.ticked(at(300), at(301), dispatched=False)  # the solver failed: the command of t=0 stands on
    hold.ticked(at(600), at(601), dispatched=True)
    assert hold.estimate_s() == 601.0


def test_the_hold_never_exceeds_the_profiles_time_to_live() -> None:
    hold = CommandHold(300.0, 900.0)
    hold.ticked(at(0), at(1), dispatched=True)
    hold.ticked(at(5000), at(5001), dispatched=True)  # the profile lapsed to the fail-safe layers long before
    assert hold.estimate_s() == 900.0
    assert CommandHold(300.0, 100.0).estimate_s() == 300.0  # a TTL under one interval is read as one interval
