"""How well condition monitoring saw the faults a live run injected: found / injected, delay from a fault's start
to its alert, and false alarms. Pure: what was injected and what was announced in, a score out.

An injected fault is *found* by the first announced incident opening (what a webhook would send, after the
debounce) of the expected kind on the same charger (and connector, for connector faults) at or after the fault's
start, faults taken in order of their start. Its *delay* is from the fault's start to that announcement: a late
alarm still belongs to its fault (on a loaded machine messages queue up; the delay shows it), so the delay, not
the match, is where lateness shows. Every announced opening that matches no injection is a *false alarm*. A fault
shorter than its kind's debounce is expected to go unannounced: it counts in ``quiet_expected``, neither found
nor missed (and an alarm for it would be a false alarm).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

EXPECTED_KIND = {
    "fault": "fault",
    "unavailable": "unavailable",
    "offline": "offline",
    "meter_glitch": "meter_anomaly",
    "ignore_limit": "ignores_limit",
}
CONNECTOR_KINDS = frozenset({"fault", "unavailable", "meter_glitch"})


@dataclass(frozen=True, slots=True)
class Injected:
    kind: str  # a FaultKind value
    charger: str
    connector: int
    started_at: datetime
    cleared_at: datetime | None  # None: lasted to the end of the run


@dataclass(frozen=True, slots=True)
class Announced:
    kind: str  # an IncidentKind value
    charger: str
    connector: int | None
    at: datetime  # when listeners heard of the opening


@dataclass(frozen=True, slots=True)
class Detection:
    injected: int
    found: int
    missed: int
    quiet_expected: int  # injected faults shorter than their debounce: correctly not announced
    false_alarms: int
    delay_s_median: float | None
    delay_s_max: float | None
    delays_s: tuple[float, ...] = ()
    missed_faults: tuple[str, ...] = ()
    false_alarm_incidents: tuple[str, ...] = field(default=())


def _matches(fault: Injected, alarm: Announced) -> bool:
    if EXPECTED_KIND.get(fault.kind) != alarm.kind or alarm.charger != fault.charger:
        return False
    if fault.kind in CONNECTOR_KINDS and alarm.connector not in (None, 0, fault.connector):
        return False
    return fault.started_at <= alarm.at


def score(injected: Sequence[Injected], announced: Sequence[Announced], end: datetime,
          debounce_s: Callable[[str], float]) -> Detection:
    """Match each injection (in order of start) to the first unmatched announcement that fits it."""
    free = sorted(announced, key=lambda a: a.at)
    used: set[int] = set()
    delays: list[float] = []
    missed: list[str] = []
    quiet = 0
    for fault in sorted(injected, key=lambda f: f.started_at):
        lasted_s = ((fault.cleared_at or end) - fault.started_at).total_seconds()
        if fault.cleared_at is not None and lasted_s < debounce_s(EXPECTED_KIND.get(fault.kind, fault.kind)):
            quiet += 1  # rightly unannounced: an alarm for it stays unmatched, a false alarm
            continue
        hit = next((i for i, a in enumerate(free) if i not in used and _matches(fault, a)), None)
        if hit is not None:
            used.add(hit)
            delays.append((free[hit].at - fault.started_at).total_seconds())
        else:
            missed.append(f"{fault.kind} {fault.charger}/{fault.connector} at {fault.started_at.isoformat()}")
    false_alarms = [f"{a.kind} {a.charger}/{a.connector} at {a.at.isoformat()}" for i, a in enumerate(free)
                    if i not in used]
    return Detection(
        injected=len(injected),
        found=len(delays),
        missed=len(missed),
        quiet_expected=quiet,
        false_alarms=len(false_alarms),
        delay_s_median=round(statistics.median(delays), 1) if delays else None,
        delay_s_max=round(max(delays), 1) if delays else None,
        delays_s=tuple(round(d, 1) for d in delays),
        missed_faults=tuple(missed),
        false_alarm_incidents=tuple(false_alarms),
    )
