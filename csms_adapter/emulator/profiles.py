"""The charging-profile stack of one emulated charger and its composite limit (OCPP 1.6 §3.13,
2.0.1 K01/K08), in a version-neutral form: the per-version modules translate wire payloads to
``ChargingProfile`` and back.

Rules implemented (what real firmware does, so the controller is tested against them):

- Within one purpose the valid profile with the highest stack level that has an active period wins;
  a profile whose ``validTo`` passed or whose ``duration`` ended no longer counts, so the charger falls
  back to a lower stack level, then to TxDefault, then to no limit.
- ``TxProfile`` beats ``TxDefaultProfile`` for the running transaction; a connector-specific
  TxDefault beats the one on connector 0. The composite is ``min(station max, tx-or-default)``.
- Limits in A are per phase; in W they are totals, turned into a per-phase current over the phases in
  use (``numberPhases`` absent means 3, errata 3.68).
- Replacement: same id replaces. On 1.6 the same purpose + stack level + connector also replaces; on
  2.0.1 that is rejected (K01.FR.06), so the controller must reuse its ids.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from optimizer.domain import RateUnit

DEFAULT_NUMBER_PHASES = 3
_RECURRENCY_S = {"Daily": 86_400.0, "Weekly": 604_800.0}


class ProfilePurpose(StrEnum):
    STATION_MAX = "StationMax"  # 1.6 ChargePointMaxProfile, 2.0.1 ChargingStationMaxProfile
    TX_DEFAULT = "TxDefaultProfile"
    TX = "TxProfile"


class ProfileKind(StrEnum):
    ABSOLUTE = "Absolute"
    RELATIVE = "Relative"
    RECURRING = "Recurring"


@dataclass(frozen=True, slots=True)
class SchedulePeriod:
    start_s: float
    limit: float  # in the profile's unit: A per phase or W total
    number_phases: int | None = None


@dataclass(frozen=True, slots=True)
class ChargingProfile:
    id: int
    stack_level: int
    purpose: ProfilePurpose
    kind: ProfileKind
    connector_id: int  # 0 = the whole station
    unit: RateUnit
    periods: tuple[SchedulePeriod, ...]
    start_schedule: datetime | None = None
    duration_s: float | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    transaction_id: str | None = None
    recurrency: str | None = None  # Daily | Weekly, for Recurring profiles

    def _anchor(self, tx_start: datetime | None) -> datetime | None:
        return tx_start if self.kind is ProfileKind.RELATIVE else self.start_schedule

    def is_valid_at(self, at: datetime) -> bool:
        if self.valid_from is not None and at < self.valid_from:
            return False
        return self.valid_to is None or at < self.valid_to

    def period_at(self, at: datetime, tx_start: datetime | None) -> SchedulePeriod | None:
        """The schedule period in force at ``at``, or None when this profile sets no limit then."""
        anchor = self._anchor(tx_start)
        if anchor is None or not self.is_valid_at(at):
            return None
        offset_s = (at - anchor).total_seconds()
        if offset_s < 0:
            return None
        if self.kind is ProfileKind.RECURRING:
            offset_s %= _RECURRENCY_S.get(self.recurrency or "Daily", 86_400.0)
        if self.duration_s is not None and offset_s >= self.duration_s:
            return None
        chosen: SchedulePeriod | None = None
        for period in self.periods:
            if period.start_s > offset_s:
                break
            chosen = period
        return chosen

    def breakpoints(self, lo: datetime, hi: datetime, tx_start: datetime | None) -> set[datetime]:
        """Instants in (lo, hi) where this profile's limit may change."""
        points = {t for t in (self.valid_from, self.valid_to) if t is not None}
        anchor = self._anchor(tx_start)
        if anchor is not None:
            offsets = [p.start_s for p in self.periods]
            if self.duration_s is not None:
                offsets.append(self.duration_s)
            if self.kind is ProfileKind.RECURRING:
                cycle_s = _RECURRENCY_S.get(self.recurrency or "Daily", 86_400.0)
                first = math.floor((lo - anchor).total_seconds() / cycle_s)
                last = math.ceil((hi - anchor).total_seconds() / cycle_s)
                bases = [anchor + timedelta(seconds=k * cycle_s) for k in range(max(first, 0), max(last, 0) + 1)]
            else:
                bases = [anchor]
            points.update(base + timedelta(seconds=s) for base in bases for s in offsets)
        return {t for t in points if lo < t < hi}


