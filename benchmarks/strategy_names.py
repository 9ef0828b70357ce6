"""The strategies the benchmark can run: the controller's, and the hindsight optimum (names only, imported cheaply)."""

from __future__ import annotations

from optimizer.strategy_names import STRATEGY_NAMES

OFFLINE = "offline_optimal"
ALL_STRATEGIES: tuple[str, ...] = (*STRATEGY_NAMES, OFFLINE)
