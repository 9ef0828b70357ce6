"""Floods, oversized frames, too many connections, silent sockets: each is closed or refused with a reason and
counted, and the other chargers keep being served."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from live_site import ENV, PASSWORD_A, PASSWORD_B, make_site
from security_helpers import exchange, raw_client
from websockets.exceptions import ConnectionClosed, InvalidStatus

from csms_adapter.control.controller import Controller
from csms_adapter.protocol.frame_guard import GuardLimits

HB = '[2,"hb","Heartbeat",{}]'


async def closed_with(ws: object, timeout_s: float = 5.0) -> tuple[int | None, str | None]:
    """Drain ``ws`` until the server closes it; (close code, reason) as received."""
    with contextlib.suppress(ConnectionClosed):
        async with asyncio.timeout(timeout_s):
            while True:
                await ws.recv()  # type: ignore[attr-defined]
    rcvd = ws.protocol.close_rcvd  # type: ignore[attr-defined]
    return (rcvd.code, rcvd.reason) if rcvd is not None else (None, None)


async def test_a_flood_is_throttled_then_closed_and_others_are_served() -> None:
    limits = GuardLimits(rate_per_s=50, burst=10, close_after_throttled_s=0.5)
    async with Controller(make_site(), env=ENV, debounce_real_s=0.05, guard_limits=limits) as c:
        flooder = await raw_client(c.url, "cp-a", PASSWORD_A)
        good = await raw_client(c.url, "cp-b", PASSWORD_B, "ocpp2.0.1")
        try:
            for n in range(400):  # without waiting for answers, like an attacker (a charger waits for each)
                try:
                    await flooder.send(f'[2,"f{n}","Heartbeat",{{}}]')
                except ConnectionClosed:
                    break
            assert (await exchange(good, HB) or [])[0] == 3  # served during the flood
            code, reason = await closed_with(flooder)
            assert (code, reason) == (1008, "message rate limit exceeded")
            assert (await exchange(good, HB) or [])[0] == 3
        finally:
            await flooder.close()
            await good.close()
        counts = c.server.counters.of("cp-a")
        assert counts["rate_throttled"] > 10 and counts["rate_closed"] == 1
        assert "rate_throttled" not in c.server.counters.of("cp-b")


async def test_a_well_behaved_burst_is_slowed_not_closed() -> None:
    limits = GuardLimits(rate_per_s=100, burst=5, close_after_throttled_s=5)
    async with Controller(make_site(), env=ENV, debounce_real_s=0.05, guard_limits=limits) as c:
        ws = await raw_client(c.url, "cp-a", PASSWORD_A)
        try:
            started = asyncio.get_running_loop().time()
            for n in range(60):  # a charger emptying its offline queue: one CALL at a time
                reply = await exchange(ws, f'[2,"q{n}","Heartbeat",{{}}]')
                assert reply is not None and reply[0] == 3
            elapsed = asyncio.get_running_loop().time() - started
        finally:
            await ws.close()
        assert elapsed >= (60 - 5) / 100 * 0.9  # paced by the bucket
        assert c.server.counters.of("cp-a").get("rate_closed", 0) == 0


async def test_an_oversized_frame_closes_only_that_connection_with_1009() -> None:
    limits = GuardLimits(max_frame_bytes=64 * 1024)
    async with Controller(make_site(), env=ENV, debounce_real_s=0.05, guard_limits=limits) as c:
        big = await raw_client(c.url, "cp-a", PASSWORD_A)
        good = await raw_client(c.url, "cp-b", PASSWORD_B, "ocpp2.0.1")
        try:
            await big.send('[2,"big","DataTransfer",{"vendorId":"x","data":"' + "A" * 100_000 + '"}]')
            code, _ = await closed_with(big)
            assert code == 1009
            assert (await exchange(good, HB) or [])[0] == 3
        finally:
            await big.close()
            await good.close()
        async with asyncio.timeout(5):
            while "frame_too_big" not in c.server.counters.of("cp-a"):
                await asyncio.sleep(0.01)


async def test_connections_per_address_are_capped_before_authentication() -> None:
    limits = GuardLimits(max_connections_per_address=2)
    async with Controller(make_site(), env=ENV, debounce_real_s=0.05, guard_limits=limits) as c:
        first = await raw_client(c.url, "cp-a", PASSWORD_A)
        second = await raw_client(c.url, "cp-b", PASSWORD_B, "ocpp2.0.1")
        try:
            with pytest.raises(InvalidStatus) as info:
                await raw_client(c.url, "cp-a", PASSWORD_A)  # even with the right password: no takeover
            assert info.value.response.status_code == 503
            assert (await exchange(first, HB) or [])[0] == 3
        finally:
            await first.close()
            await second.close()
        assert c.server.counters.snapshot()["handshake_address_cap"] == 1


async def test_repeated_failed_logins_lock_the_address_out() -> None:
    limits = GuardLimits(auth_failures_per_window=3, auth_window_s=60)
    async with Controller(make_site(), env=ENV, debounce_real_s=0.05, guard_limits=limits) as c:
        for _ in range(3):
            with pytest.raises(InvalidStatus) as info:
                await raw_client(c.url, "cp-a", "guess-guess-guess")
            assert info.value.response.status_code == 401
        with pytest.raises(InvalidStatus) as info:
            await raw_client(c.url, "cp-a", PASSWORD_A)
        assert info.value.response.status_code == 429
        assert "Retry-After" in info.value.response.headers
        assert c.server.counters.snapshot()["handshake_auth_lockout"] == 1


async def test_a_socket_that_never_sends_the_handshake_is_dropped() -> None:
    limits = GuardLimits(open_timeout_s=0.3)
    async with Controller(make_site(), env=ENV, debounce_real_s=0.05, guard_limits=limits) as c:
        reader, writer = await asyncio.open_connection("127.0.0.1", c.port)
        try:
            async with asyncio.timeout(3):
                data = await reader.read()  # EOF once the server gives up on the handshake
        finally:
            writer.close()
            await writer.wait_closed()
        assert b"101" not in data


async def test_an_idle_connection_is_closed_with_a_reason() -> None:
    limits = GuardLimits(idle_timeout_s=0.3)
    async with Controller(make_site(), env=ENV, debounce_real_s=0.05, guard_limits=limits) as c:
        ws = await raw_client(c.url, "cp-a", PASSWORD_A)
        try:
            code, reason = await closed_with(ws)
        finally:
            await ws.close()
        assert (code, reason) == (1000, "idle timeout")
        assert c.server.counters.of("cp-a")["idle_closed"] == 1
