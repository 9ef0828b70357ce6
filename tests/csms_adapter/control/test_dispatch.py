from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest
from live_site import make_site

from csms_adapter.control.dispatch import STATION_MAX, CommandRecord, Dispatcher, Outcome
from csms_adapter.control.live_state import LiveState
from csms_adapter.errors import ChargerTimeout, ProfileRejected
from csms_adapter.protocol import events as ev
from csms_adapter.protocol.link import Capabilities, SamplingResult
from optimizer.domain import ConnectorPlan, Plan, PlanStatus, PlugInAllowance, RateUnit, ValueSource

T0 = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)


@dataclass
class FakeLink:
    """A ChargerLink that records limits and can be told to fail."""

    charger_id: str
    ocpp_version: str = "1.6"
    sent: list[tuple[int, float, RateUnit, int, str]] = field(default_factory=list)
    station_sent: list[tuple[float, RateUnit, float]] = field(default_factory=list)
    fail: Exception | None = None
    delay_s: float = 0.0
    in_flight: int = 0
    max_in_flight: int = 0
    station_fail: Exception | None = None
    calls: list[str] | None = None  # shared across links: the global order of calls ("cp-a:station", "cp-a:1")

    @property
    def connected(self) -> bool:
        return True

    async def set_tx_limit(self, connector_id: int, limit: float, unit: RateUnit, phases: int, valid_s: float,
                           transaction_id: str, now: datetime) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s)
            if self.fail is not None:
                raise self.fail
            self.sent.append((connector_id, limit, unit, phases, transaction_id))
            if self.calls is not None:
                self.calls.append(f"{self.charger_id}:{connector_id}")
        finally:
            self.in_flight -= 1

    async def set_station_max(self, limit: float, unit: RateUnit, phases: int) -> None: ...

    async def set_live_station_max(self, limit: float, unit: RateUnit, phases: int, valid_s: float,
                                   now: datetime) -> None:
        await asyncio.sleep(self.delay_s)
        if self.station_fail is not None:
            raise self.station_fail
        self.station_sent.append((limit, unit, valid_s))
        if self.calls is not None:
            self.calls.append(f"{self.charger_id}:station")

    async def set_default_profile(self, limit: float, unit: RateUnit, phases: int) -> None: ...

    async def clear_tx_profiles(self) -> bool:
        return False

    async def configure_sampling(self, measurands: tuple[str, ...], interval_s: int) -> SamplingResult:
        return SamplingResult(measurands, interval_s)

    async def read_capabilities(self) -> Capabilities:
        return Capabilities()

    async def composite_limit(self, connector_id: int, duration_s: int, unit: RateUnit) -> float | None:
        return None

    async def trigger_status(self) -> None: ...

    async def change_availability(self, connector_id: int, operative: bool) -> str:
        return "Accepted"

    async def close(self, reason: str) -> None: ...


def live_with_sessions(sessions: list[tuple[str, int, str]]) -> LiveState:
    site = make_site()
    live = LiveState(site, {})
    for charger_id in {c for c, _, _ in sessions}:
        live.apply(ev.ChargerConnected(charger_id, "1.6", T0))
    for charger_id, connector, tx in sessions:
        live.apply(ev.TransactionStarted(charger_id, connector, tx, None, 0.0, T0))
    return live


def plan_of(*items: tuple[str, int, float, float | None, int]) -> Plan:
    connectors = tuple(
        ConnectorPlan(charger_id=c, connector_id=n, limit_kw=kw, limit_a=a, phases=ph, schedule_kw=(kw,),
                      energy_needed_kwh=10, energy_planned_kwh=10, expected_soc_at_departure=0.8,
                      expected_max_temp_c=None, departure=T0 + timedelta(hours=8), soc_source=ValueSource.ESTIMATED)
        for c, n, kw, a, ph in items
    )
    return Plan(status=PlanStatus.OPTIMAL, strategy="test", time=T0, step_s=900, schedule_step_s=(900,),
                connectors=connectors)


