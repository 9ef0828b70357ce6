"""Fault injection for emulated chargers: what condition monitoring must see, on a schedule.

    FaultInjection(FaultKind.FAULT, "cp-01", at_s=600, duration_s=1800, code="GroundFailure", vendor_code="E-17")
    parse_fault("fault:cp-01:1@600+1800,code=GroundFailure,vendor=E-17")        # the same, from a command line

Kinds (``at_s`` and ``duration_s`` are emulated seconds after the fleet started; no duration: until the end):
- ``fault``: the connector reports Faulted with ``code`` (1.6 errorCode, vendorErrorCode, info; 2.0.1 a Faulted
  StatusNotification and a NotifyEvent ``Connector/Problem`` with techCode/techInfo) and delivers no power;
  clearing sends the status it would have without the fault, with ``NoError`` (and the cleared NotifyEvent).
- ``unavailable``: the connector reports Unavailable (an outage nobody asked for) and delivers no power.
- ``offline``: the connection drops and stays down; queued messages go out after the reconnect (OCPP-J §5.4).
- ``meter_glitch``: the energy register misbehaves in the readings of ``connector`` (``glitch``): ``backwards``
  (one reading 5 kWh below the truth), ``reset`` (the register restarts from 0 and stays offset), ``jump`` (one
  reading 1 MWh ahead, no charger could deliver that) or ``frozen`` (register and power repeat the last reading for
  ``duration_s`` while the vehicle keeps charging).
- ``ignore_limit``: the charger accepts its profiles and draws its hardware maximum anyway.

The spec syntax is ``KIND:CHARGER[:CONNECTOR]@AT_S[+DURATION_S][,key=value...]`` with keys ``code``, ``vendor``,
``info`` and ``glitch``. Each ``InjectionRecord`` keeps when the fault really started and cleared, so a benchmark
can score how fast the controller saw it.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from csms_adapter.emulator.events import MeterSample

# 1.6 ChargePointErrorCode values (NoError is the absence of a fault, not one).
ERROR_CODES_16 = frozenset({
    "ConnectorLockFailure", "EVCommunicationError", "GroundFailure", "HighTemperature", "InternalError",
    "LocalListConflict", "OtherError", "OverCurrentFailure", "OverVoltage", "PowerMeterFailure",
    "PowerSwitchFailure", "ReaderFailure", "ResetFailure", "UnderVoltage", "WeakSignal",
})
BACKWARDS_WH = 5_000.0
JUMP_WH = 1e6  # 1 MWh within one meter interval: hundreds of MW, no charger makes that
_SPEC = re.compile(r"^(?P<kind>[a-z_]+):(?P<charger>[^:@,]+)(?::(?P<connector>\d+))?@(?P<at>[0-9.]+)"
                   r"(?:\+(?P<duration>[0-9.]+))?(?P<options>(?:,[a-z_]+=[^,]*)*)$")


class FaultKind(StrEnum):
    FAULT = "fault"
    UNAVAILABLE = "unavailable"
    OFFLINE = "offline"
    METER_GLITCH = "meter_glitch"
    IGNORE_LIMIT = "ignore_limit"


class MeterGlitch(StrEnum):
    BACKWARDS = "backwards"
    RESET = "reset"
    JUMP = "jump"
    FROZEN = "frozen"


@dataclass(frozen=True, slots=True)
class FaultInjection:
    """One injected fault. ``connector_id`` is used by fault, unavailable and meter_glitch."""

    kind: FaultKind
    charger_id: str
    at_s: float
    duration_s: float | None = None
    connector_id: int = 1
    code: str = "OtherError"
    vendor_code: str | None = None
    info: str | None = None
    glitch: MeterGlitch = MeterGlitch.BACKWARDS

    def __post_init__(self) -> None:
        if self.at_s < 0 or (self.duration_s is not None and self.duration_s <= 0):
            raise ValueError("at_s must be >= 0 and duration_s > 0")
        if self.connector_id < 1:
            raise ValueError("connector must be >= 1")
        if self.kind is FaultKind.FAULT and self.code not in ERROR_CODES_16:
            raise ValueError(f"code must be an OCPP 1.6 ChargePointErrorCode ({', '.join(sorted(ERROR_CODES_16))})")
        if self.vendor_code is not None and len(self.vendor_code) > 50:
            raise ValueError("vendor code: at most 50 characters (1.6 vendorErrorCode)")
        if self.info is not None and len(self.info) > 50:
            raise ValueError("info: at most 50 characters (1.6 StatusNotification.info)")

    @property
    def clears(self) -> bool:
        """Whether the fault ends by itself (one-reading glitches always do)."""
        return self.duration_s is not None or (
            self.kind is FaultKind.METER_GLITCH and self.glitch in (MeterGlitch.BACKWARDS, MeterGlitch.JUMP))


@dataclass(slots=True)
class InjectionRecord:
    """What happened to one injection: emulated times it took effect and ended (None: not yet / never)."""

    fault: FaultInjection
    started_at: datetime | None = None
    cleared_at: datetime | None = None


def parse_fault(spec: str) -> FaultInjection:
    """A FaultInjection from ``KIND:CHARGER[:CONNECTOR]@AT_S[+DURATION_S][,key=value...]``. Raises ValueError
    saying what is wrong."""
    match = _SPEC.match(spec.strip())
    if match is None:
        raise ValueError(f"fault {spec!r}: expected KIND:CHARGER[:CONNECTOR]@AT_S[+DURATION_S][,key=value...], "
                         "e.g. fault:cp-01:1@600+1800,code=GroundFailure")
    try:
        kind = FaultKind(match["kind"])
    except ValueError:
        raise ValueError(f"fault {spec!r}: kind must be one of {', '.join(k.value for k in FaultKind)}") from None
    options: dict[str, str] = {}
    for item in filter(None, match["options"].split(",")):
        key, _, value = item.partition("=")
        if key not in ("code", "vendor", "info", "glitch"):
            raise ValueError(f"fault {spec!r}: unknown key {key!r} (code, vendor, info, glitch)")
        options[key] = value
    try:
        return FaultInjection(
            kind=kind,
            charger_id=match["charger"],
            at_s=float(match["at"]),
            duration_s=float(match["duration"]) if match["duration"] else None,
            connector_id=int(match["connector"]) if match["connector"] else 1,
            code=options.get("code", "OtherError"),
            vendor_code=options.get("vendor") or None,
            info=options.get("info") or None,
            glitch=MeterGlitch(options.get("glitch", "backwards")),
        )
    except ValueError as exc:
        raise ValueError(f"fault {spec!r}: {exc}") from None


@dataclass(slots=True)
class MeterFaultState:
    """The register glitches of one connector's meter, applied to what it reports (never to the physics)."""

    offset_wh: float = 0.0  # after a reset: the register reads this much below the energy really delivered
    pending: MeterGlitch | None = None  # a one-reading glitch for the next periodic reading
    frozen: bool = False
    last: MeterSample | None = None  # the last periodic reading sent

    def start(self, glitch: MeterGlitch, register_wh: float) -> None:
        if glitch is MeterGlitch.RESET:
            self.offset_wh = -register_wh
        elif glitch is MeterGlitch.FROZEN:
            self.frozen = True
        else:
            self.pending = glitch

    def stop(self) -> None:
        self.frozen = False

    def register(self, sample: MeterSample) -> MeterSample:
        """``sample`` as the (possibly reset) register reports it: every reading, start and stop values too."""
        if self.offset_wh == 0.0:
            return sample
        return dataclasses.replace(sample, energy_wh=max(0.0, sample.energy_wh + self.offset_wh))

    def reading(self, sample: MeterSample) -> MeterSample:
        """The periodic reading to send for the true ``sample`` (already through ``register``)."""
        if self.frozen and self.last is not None:
            return dataclasses.replace(self.last, at=sample.at)  # the same values again, newly stamped
        out = sample
        if self.pending is MeterGlitch.BACKWARDS:
            out = dataclasses.replace(sample, energy_wh=max(0.0, sample.energy_wh - BACKWARDS_WH))
        elif self.pending is MeterGlitch.JUMP:
            out = dataclasses.replace(sample, energy_wh=sample.energy_wh + JUMP_WH)
        self.pending = None
        self.last = sample
        return out
