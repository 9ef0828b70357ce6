"""Charging strategies behind one interface: ``plan(site, snapshot, strategy) -> Plan``.

``lp`` is the depot LP (docs/lp.md); ``equal_share``, ``edf``, ``llf`` and ``uncontrolled`` are the
baselines the benchmark compares it with. All but ``uncontrolled`` respect every circuit limit.
"""

from __future__ import annotations

from optimizer.domain import Plan, Site, Snapshot
from optimizer.strategies.base import Strategy
from optimizer.strategies.baselines import (
    EarliestDeadlineFirst,
    EqualShare,
    LeastLaxityFirst,
    Uncontrolled,
)
from optimizer.strategies.lp import LpStrategy
from optimizer.strategy_names import STRATEGY_NAMES


def get_strategy(name: str, *, solver: str | None = None) -> Strategy:
    """A fresh strategy object. Raises KeyError for an unknown name."""
    if name == "lp":
        return LpStrategy(solver=solver)
    if name == "equal_share":
        return EqualShare()
    if name == "edf":
        return EarliestDeadlineFirst()
    if name == "llf":
        return LeastLaxityFirst()
    if name == "uncontrolled":
        return Uncontrolled()
    raise KeyError(f"unknown strategy '{name}' (one of {', '.join(STRATEGY_NAMES)})")


def plan(site: Site, snapshot: Snapshot, strategy: str | None = None) -> Plan:
    """Run one tick of ``strategy`` (default: the site's control.strategy)."""
    return get_strategy(strategy or site.control.strategy).plan(site, snapshot)


__all__ = ["STRATEGY_NAMES", "Strategy", "get_strategy", "plan"]
