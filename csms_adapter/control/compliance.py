"""Does a connector follow the limit it accepted? Judged on the meter's readings at the time they were taken.

The tick's clock is the wrong yardstick: on a busy controller or a slow link, readings queue up and arrive later
than ``LiveState.stale_after``, and a judgement that needs a *fresh* reading then never sees the charger over its
limit (nor does one that only looks at ticks: a new command every tick would keep resetting it). So a verdict
here uses the newest readings however old, and the time they were taken: a charger is over its limit when a
reading taken at least the grace period after it accepted its command exceeds that command past the tolerance;
it *ignores* its limit once its readings have stayed over for the grace period. A reading from before the grace
gives no verdict either way: it neither starts nor clears a run of readings over the limit; nor does one taken
before the charger's current connection opened (offline, its TxProfile may have lapsed and its fail-safe profiles
rightly allow more).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from csms_adapter.control.connector_state import Command, Reading, Readings

IGNORE_TOLERANCE_A = 1.0  # per phase, on top of the site's dead band
IGNORE_TOLERANCE_KW = 0.5  # on top of 5 % of the limit


@dataclass(frozen=True, slots=True)
class Draw:
    """What the meter last showed: the highest phase current and the power, taken together at ``taken_at``."""

    taken_at: datetime
    current_a: float | None
    power_kw: float | None


def latest_draw(readings: Readings, voltage_v: float, phases: int, together: timedelta) -> Draw | None:
    """The newest current and power readings, keeping only those taken within ``together`` of the newest one (an
    older one describes another moment). Power falls back to the phase currents at ``voltage_v``."""
    held: list[Reading] = [r for r in (readings.power_kw, readings.current_a, *readings.phase_current_a.values())
                           if r is not None]
    if not held:
        return None
    newest = max(r.at for r in held)

    def recent(r: Reading | None) -> bool:
        return r is not None and newest - r.at <= together

    per_phase = [r.value for r in readings.phase_current_a.values() if recent(r)]
    total = readings.current_a if recent(readings.current_a) else None
    currents = per_phase + ([total.value] if total is not None else [])
    power_kw: float | None = None
    if readings.power_kw is not None and recent(readings.power_kw):
        power_kw = readings.power_kw.value
    elif per_phase:
        power_kw = sum(per_phase) * voltage_v / 1000.0
    elif total is not None:
        power_kw = total.value * phases * voltage_v / 1000.0
    return Draw(newest, max(currents) if currents else None, power_kw)


def exceeds(draw: Draw, command: Command, deadband_a: float) -> bool:
    """``draw`` is above ``command`` past the tolerance: in A per phase when the command went out in A and a
    current was read, else in kW."""
    if command.limit_a is not None and draw.current_a is not None:
        return draw.current_a > command.limit_a + max(IGNORE_TOLERANCE_A, deadband_a)
    if draw.power_kw is not None:
        return draw.power_kw > command.limit_kw * 1.05 + IGNORE_TOLERANCE_KW
    return False


def settled_at(command: Command, grace: timedelta) -> datetime:
    """From when a reading shows whether the charger follows ``command``."""
    return (command.accepted_at or command.sent_at) + grace
