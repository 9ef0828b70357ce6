"""What permessage-deflate (RFC 7692, ``ocpp.compression``) costs the controller in CPU and saves in bytes, per
frame, for the frames a depot exchanges most: a SetChargingProfile CALL built by depotctl (out) with its answer
(in), and a charger's MeterValues (in) with its answer (out).

    python -m benchmarks.live.compression_bench --frames 5000

The frames go through the websockets extension the OCPP server negotiates (its defaults: 12-bit windows, memLevel
5, context takeover), on one connection's compressor and decompressor pair, as on a real link. Printed: bytes of
payload per frame without and with compression, and the server side's CPU µs per frame to compress what it sends
and decompress what it receives (median of ``--repeats``). Nothing is asserted: the figures are for the docs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode

from csms_adapter.protocol.link import utc_iso
from csms_adapter.protocol.ocpp16 import _schedule, charging_profile  # the builders the link itself uses
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.live.compression_bench",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=5000, help="frames each way per repeat")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
