"""What the controller knows of each charger and connector between events: latest readings, the open session,
the last accepted command. Plain records; ``LiveState`` fills them from events and turns them into snapshots."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from csms_adapter.protocol import events as ev
from optimizer.domain import Phase, ValueSource
from optimizer.vehicle_limit import VehicleLimit


@dataclass(slots=True)
class Reading:
    value: float
    at: datetime
    source: ev.Source


@dataclass(slots=True)
class Command:
    """The limit last accepted by the charger for this connector."""

    limit_kw: float
    limit_a: float | None
    sent_at: datetime
    transaction_id: str
    # When the charger's acceptance arrived (the tick's ``sent_at`` is earlier by the solve and the call): a meter
    # reading taken before it still shows the previous limit.
    accepted_at: datetime | None = None


@dataclass(slots=True)
class Session:
    transaction_id: str
    id_tag: str | None
    started_at: datetime
    energy_start_kwh: float | None
    energy_now_kwh: float | None = None
    ignoring_limit: bool = False  # sticky for the session: a charger that ignored once is not trusted again
    over_since: datetime | None = None
    vehicle_limit: VehicleLimit | None = None  # what the vehicle was seen to take, when less than allowed
    # Site phases this session's vehicle was measured drawing on (per-phase Current.Import); empty: not known yet.
    drawn_phases: frozenset[Phase] = frozenset()

    @property
    def delivered_kwh(self) -> float:
        if self.energy_start_kwh is None or self.energy_now_kwh is None:
            return 0.0
        return max(0.0, self.energy_now_kwh - self.energy_start_kwh)


@dataclass(slots=True)
class ConnectorState:
    plug: ev.PlugState = ev.PlugState.AVAILABLE
    plug_changed_at: datetime | None = None
    readings: dict[str, Reading] = field(default_factory=dict)  # key: quantity, or battery/charger temperature
    phase_current_a: dict[str, Reading] = field(default_factory=dict)
    session: Session | None = None
    needs: ev.EvChargingNeeds | None = None
    needs_delivered_kwh: float = 0.0  # delivered energy when the needs arrived
    soc_delivered_kwh: float = 0.0  # delivered energy when the last SoC arrived
    command: Command | None = None
    rejected: str | None = None  # why the charger refused its TxProfile; cleared on reconnect
    failing_since: datetime | None = None  # profile calls time out or fail; cleared by an accepted one or reconnect

    def reading(self, key: str) -> Reading | None:
        return self.readings.get(key)


@dataclass(slots=True)
class ChargerState:
    connected: bool = False
    monitor_only: bool = False
    ocpp_version: str | None = None
    booted_at: datetime | None = None
    last_seen: datetime | None = None
    failsafe_accepted: bool = False
    connectors: dict[int, ConnectorState] = field(default_factory=dict)
    last_tag: tuple[str, datetime] | None = None
    # False from a (re)connect until its set-up steps ran (``charger_setup``): nothing is sent to it meanwhile.
    set_up: bool = True

    def connector(self, connector_id: int) -> ConnectorState:
        return self.connectors.setdefault(connector_id, ConnectorState())


@dataclass(frozen=True, slots=True)
class ConnectorView:
    """What the terminal view shows for one connector."""

    charger_id: str
    connector_id: int
    connected: bool
    plug: ev.PlugState
    transaction_id: str | None
    soc: float | None
    soc_source: ValueSource | None
    power_kw: float | None
    limit_kw: float | None
    limit_a: float | None
    temp_c: float | None
    controlled: bool
    note: str
