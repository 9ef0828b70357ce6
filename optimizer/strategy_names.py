"""The names of the charging strategies, without importing them (the CLI lists them in its help)."""

from __future__ import annotations

STRATEGY_NAMES: tuple[str, ...] = ("lp", "equal_share", "edf", "llf", "uncontrolled")
