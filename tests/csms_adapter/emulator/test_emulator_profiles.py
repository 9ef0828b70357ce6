"""The emulated charger's profile stack, composite limit, physics and clock, without a network."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csms_adapter.emulator.clock import EmulatorClock
from csms_adapter.emulator.plant import ConnectorPlant, EVSpec
from csms_adapter.emulator.profiles import (
    ChargingProfile,
    ProfileKind,
    ProfilePurpose,
    ProfileStack,
    SchedulePeriod,
    TxContext,
)
from optimizer.battery import Battery
from optimizer.domain import Charger, RateUnit, ThermalModel

T0 = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
TX = TxContext("tx-1", T0)
V = 230.0


def profile(
    pid: int,
    purpose: ProfilePurpose,
    limit: float,
    *,
    unit: RateUnit = RateUnit.AMPS,
    stack: int = 0,
    connector: int = 1,
    duration_s: float | None = None,
    valid_to: datetime | None = None,
    phases: int | None = None,
    tx: str | None = None,
) -> ChargingProfile:
    return ChargingProfile(
        id=pid,
        stack_level=stack,
        purpose=purpose,
        kind=ProfileKind.ABSOLUTE,
        connector_id=connector,
        unit=unit,
        periods=(SchedulePeriod(0, limit, phases),),
        start_schedule=T0,
        duration_s=duration_s,
        valid_to=valid_to,
        transaction_id=tx,
    )


def stack16() -> ProfileStack:
    return ProfileStack(replace_same_stack_level=True)


def test_composite_is_min_of_station_max_and_tx_profile() -> None:
    s = stack16()
    assert s.install(profile(1, ProfilePurpose.STATION_MAX, 20, connector=0), {}).accepted
    assert s.install(profile(2, ProfilePurpose.TX_DEFAULT, 16, connector=0), {}).accepted
    assert s.install(profile(3, ProfilePurpose.TX, 25, stack=1), {1: TX}).accepted
    limit = s.limit_at(1, T0 + timedelta(seconds=10), TX, voltage_v=V, phases=3)
    assert limit.tx_or_default_a == 25  # TxProfile beats the default
    assert limit.combined_a() == 20  # ...but not the station max


def test_expired_tx_profile_falls_back_to_default() -> None:
    s = stack16()
    s.install(profile(2, ProfilePurpose.TX_DEFAULT, 16, connector=0), {})
    s.install(profile(3, ProfilePurpose.TX, 8, stack=1, valid_to=T0 + timedelta(minutes=5)), {1: TX})
    s.install(profile(4, ProfilePurpose.TX, 10, stack=2, duration_s=60), {1: TX})
    assert s.limit_at(1, T0 + timedelta(seconds=30), TX, voltage_v=V, phases=3).combined_a() == 10
    assert s.limit_at(1, T0 + timedelta(seconds=90), TX, voltage_v=V, phases=3).combined_a() == 8
    assert s.limit_at(1, T0 + timedelta(minutes=6), TX, voltage_v=V, phases=3).combined_a() == 16


def test_watts_become_per_phase_amps_over_phases_in_use() -> None:
    s = stack16()
    s.install(profile(1, ProfilePurpose.TX_DEFAULT, 6900, unit=RateUnit.WATTS, connector=0), {})
    three = s.limit_at(1, T0, TX, voltage_v=V, phases=3)
    assert three.combined_a() == pytest.approx(10.0) and three.phases == 3
    one = s.limit_at(1, T0, TX, voltage_v=V, phases=1)
    assert one.combined_a() == pytest.approx(30.0) and one.phases == 1
    s.install(profile(2, ProfilePurpose.TX_DEFAULT, 6900, unit=RateUnit.WATTS, connector=0, stack=1, phases=1), {})
    assert s.limit_at(1, T0, TX, voltage_v=V, phases=3).phases == 1


@pytest.mark.parametrize(
    ("candidate", "active", "reason"),
    [
        (profile(1, ProfilePurpose.TX, 10), {}, "running transaction"),
        (profile(1, ProfilePurpose.TX, 10, tx="other"), {1: TX}, "not running"),
        (profile(1, ProfilePurpose.STATION_MAX, 10, connector=1), {}, "connector 0"),
        (profile(1, ProfilePurpose.TX_DEFAULT, 10, stack=99), {}, "stack level"),
    ],
)
def test_invalid_profiles_are_rejected(candidate: ChargingProfile, active: dict[int, TxContext], reason: str) -> None:
    result = stack16().install(candidate, active)
    assert not result.accepted and reason in result.reason


def test_units_outside_the_chargers_support_are_rejected() -> None:
    amps_only = ProfileStack([RateUnit.AMPS], replace_same_stack_level=True)
    assert not amps_only.install(profile(1, ProfilePurpose.TX_DEFAULT, 7000, unit=RateUnit.WATTS), {}).accepted
    assert amps_only.install(profile(1, ProfilePurpose.TX_DEFAULT, 10), {}).accepted


def test_same_stack_level_replaces_on_16_and_is_rejected_on_201() -> None:
    v16, v201 = stack16(), ProfileStack(replace_same_stack_level=False)
    for s in (v16, v201):
        assert s.install(profile(1, ProfilePurpose.TX, 10, stack=1), {1: TX}).accepted
    assert v16.install(profile(2, ProfilePurpose.TX, 12, stack=1), {1: TX}).accepted
    assert [p.id for p in v16.profiles] == [2]
    assert not v201.install(profile(2, ProfilePurpose.TX, 12, stack=1), {1: TX}).accepted
    assert v201.install(profile(1, ProfilePurpose.TX, 12, stack=1), {1: TX}).accepted  # same id updates


def test_clear_by_criteria_and_end_of_transaction() -> None:
    s = stack16()
    s.install(profile(1, ProfilePurpose.TX_DEFAULT, 16, connector=0), {})
    s.install(profile(2, ProfilePurpose.TX, 8, stack=1), {1: TX})
    assert s.clear(purpose=ProfilePurpose.TX_DEFAULT) == 1
    s.end_transaction(1)
    assert s.profiles == []


def test_composite_schedule_shows_expiry_breakpoint() -> None:
    s = stack16()
    s.install(profile(1, ProfilePurpose.TX_DEFAULT, 16, connector=0), {})
    s.install(profile(2, ProfilePurpose.TX, 8, stack=1, duration_s=300), {1: TX})
    periods = s.composite_schedule(1, T0, 900, TX, voltage_v=V, phases=3, hardware_a=32)
    assert periods == [(0.0, 8, 3), (300.0, 16, 3)]


def test_recurring_daily_profile_repeats() -> None:
    night = ChargingProfile(
        id=1,
        stack_level=0,
        purpose=ProfilePurpose.TX_DEFAULT,
        kind=ProfileKind.RECURRING,
        connector_id=0,
        unit=RateUnit.AMPS,
        periods=(SchedulePeriod(0, 32), SchedulePeriod(6 * 3600, 10)),
        start_schedule=datetime(2026, 1, 1, 0, 0, tzinfo=UTC),
        recurrency="Daily",
    )
    s = stack16()
    s.install(night, {})
    assert s.limit_at(1, datetime(2026, 1, 5, 3, 0, tzinfo=UTC), TX, voltage_v=V, phases=3).combined_a() == 32
    assert s.limit_at(1, datetime(2026, 1, 5, 7, 0, tzinfo=UTC), TX, voltage_v=V, phases=3).combined_a() == 10


def charger(**overrides: object) -> Charger:
    fields: dict[str, object] = dict(
        id="cp",
        connectors=1,
        phases=3,
        phase_rotation=(),
        max_current_a=32.0,
        min_current_a=6.0,
        max_power_kw=22.0,
        rate_unit=None,
        dc=False,
        efficiency=1.0,
        auth=None,
        voltage_v=V,
    )
    fields.update(overrides)
    return Charger(**fields)  # type: ignore[arg-type]


def ev(soc: float = 0.2, knee: float = 0.8, max_kw: float = 22.0) -> EVSpec:
    thermal = ThermalModel(max_temp_c=45, heating_c_per_kwh=0.3, cooling_per_h=0.5)
    return EVSpec("TAG", Battery(60.0, max_kw, knee_soc=knee, thermal=thermal), soc=soc, temp_c=20.0)


@given(limit_a=st.floats(0, 40), soc=st.floats(0, 1), ignore=st.booleans())
def test_vehicle_never_draws_above_offer_unless_it_ignores_it(limit_a: float, soc: float, ignore: bool) -> None:
    plant = ConnectorPlant(charger(), 1, T0)
    plant.plug(ev(soc), T0)
    plant.advance(T0 + timedelta(minutes=5), lambda _at: (limit_a, 3), ignores_limit=ignore)
    if not ignore:
        assert plant.power_kw <= plant.offered_kw + 1e-9
        if limit_a < 6.0:
            assert plant.power_kw == 0  # an offer below the minimum current means off, not a trickle
    assert plant.power_kw <= 22.0 + 1e-9


def test_offer_below_min_current_stops_charging_and_battery_heats_when_charging() -> None:
    plant = ConnectorPlant(charger(), 1, T0)
    plant.plug(ev(), T0)
    plant.advance(T0 + timedelta(minutes=10), lambda _at: (5.0, 3))
    assert plant.power_kw == 0 and plant.energy_wh == 0
    plant.advance(T0 + timedelta(minutes=40), lambda _at: (16.0, 3))
    assert plant.power_kw == pytest.approx(16 * V * 3 / 1000)
    assert plant.temp_c is not None and plant.temp_c > 20.0
    assert plant.soc is not None and plant.soc > 0.2


def test_taper_above_knee_lowers_power() -> None:
    plant = ConnectorPlant(charger(), 1, T0)
    plant.plug(ev(soc=0.95, knee=0.8), T0)
    plant.advance(T0 + timedelta(minutes=1), lambda _at: (None, 3))
    assert 0 < plant.power_kw < 22.0 * 0.3


def test_clock_runs_faster_than_wall_time() -> None:
    wall = [100.0]
    clock = EmulatorClock(speed=3600, start=T0, monotonic=lambda: wall[0])
    wall[0] += 2.0
    assert clock.now() == T0 + timedelta(hours=2)
    assert clock.wall_s(3600) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        EmulatorClock(speed=0)
