"""What a vehicle takes, inferred from the meter: the rule the live controller and the benchmark plant share.

A vehicle that draws clearly less than it was allowed (full, tapering, or held by its own onboard limit) is
planned at what it draws, so its charger's share goes to vehicles that can use it. The inference is remembered:
once the plan gives the vehicle no more than it was seen to take, its meter says nothing new, and forgetting
would offer it its nameplate again every other tick (capacity offered to a full vehicle and not drawn).

A tapering vehicle draws less at every look (above its knee its power falls by a near-constant factor per
interval), so planning it at its last draw would leave the difference unused every tick. When the vehicle
itself lowered its draw (it was offered at least what it drew before), that fall is carried one interval
forward. The memory is lifted only when the vehicle takes all it is offered *and* more than it drew when the
memory was set: a vehicle held at a steady onboard limit takes 1/HEADROOM of its offer and stays remembered,
while one that wants more takes the headroom too. Every ``REPROBE`` it is offered a little more (``PROBE_KW``),
so that a vehicle that paused (balancing, heating) is found out without offering a full vehicle its nameplate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

LIMITED_SHARE = 0.9  # drawing under this share of the limit: the vehicle, not the limit, decides
FOLLOWING_SHARE = 0.98  # drawing at least this share of the limit: it takes all it is offered
MIN_JUDGED_KW = 0.5  # below this limit the draw says nothing
HEADROOM = 1.02  # plan a limited vehicle slightly above its draw, so it can show that it wants more
# Above a carried-forward fall: a taper predicted right is then drawn at ~96 % (kept), one predicted too steep
# is drawn in full (lifted below).
FALLING_HEADROOM = 1.04
RISING = 1.01  # a vehicle taking all it is offered and this much more than before wants more (< HEADROOM)
MIN_FALL = 0.7  # never carry a fall steeper than this forward (one odd sample must not starve a vehicle)
OFFER_TOLERANCE_KW = 0.1  # a command rounded down to the charger's resolution still offers the memory
REPROBE = timedelta(minutes=30)
PROBE_KW = 2.0  # offered at a re-probe (a charger's minimum current may command more; the vehicle draws what it takes)


@dataclass(frozen=True, slots=True)
class VehicleLimit:
    limit_kw: float
    since: datetime  # first inferred; the memory is lifted REPROBE after this
    drawn_kw: float = 0.0  # the draw the limit was last set from


def infer_vehicle_limit(previous: VehicleLimit | None, allowed_kw: float | None, drawn_kw: float | None,
                        now: datetime) -> VehicleLimit | None:
    """The vehicle's own limit after one observation of what it was allowed and what it drew (None: no limit
    seen). ``allowed_kw``/``drawn_kw`` None: nothing new to judge (no command yet, or too fresh to follow)."""
    if previous is not None and now - previous.since >= REPROBE:
        # A small offer tells as much as the nameplate: a vehicle that takes all of it is lifted at the next look.
        previous = VehicleLimit(max(previous.limit_kw, PROBE_KW), now, previous.drawn_kw)
    if allowed_kw is None or drawn_kw is None:
        return previous
    drawn_kw = max(0.0, drawn_kw)
    since = previous.since if previous is not None else now
    if allowed_kw >= MIN_JUDGED_KW and drawn_kw < LIMITED_SHARE * allowed_kw:
        return VehicleLimit(_planned_kw(previous, allowed_kw, drawn_kw), since, drawn_kw)
    if previous is None:
        return None
    if allowed_kw <= previous.limit_kw + 1e-6 and drawn_kw < FOLLOWING_SHARE * max(allowed_kw, MIN_JUDGED_KW):
        # Planned at what it takes, takes about that: the limit stands. The draw is kept when the offer did not
        # hold it below its last one, so a taper's next fall is measured from here.
        return VehicleLimit(previous.limit_kw, previous.since, drawn_kw) if allowed_kw >= previous.drawn_kw else previous
    if allowed_kw < previous.limit_kw - OFFER_TOLERANCE_KW:
        return previous  # took all of an offer below the memory: that says nothing about the memory
    if drawn_kw > RISING * previous.drawn_kw or allowed_kw < previous.drawn_kw:
        # Took the headroom too, or all of an offer below what it drew before (a fall predicted too steep,
        # or a dip that is over): it may want more.
        return None
    return VehicleLimit(max(previous.limit_kw, drawn_kw * HEADROOM), since, drawn_kw)  # a steady limit


def _planned_kw(previous: VehicleLimit | None, allowed_kw: float, drawn_kw: float) -> float:
    """What to plan a vehicle at that takes less than it is offered: its draw, carried one interval further
    down when the vehicle itself lowered it since the last look (it was offered at least its last draw)."""
    if previous is None or previous.drawn_kw < MIN_JUDGED_KW or allowed_kw < previous.drawn_kw \
            or drawn_kw >= previous.drawn_kw:
        return drawn_kw * HEADROOM
    return drawn_kw * max(MIN_FALL, drawn_kw / previous.drawn_kw) * FALLING_HEADROOM