@dataclass(frozen=True, slots=True)
class InstallResult:
    accepted: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CompositeLimit:
    """Per-phase current limits at one instant; None means that layer sets no limit."""

    tx_or_default_a: float | None
    station_a: float | None
    phases: int

    def combined_a(self, station_share: int = 1) -> float | None:
        """min(tx-or-default, station max / ``station_share``); None = unlimited by profiles."""
        limits = [x for x in (self.tx_or_default_a,) if x is not None]
        if self.station_a is not None:
            limits.append(self.station_a / max(station_share, 1))
        return min(limits) if limits else None


def water_level_a(station_a: float, caps_a: Iterable[float | None]) -> float:
    """How a station shares its maximum among the connectors in use (internal load balancing): the level L with
    Σ min(cap, L) = ``station_a`` over the connectors' own limits (None = unlimited); each connector may draw
    min(its cap, L). ``math.inf`` when every cap fits. An equal split would waste what a capped connector leaves,
    so a plan with uneven connector limits could never be drawn."""
    caps = sorted(math.inf if c is None else c for c in caps_a)
    remaining = station_a
    for k, cap in enumerate(caps):
        level = remaining / (len(caps) - k)
        if cap >= level:
            return max(0.0, level)
        remaining -= cap
    return math.inf


def _layer_name(winner: tuple[ChargingProfile, SchedulePeriod] | None) -> str | None:
    return None if winner is None else f"{winner[0].purpose.value}@{winner[0].stack_level}"


@dataclass(frozen=True, slots=True)
class TxContext:
    """The running transaction of a connector, as profiles need it."""

    transaction_id: str
    started_at: datetime


