"""Baseline strategies for the benchmark: uncontrolled, equal share, earliest deadline first and least
laxity first. All but ``uncontrolled`` respect the site limit and every circuit row, step by step.

Each plans the whole horizon by applying its rule at every step to the energy still needed, so its
schedule and expected SoC are comparable with the LP's. None of them models battery temperature.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from optimizer.domain import Plan, PlanStatus, Site, Snapshot
from optimizer.horizon import FloatArray
from optimizer.strategies.base import EPS, Tick, assemble_plan, input_infeasibilities, plugged_hours, prepare_tick

Allocator = Callable[[Tick, int, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray], FloatArray]


def _acceptance_kw(tick: Tick, soc: FloatArray) -> FloatArray:
    """What each vehicle can draw at its SoC (charger/vehicle max with the taper above the knee)."""
    out = np.empty(len(tick.sessions))
    for i, s in enumerate(tick.sessions):
        if s.knee_soc >= 1.0 or soc[i] <= s.knee_soc:
            out[i] = s.max_kw
        else:
            out[i] = s.max_kw * max(0.0, (1.0 - soc[i]) / (1.0 - s.knee_soc))
    return out


def _dense_rows(tick: Tick) -> FloatArray:
    """The circuit rows plus the site row as one dense matrix (rows × sessions)."""
    n = len(tick.sessions)
    coef = tick.limits.coef.toarray() if tick.limits.rows else np.zeros((0, n))
    return np.vstack([coef, np.ones((1, n))])


def _row_headroom(tick: Tick, t: int) -> tuple[FloatArray, FloatArray]:
    """(coefficients, headroom) of every limit row at step t; the site row is appended last."""
    coef = tick.dense_rows if tick.dense_rows is not None else _dense_rows(tick)
    head = np.concatenate([np.maximum(tick.limits.rhs, 0.0), [tick.ev_capacity_kw[t]]])
    return coef, head


def greedy_in_order(order: list[int], cap_kw: FloatArray, min_kw: FloatArray, coef: FloatArray, head: FloatArray) -> FloatArray:
    """Give each session in ``order`` as much as the rows allow; skip it when that is below its minimum."""
    power = np.zeros(cap_kw.size)
    head = head.copy()
    for i in order:
        if cap_kw[i] <= EPS:
            continue
        col = coef[:, i]
        used = col > 0
        room = np.min(head[used] / col[used]) if used.any() else np.inf
        give = min(cap_kw[i], max(room, 0.0))
        if give < min_kw[i] - EPS or give <= EPS:
            continue
        power[i] = give
        head -= col * give
    return power


def water_fill(active: NDArray[np.bool_], cap_kw: FloatArray, coef: FloatArray, head: FloatArray) -> FloatArray:
    """Max-min fair shares: raise every active session equally until a row or its cap stops it."""
    n = cap_kw.size
    power = np.zeros(n)
    free = active.astype(bool) & (cap_kw > EPS)
    head = head.copy()
    for _ in range(n + coef.shape[0] + 1):
        if not free.any():
            break
        rate = coef @ free.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            row_step = np.where(rate > EPS, head / rate, np.inf)
        cap_step = cap_kw[free] - power[free]
        step = max(0.0, min(row_step.min(initial=np.inf), cap_step.min(initial=np.inf)))
        power[free] += step
        head -= rate * step
        tight_rows = (rate > EPS) & (head <= 1e-9 * (1 + np.abs(head)) + 1e-9)
        done = (cap_kw - power) <= 1e-9
        if tight_rows.any():
            done |= (coef[tight_rows] > 0).any(axis=0)
        free &= ~done
    return power


def _equal_share_step(tick: Tick, t: int, cap: FloatArray, min_kw: FloatArray, need: FloatArray,
                      laxity: FloatArray, departure: FloatArray) -> FloatArray:
    coef, head = _row_headroom(tick, t)
    active = cap > EPS
    # Round robin: who is dropped first when not everyone can get the minimum rotates every interval.
    turn = int(tick.snapshot.time.timestamp() // max(tick.site.control.interval_s, 1.0))
    n = cap.size
    rotation = [(i + turn) % n for i in range(n)] if n else []
    for _ in range(n + 1):
        power = water_fill(active, cap, coef, head)
        below = [i for i in range(n) if active[i] and EPS < power[i] < min_kw[i] - EPS]
        if not below:
            return power
        # Drop half of those below their minimum at once (last in the rotation first): a handful of
        # water fills instead of one per session.
        below.sort(key=lambda i: rotation[i], reverse=True)
        for drop in below[: max(1, len(below) // 2)]:
            active[drop] = False
    return np.zeros(n)


def _edf_step(tick: Tick, t: int, cap: FloatArray, min_kw: FloatArray, need: FloatArray,
              laxity: FloatArray, departure: FloatArray) -> FloatArray:
    coef, head = _row_headroom(tick, t)
    order = sorted(range(cap.size), key=lambda i: (departure[i], i))
    return greedy_in_order(order, cap, min_kw, coef, head)


def _llf_step(tick: Tick, t: int, cap: FloatArray, min_kw: FloatArray, need: FloatArray,
              laxity: FloatArray, departure: FloatArray) -> FloatArray:
    coef, head = _row_headroom(tick, t)
    order = sorted(range(cap.size), key=lambda i: (laxity[i], i))
    return greedy_in_order(order, cap, min_kw, coef, head)


def _uncontrolled_step(tick: Tick, t: int, cap: FloatArray, min_kw: FloatArray, need: FloatArray,
                       laxity: FloatArray, departure: FloatArray) -> FloatArray:
    return np.where(cap >= np.maximum(min_kw, EPS), cap, 0.0)


class _RuleStrategy:
    name = "rule"
    allocate: Allocator = staticmethod(_uncontrolled_step)
    respects_limits = True

    def plan(self, site: Site, snapshot: Snapshot) -> Plan:
        return self.plan_tick(prepare_tick(site, snapshot))

    def plan_tick(self, tick: Tick) -> Plan:
        started = time.perf_counter()
        tick = replace(tick, dense_rows=_dense_rows(tick))  # built once, used at every step
        n, steps = len(tick.sessions), tick.horizon.steps
        power = np.zeros((n, steps))
        hours = plugged_hours(tick)
        if n:
            need = np.array([s.need_kwh for s in tick.sessions])
            soc = np.array([s.soc0 for s in tick.sessions])
            eta = np.array([s.efficiency for s in tick.sessions])
            cap_kwh = np.array([s.battery_kwh for s in tick.sessions])
            min_kw = np.array([s.min_kw for s in tick.sessions])
            max_kw = np.array([s.max_kw for s in tick.sessions])
            departure = np.array([s.departure_h for s in tick.sessions])
            for t in range(steps):
                plugged = hours[:, t] > 0
                if not plugged.any():
                    break
                # The most each vehicle can use this step: its acceptance, and no more than it still needs.
                finish_kw = np.divide(need, eta * np.maximum(hours[:, t], 1e-9))
                cap = np.where(plugged & (need > 1e-6), np.minimum(_acceptance_kw(tick, soc), finish_kw), 0.0)
                if tick.caps_kw is not None:
                    cap = np.minimum(cap, tick.caps_kw[:, t])
                now_h = float(tick.horizon.start_h[t])
                laxity = (departure - now_h) - np.divide(need, eta * np.maximum(max_kw, 1e-9))
                p = self.allocate(tick, t, cap, min_kw, need, laxity, departure)
                power[:, t] = p
                delivered = p * hours[:, t] * eta
                need = np.maximum(need - delivered, 0.0)
                soc = np.minimum(soc + delivered / cap_kwh, 1.0)
        reasons = input_infeasibilities(tick) if self.respects_limits else []
        status = PlanStatus.INFEASIBLE_SAFE if reasons else PlanStatus.FEASIBLE
        return assemble_plan(tick, self.name, power, status, solve_ms=(time.perf_counter() - started) * 1000.0,
                             reason="; ".join(reasons) or None, solver="rule",
                             top_up=self.respects_limits)


class Uncontrolled(_RuleStrategy):
    """Everyone at full power, ignoring every limit: what a depot without a controller does."""

    name = "uncontrolled"
    allocate = staticmethod(_uncontrolled_step)
    respects_limits = False


class EqualShare(_RuleStrategy):
    """Max-min fair water filling over the circuit tree; rotates who waits when minimums don't fit."""

    name = "equal_share"
    allocate = staticmethod(_equal_share_step)


class EarliestDeadlineFirst(_RuleStrategy):
    name = "edf"
    allocate = staticmethod(_edf_step)


class LeastLaxityFirst(_RuleStrategy):
    name = "llf"
    allocate = staticmethod(_llf_step)
