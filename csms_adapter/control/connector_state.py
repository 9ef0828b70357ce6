"""What the controller knows of each charger and connector between events: latest readings, the open session,
the last accepted command. Plain records; ``LiveState`` fills them from events and turns them into snapshots."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from csms_adapter.protocol import events as ev
from optimizer.domain import Phase, ValueSource
from optimizer.soc_fusion import SocTrack
from optimizer.vehicle_limit import Observation, VehicleLimit


@dataclass(slots=True)
class Reading:
    value: float
    at: datetime
    source: ev.Source


@dataclass(slots=True)
class Readings:
    """The newest value of each measurand the controller reads, one typed field each (no string keys)."""

    power_kw: Reading | None = None  # Power.Active.Import, grid → EV
    current_a: Reading | None = None  # Current.Import without a phase
    energy_kwh: Reading | None = None  # the energy register
    soc: Reading | None = None  # 0..1
    battery_temp_c: Reading | None = None  # location EV, or a vendor measurand
    charger_temp_c: Reading | None = None  # the charger's own Temperature
    phase_current_a: dict[str, Reading] = field(default_factory=dict)  # L1, L2, L3

    def keep(self, sample: ev.MeterSample) -> bool:
        """Store ``sample`` if it is at least as new as what is held (replayed, queued samples never overwrite a
        fresher one). False when it was older, or a quantity the controller does not read (kept by the store)."""
        reading = Reading(sample.value, sample.time, sample.source)
        if sample.phase is not None:
            phase = sample.phase[:2]
            if sample.quantity is not ev.Quantity.CURRENT_A or phase not in PHASE_LETTERS:
                return False
            if _older(self.phase_current_a.get(phase), sample):
                return False
            self.phase_current_a[phase] = reading
            return True
        match sample.quantity:
            case ev.Quantity.POWER_KW if not _older(self.power_kw, sample):
                self.power_kw = reading
            case ev.Quantity.CURRENT_A if not _older(self.current_a, sample):
                self.current_a = reading
            case ev.Quantity.ENERGY_KWH if not _older(self.energy_kwh, sample):
                self.energy_kwh = reading
            case ev.Quantity.SOC if not _older(self.soc, sample):
                self.soc = reading
            case ev.Quantity.TEMPERATURE_C if _is_battery(sample):
                if _older(self.battery_temp_c, sample):
                    return False
                self.battery_temp_c = reading
            case ev.Quantity.TEMPERATURE_C if not _older(self.charger_temp_c, sample):
                self.charger_temp_c = reading
            case _:
                return False
        return True


PHASE_LETTERS = ("L1", "L2", "L3")


def _older(held: Reading | None, sample: ev.MeterSample) -> bool:
    return held is not None and held.at > sample.time


def _is_battery(sample: ev.MeterSample) -> bool:
    return sample.location == "EV" or sample.source is ev.Source.VENDOR


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
    energy_at: datetime | None = None  # when ``energy_now_kwh`` was measured (the sample's time)
    ignoring_limit: bool = False  # sticky for the session: a charger that ignored once is not trusted again
    over_since: datetime | None = None
    vehicle_limit: VehicleLimit | None = None  # what the vehicle was seen to take, when less than allowed
    seen: Observation | None = None  # what it was allowed and drew when last judged with something allowed
    # Site phases this session's vehicle was measured drawing on (per-phase Current.Import); empty: not known yet.
    drawn_phases: frozenset[Phase] = frozenset()
    # When the charger last reported SuspendedEV (1.6; the charger's time), cleared by any other status: the vehicle
    # takes none of the power offered, whatever an older meter reading says (``live_judgements``).
    ev_suspended_at: datetime | None = None
    # When a command of at least MIN_JUDGED_KW was accepted whose first settled draw reading is still to be judged
    # (``vehicle_stops.offer_refused``): a full vehicle takes nothing of what it is offered.
    offer_watch_from: datetime | None = None
    # The session's SoC readings against its energy register (optimizer.soc_fusion), and when the last was read:
    # an energy reading of that same moment that arrives after it re-pairs it.
    soc_track: SocTrack = field(default_factory=SocTrack)
    soc_track_at: datetime | None = None

    @property
    def delivered_kwh(self) -> float:
        if self.energy_start_kwh is None or self.energy_now_kwh is None:
            return 0.0
        return max(0.0, self.energy_now_kwh - self.energy_start_kwh)


@dataclass(slots=True)
class ConnectorState:
    plug: ev.PlugState = ev.PlugState.AVAILABLE
    plug_changed_at: datetime | None = None
    status: str | None = None  # the raw status last reported (1.6 ChargePointStatus, 2.0.1 connectorStatus)
    readings: Readings = field(default_factory=Readings)
    session: Session | None = None
    needs: ev.EvChargingNeeds | None = None
    needs_delivered_kwh: float = 0.0  # delivered energy when the needs arrived
    soc_delivered_kwh: float = 0.0  # delivered energy when the last SoC arrived
    command: Command | None = None
    rejected: str | None = None  # why the charger refused the open session's TxProfile; cleared on reconnect or a new session
    failing_since: datetime | None = None  # profile calls time out or fail; cleared by an accepted one or reconnect


@dataclass(slots=True)
class ChargerState:
    connected: bool = False
    connected_at: datetime | None = None  # when the current connection opened (controller clock)
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
