"""Charging schedules that a charger reports (2.0.1 ``ChargingScheduleType``, snake_cased by the library) turned
into ``events.LimitPeriod`` values, and the K15 check of a vehicle's schedule against the limit it was offered.

Pure and tolerant: a period that makes no sense (no number, a negative limit, a start out of order) raises
``ScheduleError`` naming it, so the handler can answer and log instead of failing the whole message.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from csms_adapter.protocol.events import LimitPeriod
from csms_adapter.protocol.telemetry import parse_departure
from optimizer.domain import RateUnit

DEFAULT_VOLTAGE_V = 230.0
# A vehicle's schedule within this much of its offer is "within": both are rounded to 0.1 A or 1 W on the way.
WITHIN_RELATIVE = 0.01
WITHIN_ABSOLUTE_W = 1.0


class ScheduleError(ValueError):
    """A reported charging schedule that cannot be used (the reason says which field)."""


def _number(raw: object, what: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise ScheduleError(f"{what} {raw!r} is not a number")
    return float(raw)


def schedule_periods(schedule: Mapping[str, Any], base: datetime, now: datetime) -> tuple[LimitPeriod, ...]:
    """The periods of one ``chargingSchedule``. They start at ``startSchedule`` when the charger gave a usable one,
    else at ``base`` (NotifyEVChargingSchedule's ``timeBase``, or now); ``duration`` ends the last one."""
    try:
        unit = RateUnit(str(schedule.get("charging_rate_unit")))
    except ValueError as exc:
        raise ScheduleError(f"chargingRateUnit {schedule.get('charging_rate_unit')!r} is not A or W") from exc
    start = parse_departure(schedule.get("start_schedule"), now) or base
    raw_periods = schedule.get("charging_schedule_period")
    if not isinstance(raw_periods, Sequence) or isinstance(raw_periods, str) or not raw_periods:
        raise ScheduleError("chargingSchedulePeriod is empty")
    offsets: list[tuple[int, float, int | None]] = []
    for index, raw in enumerate(raw_periods):
        if not isinstance(raw, Mapping):
            raise ScheduleError(f"chargingSchedulePeriod[{index}] is not an object")
        offset = _number(raw.get("start_period"), f"chargingSchedulePeriod[{index}].startPeriod")
        limit = _number(raw.get("limit"), f"chargingSchedulePeriod[{index}].limit")
        if limit < 0 or offset < 0:
            raise ScheduleError(f"chargingSchedulePeriod[{index}] has a negative startPeriod or limit")
        if offsets and offset <= offsets[-1][0]:
            raise ScheduleError(f"chargingSchedulePeriod[{index}].startPeriod does not increase")
        phases = raw.get("number_phases")
        offsets.append((int(offset), limit, phases if isinstance(phases, int) and 1 <= phases <= 3 else None))
    duration = schedule.get("duration")
    end_all = (start + timedelta(seconds=duration)
               if isinstance(duration, int) and not isinstance(duration, bool) and duration > 0 else None)
    out = []
    for k, (offset, limit, phases) in enumerate(offsets):
        begin = start + timedelta(seconds=offset)
        end = start + timedelta(seconds=offsets[k + 1][0]) if k + 1 < len(offsets) else end_all
        if end_all is not None and begin >= end_all:
            break
        out.append(LimitPeriod(begin, end, limit, unit, phases))
    return tuple(out)


def watts(period: LimitPeriod, voltage_v: float, default_phases: int = 3) -> float:
    """A period's limit in W at the grid side (A per phase × voltage × phases)."""
    if period.unit is RateUnit.WATTS:
        return period.limit
    return period.limit * voltage_v * (period.phases or default_phases)


def exceeds_offer(periods: Sequence[LimitPeriod], offered: LimitPeriod | None, voltage_v: float) -> bool:
    """K15: the vehicle's schedule asks for more than the TxProfile limit it was offered, in any period. The whole
    schedule counts, not only the offer's short validity: the controller renews the TxProfile every tick until it
    replaces it. Without an offer there is nothing to exceed."""
    if offered is None:
        return False
    offer_w = watts(offered, voltage_v)
    ceiling_w = offer_w * (1 + WITHIN_RELATIVE) + WITHIN_ABSOLUTE_W
    return any(watts(period, voltage_v, offered.phases or 3) > ceiling_w for period in periods)