class ProfileStack:
    """All profiles installed on one charger. Not thread-safe; owned by one event loop."""

    def __init__(
        self,
        units: Iterable[RateUnit] = (RateUnit.AMPS, RateUnit.WATTS),
        *,
        replace_same_stack_level: bool,
        max_installed: int = 32,
        max_stack_level: int = 8,
        max_periods: int = 48,
    ) -> None:
        self.units = frozenset(units)
        self.replace_same_stack_level = replace_same_stack_level
        self.max_installed = max_installed
        self.max_stack_level = max_stack_level
        self.max_periods = max_periods
        self.profiles: list[ChargingProfile] = []

    # ------------------------------------------------------------------------------------ install

    def install(self, profile: ChargingProfile, active: dict[int, TxContext]) -> InstallResult:
        """Check and install ``profile``; ``active`` maps connector id → running transaction."""
        problem = self._check(profile, active)
        if problem:
            return InstallResult(False, problem)
        kept = [p for p in self.profiles if p.id != profile.id]
        same_slot = [
            p
            for p in kept
            if p.purpose is profile.purpose
            and p.stack_level == profile.stack_level
            and p.connector_id == profile.connector_id
        ]
        if same_slot and not self.replace_same_stack_level:
            return InstallResult(False, f"profile {same_slot[0].id} already holds this purpose and stack level")
        kept = [p for p in kept if p not in same_slot]
        if len(kept) >= self.max_installed:
            return InstallResult(False, f"at most {self.max_installed} profiles can be installed")
        kept.append(profile)
        self.profiles = kept
        return InstallResult(True)

    def _check(self, profile: ChargingProfile, active: dict[int, TxContext]) -> str:
        if profile.unit not in self.units:
            return f"rate unit {profile.unit} not supported"
        if not 0 <= profile.stack_level <= self.max_stack_level:
            return f"stack level {profile.stack_level} outside 0..{self.max_stack_level}"
        starts = [p.start_s for p in profile.periods]
        if not starts or starts[0] != 0 or any(b <= a for a, b in itertools.pairwise(starts)):
            return "periods must start at 0 and strictly increase"
        if len(starts) > self.max_periods:
            return f"more than {self.max_periods} periods"
        if any(p.limit < 0 or not math.isfinite(p.limit) for p in profile.periods):
            return "negative or non-finite limit"
        if profile.kind is not ProfileKind.RELATIVE and profile.start_schedule is None:
            return f"{profile.kind} profile needs a startSchedule"
        if profile.purpose is ProfilePurpose.STATION_MAX:
            if profile.connector_id != 0:
                return "a station maximum profile belongs on connector 0"
            if profile.kind is ProfileKind.RELATIVE:
                return "a station maximum profile cannot be Relative"
        if profile.purpose is ProfilePurpose.TX:
            tx = active.get(profile.connector_id)
            if profile.connector_id == 0 or tx is None:
                return "TxProfile needs a connector with a running transaction"
            if profile.transaction_id is not None and profile.transaction_id != tx.transaction_id:
                return f"transaction {profile.transaction_id} is not running on connector {profile.connector_id}"
        return ""

    def clear(
        self,
        *,
        profile_id: int | None = None,
        connector_id: int | None = None,
        purpose: ProfilePurpose | None = None,
        stack_level: int | None = None,
    ) -> int:
        """Remove matching profiles (an id wins over the criteria; no arguments = all). Returns how many."""
        def matches(p: ChargingProfile) -> bool:
            if profile_id is not None:
                return p.id == profile_id
            return (
                (connector_id is None or p.connector_id == connector_id)
                and (purpose is None or p.purpose is purpose)
                and (stack_level is None or p.stack_level == stack_level)
            )

        before = len(self.profiles)
        self.profiles = [p for p in self.profiles if not matches(p)]
        return before - len(self.profiles)

    def end_transaction(self, connector_id: int) -> None:
        """TxProfiles die with their transaction (1.6 §3.13.1)."""
        self.clear(connector_id=connector_id, purpose=ProfilePurpose.TX)

    # ---------------------------------------------------------------------------------- evaluate

    def _winner(
        self, purpose: ProfilePurpose, connector_id: int, at: datetime, tx: TxContext | None
    ) -> tuple[ChargingProfile, SchedulePeriod] | None:
        if purpose is ProfilePurpose.TX:
            if tx is None:
                return None
            candidates = [
                p
                for p in self.profiles
                if p.purpose is purpose
                and p.connector_id == connector_id
                and p.transaction_id in (None, tx.transaction_id)
            ]
        elif purpose is ProfilePurpose.TX_DEFAULT:
            candidates = [p for p in self.profiles if p.purpose is purpose and p.connector_id in (0, connector_id)]
        else:
            candidates = [p for p in self.profiles if p.purpose is purpose]
        # connector-specific first, then the highest stack level
        candidates.sort(key=lambda p: (p.connector_id != 0, p.stack_level), reverse=True)
        tx_start = tx.started_at if tx is not None else None
        for profile in candidates:
            period = profile.period_at(at, tx_start)
            if period is not None:
                return profile, period
        return None

    def layers_at(self, connector_id: int, at: datetime, tx: TxContext | None) -> tuple[str | None, str | None]:
        """Which profiles set a connector's limits at ``at``, for traces: (the TxProfile or TxDefaultProfile in
        force, the station max in force), each as ``purpose@stack level``, or None where that layer sets none."""
        station = self._winner(ProfilePurpose.STATION_MAX, 0, at, None)
        own = self._winner(ProfilePurpose.TX, connector_id, at, tx) or self._winner(
            ProfilePurpose.TX_DEFAULT, connector_id, at, tx
        )
        return _layer_name(own), _layer_name(station)

    def limit_at(
        self, connector_id: int, at: datetime, tx: TxContext | None, *, voltage_v: float, phases: int
    ) -> CompositeLimit:
        """The per-phase current limits at ``at`` for a connector drawing on up to ``phases`` phases.
        ``connector_id`` 0 evaluates only the station maximum."""
        station = self._winner(ProfilePurpose.STATION_MAX, 0, at, None)
        tx_or_default = None
        if connector_id != 0:
            tx_or_default = self._winner(ProfilePurpose.TX, connector_id, at, tx) or self._winner(
                ProfilePurpose.TX_DEFAULT, connector_id, at, tx
            )
        chosen = [w for w in (station, tx_or_default) if w is not None]
        used = min([phases, *(min(phases, p.number_phases or DEFAULT_NUMBER_PHASES) for _, p in chosen)])

        def per_phase_a(winner: tuple[ChargingProfile, SchedulePeriod] | None) -> float | None:
            if winner is None:
                return None
            profile, period = winner
            if profile.unit is RateUnit.AMPS:
                return period.limit
            return period.limit / (voltage_v * used)

        return CompositeLimit(per_phase_a(tx_or_default), per_phase_a(station), used)

    def composite_schedule(
        self,
        connector_id: int,
        start: datetime,
        duration_s: float,
        tx: TxContext | None,
        *,
        voltage_v: float,
        phases: int,
        hardware_a: float,
    ) -> list[tuple[float, float, int]]:
        """The composite schedule as (offset s, per-phase A, phases) periods from ``start``."""
        end = start + timedelta(seconds=duration_s)
        tx_start = tx.started_at if tx is not None else start
        instants = {start}
        for profile in self.profiles:
            instants |= profile.breakpoints(start, end, tx_start)
        periods: list[tuple[float, float, int]] = []
        for at in sorted(instants):
            limit = self.limit_at(connector_id, at, tx, voltage_v=voltage_v, phases=phases)
            combined = limit.combined_a()
            current_a = hardware_a if combined is None else min(combined, hardware_a)
            if periods and periods[-1][1:] == (current_a, limit.phases):
                continue
            periods.append(((at - start).total_seconds(), current_a, limit.phases))
        return periods