@pytest.mark.parametrize(
    ("caps", "limit_kw", "limit_a", "phases", "expected"),
    [
        (frozenset({RateUnit.AMPS}), 7.0, 10.1, 3, (10.1, RateUnit.AMPS, 3)),
        (frozenset({RateUnit.AMPS}), 3.0, 13.04, 1, (13.0, RateUnit.AMPS, 1)),  # rounded down to 0.1
        (frozenset({RateUnit.WATTS}), 7.0, 10.1, 3, (7000.0, RateUnit.WATTS, 3)),  # W is the total power
        (frozenset({RateUnit.WATTS}), 3.68, None, 1, (3680.0, RateUnit.WATTS, 1)),
    ],
)
def test_limits_are_converted_to_the_charger_unit(caps: frozenset[RateUnit], limit_kw: float, limit_a: float | None,
                                                  phases: int, expected: tuple[float, RateUnit, int]) -> None:
    site = make_site()
    dispatcher = Dispatcher(site, LiveState(site, {}), {}, {"cp-b": Capabilities(rate_units=caps)})
    limit, unit, ph = dispatcher.command_for(plan_of(("cp-b", 1, limit_kw, limit_a, phases)).connectors[0])
    assert (limit, unit, ph) == (pytest.approx(expected[0], abs=1e-6), expected[1], expected[2])


async def test_deadband_skips_small_changes_and_refreshes_before_lapse() -> None:
    site = make_site()
    live = live_with_sessions([("cp-a", 1, "7")])
    link = FakeLink("cp-a")
    dispatcher = Dispatcher(site, live, {"cp-a": link}, {"cp-a": Capabilities(rate_units=frozenset({RateUnit.AMPS}))})
    first = await dispatcher.dispatch(plan_of(("cp-a", 1, 7.0, 10.0, 3)), T0)
    assert first.count(Outcome.ACCEPTED) == 1
    small = await dispatcher.dispatch(plan_of(("cp-a", 1, 7.2, 10.3, 3)), T0 + timedelta(seconds=60))
    assert small.count(Outcome.UNCHANGED) == 1  # 0.3 A < deadband 0.5 A
    big = await dispatcher.dispatch(plan_of(("cp-a", 1, 8.0, 11.6, 3)), T0 + timedelta(seconds=120))
    assert big.count(Outcome.ACCEPTED) == 1
    same = await dispatcher.dispatch(plan_of(("cp-a", 1, 8.0, 11.6, 3)), T0 + timedelta(seconds=180))
    assert same.count(Outcome.UNCHANGED) == 1
    # Unchanged, but the profile (valid 3 intervals) would lapse before the tick after next: re-sent.
    late = await dispatcher.dispatch(plan_of(("cp-a", 1, 8.0, 11.6, 3)), T0 + timedelta(seconds=241))
    assert late.count(Outcome.ACCEPTED) == 1
    # 0.3 A lower is inside the deadband but is sent all the same: a charger left at 11.6 A would draw more than
    # the plan counted with, and many such chargers together more than the site may.
    lower = await dispatcher.dispatch(plan_of(("cp-a", 1, 7.8, 11.3, 3)), T0 + timedelta(seconds=300))
    assert lower.count(Outcome.ACCEPTED) == 1
    assert [s[1] for s in link.sent] == [10.0, 11.6, 11.6, 11.3]
    assert all(s[4] == "7" for s in link.sent)


async def test_connectors_of_one_charger_go_one_at_a_time_chargers_in_parallel() -> None:
    site = make_site()
    live = live_with_sessions([("cp-a", 1, "1"), ("cp-a", 2, "2"), ("cp-b", 1, "3")])
    links = {"cp-a": FakeLink("cp-a", delay_s=0.1), "cp-b": FakeLink("cp-b", delay_s=0.1)}
    dispatcher = Dispatcher(site, live, links, {})
    report = await dispatcher.dispatch(
        plan_of(("cp-a", 1, 4.2, 6.0, 3), ("cp-a", 2, 4.2, 6.0, 3), ("cp-b", 1, 7.0, 10.1, 3)), T0)
    assert report.count(Outcome.ACCEPTED) == 3
    assert links["cp-a"].max_in_flight == 1
    # Each call takes 0.1 s: cp-a's station max and two TxProfiles take 0.3 s; one after another with cp-b's two
    # calls they would take 0.5 s.
    assert report.duration_ms < 390  # cp-b ran beside cp-a's calls, not after them


