"""What a vehicle takes, inferred from the meter: the rule the live controller and the benchmark plant share.

A vehicle that draws clearly less than it was allowed (full, tapering, or held by its own onboard limit) is
planned at what it draws, so its charger's share goes to vehicles that can use it. The inference is remembered:
once the plan gives the vehicle no more than it was seen to take, its meter says nothing new, and forgetting
would offer it its nameplate again every other tick (capacity offered to a full vehicle and not drawn). The
memory is lifted when the vehicle draws (nearly) all it is allowed, as long as it is allowed at least what it was
seen to take (all of a lower command says nothing about more); every ``REPROBE`` it is offered a little more
(``PROBE_KW``), so that a vehicle that paused (balancing, heating) is found out without offering a full vehicle
its nameplate.

A draw that falls while the vehicle is offered no more than before goes on falling: a taper takes a fixed share
off each interval (the acceptance falls with the SoC it delivers), and a vehicle that reached its target mid-interval
drew only part of it and takes nothing from then on. So, given the observation before (``Observation``), the limit
is the draw scaled by the fall once more: planning it at the draw alone left the fall of every following interval
commanded and not drawn (docs/benchmarks-robust.md, section 5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

LIMITED_SHARE = 0.9  # drawing under this share of the limit: the vehicle, not the limit, decides
FOLLOWING_SHARE = 0.98  # drawing at least this share of the limit: it may take more; lift the memory
MIN_JUDGED_KW = 0.5  # below this limit the draw says nothing
HEADROOM = 1.02  # plan a limited vehicle slightly above its draw, so it can show that it wants more
REPROBE = timedelta(minutes=30)
FALLING_SHARE = 0.98  # drawing less than this share of its earlier draw: falling (more than a meter's noise)
BELOW_MEMORY_KW = 0.1  # a command this close under the memory's draw counts as at it (a charger's 0.1 A rounding)
PROBE_KW = 2.0  # offered at a re-probe (a charger's minimum current may command more; the vehicle draws what it takes)


@dataclass(frozen=True, slots=True)
class Observation:
    """What a vehicle was allowed and drew over one meter interval (kW)."""

    allowed_kw: float
    drawn_kw: float


@dataclass(frozen=True, slots=True)
class VehicleLimit:
    limit_kw: float
    since: datetime  # first inferred; the memory is lifted REPROBE after this


def fall_share(before: Observation | None, previous: VehicleLimit | None, allowed_kw: float, drawn_kw: float) -> float:
    """The share of its earlier draw the vehicle draws now (1: not falling), judged only when it is offered no more
    than before and drew enough before to say anything. Held at its own limit (``previous``), any fall is the
    vehicle's; under a command lowered for another reason, the fall is counted only below that command."""
    if before is None or before.drawn_kw < MIN_JUDGED_KW or allowed_kw > before.allowed_kw + 1e-6:
        return 1.0
    held = previous is not None and allowed_kw >= previous.limit_kw / HEADROOM - 1e-6
    reference = before.drawn_kw if held else min(before.drawn_kw, allowed_kw)
    return min(1.0, max(0.0, drawn_kw) / reference) if reference >= MIN_JUDGED_KW else 1.0


def infer_vehicle_limit(previous: VehicleLimit | None, allowed_kw: float | None, drawn_kw: float | None,
                        now: datetime, before: Observation | None = None) -> VehicleLimit | None:
    """The vehicle's own limit after one observation of what it was allowed and what it drew (None: no limit
    seen). ``allowed_kw``/``drawn_kw`` None (or not finite): nothing new to judge (no command yet, or too fresh to follow).
    ``before``: the observation before this one (None: not known; the draw is then not extrapolated)."""
    if previous is not None and now - previous.since >= REPROBE:
        # A small offer tells as much as the nameplate: a vehicle that takes all of it is lifted at the next look.
        previous = VehicleLimit(max(previous.limit_kw, PROBE_KW), now)
    if allowed_kw is None or drawn_kw is None or not (math.isfinite(allowed_kw) and math.isfinite(drawn_kw)):
        return previous
    drawn_kw = max(0.0, drawn_kw)
    fall = fall_share(before, previous, allowed_kw, drawn_kw)
    falling = fall < FALLING_SHARE
    if allowed_kw >= MIN_JUDGED_KW and drawn_kw < LIMITED_SHARE * allowed_kw:
        return VehicleLimit(drawn_kw * (fall if falling else 1.0) * HEADROOM,
                            previous.since if previous is not None else now)
    if falling and allowed_kw >= MIN_JUDGED_KW and drawn_kw < FOLLOWING_SHARE * allowed_kw:
        # Under a steady command and drawing less each interval: a taper has begun.
        return VehicleLimit(drawn_kw * fall * HEADROOM, previous.since if previous is not None else now)
    if previous is not None and allowed_kw <= previous.limit_kw + 1e-6:
        if falling:
            # Held at its own limit and still falling: it took what it was allowed because the limit was
            # extrapolated, not because it wants more.
            return VehicleLimit(drawn_kw * fall * HEADROOM, previous.since)
        if drawn_kw < FOLLOWING_SHARE * max(allowed_kw, MIN_JUDGED_KW) or below_memory(previous, allowed_kw):
            return previous
    return None


def below_memory(previous: VehicleLimit, allowed_kw: float) -> bool:
    """True when the vehicle was allowed less than it was seen to take: drawing all of it then says nothing about
    whether it would take more than its limit. (Lifting the memory there offered a tapering vehicle, held below its
    limit while the site was full, its nameplate at the next tick: a whole interval commanded and not drawn.)"""
    return allowed_kw < previous.limit_kw / HEADROOM - BELOW_MEMORY_KW


def takes_clearly_less(allowed_kw: float, drawn_kw: float) -> bool:
    """True when a vehicle newly offered ``allowed_kw`` draws clearly less of it: nothing, or under ``LIMITED_SHARE``.
    The rest of the offer stays idle until the next tick, so the controller brings that tick forward (a vehicle lifted
    to its nameplate in the middle of its taper, or raised after being held below its draw while the site was full).
    An offer under ``MIN_JUDGED_KW`` says nothing; a draw that is no number is no evidence."""
    return allowed_kw >= MIN_JUDGED_KW and drawn_kw < max(MIN_JUDGED_KW, LIMITED_SHARE * allowed_kw)
