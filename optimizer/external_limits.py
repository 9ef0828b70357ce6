"""Limits set outside depotctl (``Snapshot.external_limits``) as a per-session, per-step power cap.

A charger reports that a local energy manager or the grid operator limits it (OCPP 2.0.1 NotifyChargingLimit), or
a vehicle reports a schedule below what it was offered (NotifyEVChargingSchedule). The charger enforces such a
limit itself, so a plan above it would only book capacity that nobody can use: every strategy plans each session
at most at its cap, and ``plan_check`` verifies it. A connector's limit caps its session; a whole-charger limit
(connector 0) is shared equally between the charger's sessions that still need energy, which keeps their sum
within it without a row of its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from optimizer.domain import ExternalLimit
from optimizer.horizon import FloatArray, Horizon
from optimizer.needs import ResolvedSession


def _active_steps(limit: ExternalLimit, horizon: Horizon) -> np.ndarray:
    """Which steps the limit touches at all (a step it touches is capped whole: conservative)."""
    start_h = horizon.start_h
    end_h = horizon.start_h + horizon.length_h
    active = np.ones(horizon.steps, dtype=bool)
    if limit.start is not None:
        from_h = (limit.start - horizon.start).total_seconds() / 3600.0
        active &= end_h > from_h + 1e-9
    if limit.until is not None:
        until_h = (limit.until - horizon.start).total_seconds() / 3600.0
        active &= start_h < until_h - 1e-9
    return active


def session_caps_kw(limits: Sequence[ExternalLimit], sessions: Sequence[ResolvedSession], horizon: Horizon) -> FloatArray:
    """The cap of every session in every step (sessions × steps, kW; ``inf`` where nothing limits it)."""
    caps = np.full((len(sessions), horizon.steps), math.inf)
    if not limits or not sessions:
        return caps
    rows_of: dict[tuple[str, int], int] = {s.key: i for i, s in enumerate(sessions)}
    sharing: dict[str, list[int]] = {}
    for i, s in enumerate(sessions):
        if s.need_kwh + s.extra_kwh > 1e-9:
            sharing.setdefault(s.charger.id, []).append(i)
    for limit in limits:
        active = _active_steps(limit, horizon)
        if not active.any():
            continue
        if limit.connector_id > 0:
            row = rows_of.get((limit.charger_id, limit.connector_id))
            targets = [row] if row is not None else []
            share = limit.limit_kw
        else:
            targets = sharing.get(limit.charger_id) or [i for i, s in enumerate(sessions) if s.charger.id == limit.charger_id]
            share = limit.limit_kw / max(len(targets), 1)
        for i in targets:
            caps[i, active] = np.minimum(caps[i, active], share)
    return caps