async def test_rejected_profile_marks_connector_uncontrolled_at_measured_draw() -> None:
    site = make_site()
    live = live_with_sessions([("cp-a", 1, "7")])
    live.apply(ev.MeterSample("cp-a", 1, ev.Quantity.POWER_KW, 5.5, "Power.Active.Import", T0))
    link = FakeLink("cp-a", fail=ProfileRejected("cp-a", "TxProfile", "status Rejected"))
    report = await Dispatcher(site, live, {"cp-a": link}, {}).dispatch(plan_of(("cp-a", 1, 7.0, 10.1, 3)), T0)
    assert report.count(Outcome.REJECTED) == 1
    snapshot = live.observe(T0 + timedelta(seconds=5))
    assert [(u.charger_id, u.connector_id, u.power_kw) for u in snapshot.uncontrolled
            if u.charger_id == "cp-a"] == [("cp-a", 1, 5.5)]
    assert snapshot.sessions == ()


async def test_timeout_is_recorded_and_retried_next_tick() -> None:
    site = make_site()
    live = live_with_sessions([("cp-a", 1, "7")])
    link = FakeLink("cp-a", fail=ChargerTimeout("cp-a", "SetChargingProfile", "no answer"))
    records: list[CommandRecord] = []
    dispatcher = Dispatcher(site, live, {"cp-a": link}, {}, record=records.append)
    first = await dispatcher.dispatch(plan_of(("cp-a", 1, 7.0, 10.1, 3)), T0)
    assert first.count(Outcome.TIMEOUT) == 1 and [r.purpose for r in records] == [STATION_MAX, "TxProfile"]
    link.fail = None
    second = await dispatcher.dispatch(plan_of(("cp-a", 1, 7.0, 10.1, 3)), T0 + timedelta(seconds=60))
    assert second.count(Outcome.ACCEPTED) == 1  # not skipped by the deadband: nothing was ever accepted


def two_charger_dispatcher(delay_s: float = 0.05) -> tuple[Dispatcher, dict[str, FakeLink], list[str]]:
    site = make_site()
    live = live_with_sessions([("cp-a", 1, "1"), ("cp-b", 1, "2")])
    for charger_id in ("cp-a", "cp-b"):
        live.failsafe_kw[charger_id] = 10.0
        live.charger(charger_id).failsafe_accepted = True
    calls: list[str] = []
    links = {cid: FakeLink(cid, delay_s=delay_s, calls=calls) for cid in ("cp-a", "cp-b")}
    amps = {cid: Capabilities(rate_units=frozenset({RateUnit.AMPS})) for cid in links}
    return Dispatcher(site, live, links, amps, default_kw={"cp-a": 5.0, "cp-b": 10.0}), links, calls


async def test_every_lowering_call_is_confirmed_before_any_raising_call() -> None:
    dispatcher, _links, calls = two_charger_dispatcher()
    await dispatcher.dispatch(plan_of(("cp-a", 1, 11.0, 16.0, 3), ("cp-b", 1, 4.1, 6.0, 3)), T0)
    calls.clear()
    # The vehicle on cp-a gives way to the one on cp-b: cp-b's raise must never meet cp-a's old limit.
    report = await dispatcher.dispatch(plan_of(("cp-a", 1, 4.1, 6.0, 3), ("cp-b", 1, 13.8, 20.0, 3)),
                                       T0 + timedelta(seconds=60))
    assert calls == ["cp-a:station", "cp-a:1", "cp-b:station", "cp-b:1"]
    assert report.count(Outcome.ACCEPTED) == 2
    assert [r.outcome for r in report.station_records] == [Outcome.ACCEPTED, Outcome.ACCEPTED]


async def test_a_failed_lowering_holds_back_the_raised_caps_of_that_tick() -> None:
    dispatcher, links, _calls = two_charger_dispatcher()
    await dispatcher.dispatch(plan_of(("cp-a", 1, 11.0, 16.0, 3), ("cp-b", 1, 4.1, 6.0, 3)), T0)
    links["cp-a"].station_fail = ChargerTimeout("cp-a", "SetChargingProfile", "no answer")
    report = await dispatcher.dispatch(plan_of(("cp-a", 1, 4.1, 6.0, 3), ("cp-b", 1, 13.8, 20.0, 3)),
                                       T0 + timedelta(seconds=60))
    stations = {r.charger_id: r.outcome for r in report.station_records}
    assert stations == {"cp-a": Outcome.TIMEOUT, "cp-b": Outcome.HELD}
    assert not dispatcher.station_confirmed("cp-a")
    # cp-b's TxProfile only shares cp-b's (unraised) cap, so it still goes out.
    assert {(r.charger_id, r.outcome) for r in report.records} == {("cp-a", Outcome.ACCEPTED), ("cp-b", Outcome.ACCEPTED)}
    assert links["cp-b"].station_sent[-1][0] == pytest.approx(6.0)  # still the first tick's cap
    # The cap cp-a may still hold is what the plan must budget until it is confirmed lowered or lapses.
    assert dispatcher.cap_in_force_kw("cp-a", T0 + timedelta(seconds=61)) == pytest.approx(11.0, abs=0.1)


