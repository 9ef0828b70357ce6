"""Three pieces of a profile call's cost to the controller, each measured alone in CPU time (so a busy machine
moves them little), for the docs (docs/benchmarks.md, "Dispatch CPU per call"); nothing is asserted:

    python -m benchmarks.live.dispatch_costs --frames 5000 --records 2000

- permessage-deflate (RFC 7692, ``ocpp.compression``): CPU and bytes per frame for the frames a depot exchanges
  most, a SetChargingProfile CALL built by depotctl (out) with its answer (in) and a charger's MeterValues (in)
  with its answer (out), through the websockets extension the OCPP server negotiates (12-bit windows, memLevel 5,
  context takeover) on one connection's compressor/decompressor pair, as on a real link;
- recording the calls in the store (SQLite in a temporary directory): one transaction per call, as before, against
  one transaction for a tick's calls (``Store.record_commands``);
- the schema check of a charger's answer: the ``ocpp`` library's jsonschema check against the remembered result
  for an answer already found valid (``csms_adapter.protocol.link``).

Each figure is the median of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ocpp.messages import CallResult, validate_payload
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode

from csms_adapter.protocol import ocpp_tuning
from csms_adapter.protocol.link import _validate_answer, utc_iso
from csms_adapter.protocol.ocpp16 import _schedule, charging_profile  # the builders the link itself uses
from csms_adapter.store import CommandEntry, Store
from optimizer.domain import RateUnit

T0 = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)


def profile_call(k: int) -> str:
    """A 1.6 TxProfile CALL as the controller sends it (``ocpp16.Ocpp16Link.set_tx_limit``)."""
    now = T0 + timedelta(seconds=60 * k)
    profile = charging_profile(101, 1, "TxProfile", _schedule(16.0 + (k % 7) / 10, RateUnit.AMPS, 3,
                                                              now - timedelta(seconds=5), 185),
                               transaction_id=1000 + k, valid_to=now + timedelta(seconds=180))
    return json.dumps([2, str(uuid.uuid4()), "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": profile}],
                      separators=(",", ":"))


def meter_values(k: int) -> str:
    """A 1.6 MeterValues of the five sampled measurands (three phases of current) as an emulated charger sends it."""
    when = utc_iso(T0 + timedelta(seconds=10 * k))
    sampled = [{"value": f"{7300 + k % 50}.0", "measurand": "Power.Active.Import", "unit": "W"},
               {"value": f"{12345678 + 20 * k}", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
               {"value": f"{40 + k % 60}", "measurand": "SoC", "unit": "Percent"},
               {"value": "16.0", "measurand": "Current.Offered", "unit": "A"}]
    sampled += [{"value": f"{10.6 + (k % 5) / 10:.1f}", "measurand": "Current.Import", "phase": f"L{p}", "unit": "A"}
                for p in (1, 2, 3)]
    payload = {"connectorId": 1, "transactionId": 1000, "meterValue": [{"timestamp": when, "sampledValue": sampled}]}
    return json.dumps([2, str(uuid.uuid4()), "MeterValues", payload], separators=(",", ":"))


def answer(frame: str, payload: dict[str, str]) -> str:
    return json.dumps([3, json.loads(frame)[1], payload], separators=(",", ":"))


def pair() -> tuple[PerMessageDeflate, PerMessageDeflate]:
    """(server side, charger side) of one connection, as the server's defaults negotiate them."""
    server = PerMessageDeflate(False, False, 12, 12, {"memLevel": 5})
    charger = PerMessageDeflate(False, False, 12, 12, {"memLevel": 5})
    return server, charger


