"""Fuzzing: property tests of the telemetry normaliser and the site loader, and thousands of mutated frames on a
live websocket, after which well-behaved chargers are still served correctly."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
from datetime import UTC, datetime
from typing import Any

import pytest
from fake_chargers import Charger16, Recorder, charger
from hypothesis import given, settings
from hypothesis import strategies as st
from live_site import ENV, PASSWORD_A, PASSWORD_B, SITE_YAML, make_site
from security_helpers import raw_client
from websockets.exceptions import ConnectionClosed, InvalidStatus

from csms_adapter.control.controller import Controller
from csms_adapter.protocol.events import Quantity
from csms_adapter.protocol.frame_guard import GuardLimits
from csms_adapter.protocol.telemetry import _RANGE, normalise_meter_values
from optimizer.errors import ConfigError
from optimizer.site_loader import parse_site

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)
MEASURANDS = ["SoC", "Power.Active.Import", "Current.Import", "Energy.Active.Import.Register", "Temperature",
              "Voltage", "Power.Offered", "Frequency", ""]
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**12, 10**12))
values = st.one_of(numbers, numbers.map(str), st.text(max_size=8), st.none(), st.booleans())
sampled = st.fixed_dictionaries({"value": values}, optional={
    "measurand": st.sampled_from(MEASURANDS), "unit": st.sampled_from(["W", "kW", "Wh", "A", "Percent", "K", "x"]),
    "phase": st.sampled_from(["L1", "L2", "L3", "N", "L1-N"]), "unit_of_measure": st.dictionaries(
        st.sampled_from(["unit", "multiplier"]), st.one_of(st.integers(-20, 20), st.text(max_size=3)))})
groups = st.fixed_dictionaries({"sampled_value": st.lists(sampled, max_size=6)}, optional={
    "timestamp": st.one_of(st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()), st.text(max_size=5))})


@settings(max_examples=300, deadline=None)
@given(st.lists(groups, max_size=4))
def test_every_accepted_sample_is_finite_in_range_and_not_from_the_future(meter_value: list[dict[str, Any]]) -> None:
    result = normalise_meter_values("cp", 1, meter_value, now=NOW)
    for sample in result.samples:
        low, high = _RANGE[sample.quantity]
        assert math.isfinite(sample.value) and low <= sample.value <= high * 3  # a total is up to three phases
        assert sample.time <= NOW.replace(minute=NOW.minute + 5)
        if sample.quantity is Quantity.SOC:
            assert 0.0 <= sample.value <= 1.0


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_the_site_loader_raises_only_config_errors(data: st.DataObject) -> None:
    lines = SITE_YAML.splitlines()
    index = data.draw(st.integers(0, len(lines) - 1))
    junk = data.draw(st.sampled_from(["", "  x: [", "- -", ": :", "  max_current_a: -1", "  connectors: 1e309",
                                      "  phases: '3'", "\t", "  id: cp-a", "  parent: main", "{{", "~"]))
    mutated = "\n".join([*lines[:index], junk, *lines[index + 1:]])
    with contextlib.suppress(ConfigError):  # anything else escapes and fails the test
        parse_site(mutated, "fuzz.yaml")


SEEDS = [
    '[2,"1","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]',
    '[2,"2","MeterValues",{"connectorId":1,"transactionId":5,"meterValue":[{"timestamp":"2025-06-01T12:00:00Z",'
    '"sampledValue":[{"value":"55","measurand":"SoC"},{"value":"7000","measurand":"Power.Active.Import"}]}]}]',
    '[2,"3","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Charging"}]',
    '[2,"4","StartTransaction",{"connectorId":1,"idTag":"T","meterStart":0,"timestamp":"2025-06-01T12:00:00Z"}]',
    '[2,"5","Heartbeat",{}]', '[3,"6",{}]', '[4,"7","GenericError","",{}]',
]
TOKENS = ["NaN", "-1e400", "1e308", '"x"', "null", "[]", "{}", "true", "-0", '"\\ud800"', "9" * 400]


def mutate(rng: random.Random) -> str | bytes:
    frame = rng.choice(SEEDS)
    kind = rng.randrange(7)
    if kind == 0:  # flip bytes
        raw = bytearray(frame.encode())
        for _ in range(rng.randint(1, 4)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        return bytes(raw) if rng.random() < 0.3 else raw.decode("utf-8", "replace")
    if kind == 1:  # truncate
        return frame[: rng.randrange(len(frame))]
    if kind == 2:  # replace a scalar with a hostile token
        parts = frame.split(":")
        i = rng.randrange(len(parts))
        parts[i] = rng.choice(TOKENS) + ("}" * parts[i].count("}")) + ("]" * parts[i].count("]"))
        return ":".join(parts)
    if kind == 3:  # structural: wrong message type, id, nesting
        return rng.choice(['[9,"x","Heartbeat",{}]', '[2,1,"Heartbeat",{}]', "[" * 3000, '[2,"x"]',
                           '"just a string"', "1", '[2,"x","Heartbeat",{"a":' * 50 + "1" + "}]" * 50])
    if kind == 4:  # a valid frame with a duplicated/odd key
        return frame.replace("{", '{"customData":{"vendorId":"' + "v" * rng.randint(0, 300) + '"},', 1)
    if kind == 5:
        return json.dumps([2, str(rng.random())[:36], rng.choice(["FooBar", "MeterValues", "DataTransfer"]),
                           {"connectorId": rng.choice([1, -1, "1", None, 2**40]), "meterValue": rng.choice(
                               [[], {}, [{"sampledValue": [{"value": rng.choice(TOKENS)}]}]])}])
    return frame


@pytest.mark.slow  # long end-to-end: `pytest -m "not slow"` for a quick round
async def test_thousands_of_mutated_frames_leave_the_server_serving_well_behaved_chargers() -> None:
    limits = GuardLimits(rate_per_s=100_000, burst=100_000)  # the fuzzer must not just be throttled away
    rng = random.Random(20250601)
    sent = 0
    async with Controller(make_site(), env=ENV, debounce_real_s=0.05, guard_limits=limits) as c:
        while sent < 3000:
            try:
                ws = await raw_client(c.url, "cp-a", PASSWORD_A)
            except InvalidStatus:
                await asyncio.sleep(0.05)
                continue

            async def drain(ws: Any = ws) -> None:  # keep reading so the server never blocks on sending
                with contextlib.suppress(ConnectionClosed):
                    async for _ in ws:
                        pass

            reader = asyncio.create_task(drain())
            try:
                for _ in range(500):
                    await ws.send(mutate(rng))
                    sent += 1
            except ConnectionClosed:
                pass  # e.g. a frame the server refused to read further (1009/1007): reconnect and go on
            finally:
                # Let the server read what was sent before closing (its pong comes after the frames ahead of the
                # ping), so the count below does not depend on how busy the server happened to be.
                with contextlib.suppress(ConnectionClosed, TimeoutError):
                    async with asyncio.timeout(5):
                        await (await ws.ping())
                await ws.close()
                await reader
        assert sum(c.server.counters.of("cp-a").values()) > 500  # most frames were refused and counted
        assert c.server.counters.of("cp-b") == {}
        rec = Recorder()
        async with charger(c.url, "cp-a", PASSWORD_A, "1.6", rec) as good:
            assert isinstance(good, Charger16)
            assert (await good.boot()).status == "Accepted"
            tx = await good.start_tx(2, "TAG1", 0)
            await good.meter(2, tx, [{"value": "40", "measurand": "SoC", "unit": "Percent"},
                                     {"value": "7000", "measurand": "Power.Active.Import", "unit": "W"}])
            await rec.wait_for(lambda: any(p.get("transaction_id") == tx for p in rec.tx_profiles()))
            async with asyncio.timeout(10):  # the profile arrives while its tick is still dispatching
                while c.loop.last is None:
                    await asyncio.sleep(0.01)
        tick = c.loop.last
        assert tick is not None and tick.plan is not None
        for session in tick.snapshot.sessions:
            assert session.soc is None or 0.0 <= session.soc <= 1.0
        async with charger(c.url, "cp-b", PASSWORD_B, "2.0.1") as other:
            assert (await other.boot()).status == "Accepted"