async def test_an_idle_charger_gets_its_plug_in_allowance_as_its_live_station_max() -> None:
    dispatcher, links, _calls = two_charger_dispatcher(delay_s=0.0)
    plan = replace(plan_of(("cp-a", 1, 11.0, 16.0, 3)), plug_in=(PlugInAllowance("cp-b", 7.0, 3),))
    report = await dispatcher.dispatch(plan, T0)
    stations = {r.charger_id: (r.outcome, r.limit) for r in report.station_records}
    assert stations == {"cp-a": (Outcome.ACCEPTED, 16.0), "cp-b": (Outcome.ACCEPTED, 10.1)}  # 7 kW = 10.1 A
    zero = replace(plan, plug_in=(PlugInAllowance("cp-b", 0.0, 3),))
    again = await dispatcher.dispatch(zero, T0 + timedelta(seconds=60))
    assert {r.charger_id: r.limit for r in again.station_records}["cp-b"] == 0.0
    assert links["cp-b"].station_sent[-1][0] == 0.0  # a full site: the idle charger may draw nothing


async def test_a_refused_txprofile_under_a_live_station_max_holds_nothing_back() -> None:
    dispatcher, links, _calls = two_charger_dispatcher()
    await dispatcher.dispatch(plan_of(("cp-a", 1, 11.0, 16.0, 3), ("cp-b", 1, 4.1, 6.0, 3)), T0)
    links["cp-a"].fail = ProfileRejected("cp-a", "TxProfile", "status Rejected")  # e.g. its transaction just ended
    report = await dispatcher.dispatch(plan_of(("cp-a", 1, 4.1, 6.0, 3), ("cp-b", 1, 13.8, 20.0, 3)),
                                       T0 + timedelta(seconds=60))
    assert {r.charger_id: r.outcome for r in report.station_records} == {"cp-a": Outcome.ACCEPTED,
                                                                          "cp-b": Outcome.ACCEPTED}
    assert links["cp-b"].station_sent[-1][0] == pytest.approx(20.0)


async def test_an_unchanged_live_station_max_is_skipped_until_it_would_lapse_or_the_charger_reconnects() -> None:
    # The live station max is the charger's cap above its fail-safe share: skipping an unchanged one saves a call
    # per charger and tick, but it must go out again before it lapses, after a reconnect (the charger may have
    # dropped it) and after a call that was not confirmed.
    dispatcher, links, _calls = two_charger_dispatcher(delay_s=0.0)
    plan = plan_of(("cp-a", 1, 11.0, 16.0, 3))

    async def station_at(seconds: float) -> Outcome:
        report = await dispatcher.dispatch(plan, T0 + timedelta(seconds=seconds))
        [station] = report.station_records
        return station.outcome

    assert await station_at(0) is Outcome.ACCEPTED
    assert await station_at(60) is Outcome.UNCHANGED
    assert await station_at(120) is Outcome.ACCEPTED  # valid 180 s: it would lapse before the tick after next
    assert await station_at(180) is Outcome.UNCHANGED
    dispatcher.forget("cp-a")  # reconnected
    assert await station_at(240) is Outcome.ACCEPTED
    links["cp-a"].station_fail = ChargerTimeout("cp-a", "SetChargingProfile", "no answer")
    dispatcher.forget("cp-a")
    assert await station_at(270) is Outcome.TIMEOUT
    links["cp-a"].station_fail = None
    assert await station_at(300) is Outcome.ACCEPTED  # the failed call is retried, not taken as sent
    assert await station_at(360) is Outcome.UNCHANGED
    assert [s[0] for s in links["cp-a"].station_sent] == [16.0, 16.0, 16.0, 16.0]