def run(frames: int) -> dict[str, float]:
    server, charger = pair()
    sizes = {"out_plain": 0, "out_deflated": 0, "in_plain": 0, "in_deflated": 0}
    out = [profile_call(k) for k in range(frames // 2)] + [answer(meter_values(k), {}) for k in range(frames // 2)]
    incoming = [answer(f, {"status": "Accepted"}) for f in out[: frames // 2]] + [meter_values(k)
                                                                                 for k in range(frames // 2)]
    # The charger compresses what the server will receive (not timed: that is the charger's CPU).
    wire_in = [charger.encode(Frame(Opcode.TEXT, text.encode())) for text in incoming]
    started = time.process_time()
    for text in out:
        deflated = server.encode(Frame(Opcode.TEXT, text.encode()))
        sizes["out_plain"] += len(text.encode())
        sizes["out_deflated"] += len(deflated.data)
    for frame, text in zip(wire_in, incoming, strict=True):
        server.decode(frame)
        sizes["in_plain"] += len(text.encode())
        sizes["in_deflated"] += len(frame.data)
    cpu_s = time.process_time() - started
    n = len(out) + len(incoming)
    return {"cpu_us_per_frame": cpu_s / n * 1e6, **{k: v / (frames // 2 * 2) for k, v in sizes.items()}}


def store_costs(records: int) -> tuple[float, float]:
    """CPU ms per recorded call: one transaction each, and all in one (``Store.record_commands``)."""
    payload = {"purpose": "TxProfile", "limit": 16.0, "unit": "A", "phases": 3, "limit_kw": 11.04,
               "transaction_id": "1017"}
    entries = [CommandEntry(f"cp-{k:04d}", 1, "SetChargingProfile", payload, T0, "Accepted", None, 41.0)
               for k in range(records)]
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{Path(tmp) / 'costs.db'}", site="bench")
        try:
            started = time.process_time()
            for e in entries:
                store.record_command(e.charger_id, e.connector_id, e.action, e.payload, sent_at=e.sent_at,
                                     answer=e.answer, error=e.error, latency_ms=e.latency_ms)
            one_each = time.process_time() - started
            started = time.process_time()
            store.record_commands(entries)
            batched = time.process_time() - started
        finally:
            store.close()
    return one_each / records * 1000.0, batched / records * 1000.0


def validation_costs(answers: int) -> tuple[float, float]:
    """CPU µs per profile answer: the library's schema check, and the remembered result."""
    ocpp_tuning.install()  # validation in place, as the OCPP server runs it
    made: list[CallResult] = []
    for k in range(answers):
        result = CallResult(str(k), {"status": "Accepted"})
        result.action = "SetChargingProfile"
        made.append(result)

    async def timed(check: Callable[[CallResult, str], object]) -> float:
        started = time.process_time()
        for result in made:
            await check(result, "2.0.1")  # type: ignore[misc]
        return (time.process_time() - started) / answers * 1e6

    async def both() -> tuple[float, float]:
        return await timed(validate_payload), await timed(_validate_answer)

    return asyncio.run(both())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.live.dispatch_costs", description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=5000, help="frames each way per repeat")
    parser.add_argument("--records", type=int, default=2000, help="calls recorded per repeat (a 1,000-charger tick)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    runs = [run(args.frames) for _ in range(args.repeats)]
    cpu = statistics.median(r["cpu_us_per_frame"] for r in runs)
    r = runs[0]
    print(f"permessage-deflate, {args.frames} frames each way, median of {args.repeats} runs:")
    print(f"  server CPU per frame (compress out / decompress in)  {cpu:.1f} µs")
    print(f"  bytes per frame out (profiles, meter answers)       {r['out_plain']:.0f} -> {r['out_deflated']:.0f}")
    print(f"  bytes per frame in (profile answers, meter values)  {r['in_plain']:.0f} -> {r['in_deflated']:.0f}")
    saved = 1 - (r["out_deflated"] + r["in_deflated"]) / (r["out_plain"] + r["in_plain"])
    print(f"  payload bytes saved                                 {100 * saved:.0f} %")
    stores = [store_costs(args.records) for _ in range(args.repeats)]
    print(f"command records in the store (SQLite), {args.records} calls, CPU per call: one transaction each "
          f"{statistics.median(s[0] for s in stores):.3f} ms, one for all {statistics.median(s[1] for s in stores):.3f} ms")
    checks = [validation_costs(args.records) for _ in range(args.repeats)]
    print(f"schema check of a profile answer, CPU per answer: jsonschema {statistics.median(c[0] for c in checks):.0f} µs, "
          f"remembered {statistics.median(c[1] for c in checks):.0f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
