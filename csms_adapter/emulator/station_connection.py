"""The emulated station's side of the websocket (``EmulatedCharger``'s connection job): connect, and reconnect
without a new BootNotification (OCPP-J §5.4) when the CSMS went away; boot; and drain the station's queue of
messages while online. Functions of the station they serve (they keep its state there)."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from typing import TYPE_CHECKING, Literal, Protocol

from ocpp.exceptions import OCPPError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from csms_adapter.emulator.events import Outbound
from csms_adapter.tasks import cancel_and_wait

if TYPE_CHECKING:
    from csms_adapter.emulator.station import EmulatedCharger

log = logging.getLogger("csms_adapter.emulator.station")
OcppVersion = Literal["1.6", "2.0.1"]
SUBPROTOCOL: dict[str, str] = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1"}
SEND_ATTEMPTS = 3


class Link(Protocol):
    """One OCPP connection in one dialect (a ``ocpp`` ChargePoint subclass)."""

    async def start(self) -> None: ...
    async def boot(self) -> tuple[str, int]: ...
    async def send(self, event: Outbound) -> None: ...


def headers(station: EmulatedCharger) -> dict[str, str]:
    if station.password is None:
        return {}
    token = base64.b64encode(f"{station.identity}:{station.password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def make_link(station: EmulatedCharger, ws: ClientConnection) -> Link:
    if station.version == "1.6":
        from csms_adapter.emulator.v16 import V16Link

        return V16Link(station, ws)
    from csms_adapter.emulator.v201 import V201Link

    return V201Link(station, ws)


async def connection_loop(station: EmulatedCharger) -> None:
    delay_s = station.reconnect_s[0]
    while True:
        if station._offline_until is not None and station._offline_until > station.clock.now():
            await station.clock.sleep_until(station._offline_until)
        try:
            async with connect(
                station.url,
                subprotocols=[Subprotocol(SUBPROTOCOL[station.version])],
                additional_headers=headers(station),
                open_timeout=10,
                ping_interval=20,
                ping_timeout=20,
                close_timeout=2,
            ) as ws:
                if ws.subprotocol is None:
                    log.warning("charger=%s csms chose no subprotocol; retrying", station.identity)
                else:
                    delay_s = station.reconnect_s[0]
                    await serve(station, ws)
        except (OSError, InvalidHandshake, InvalidStatus, ConnectionClosed, TimeoutError) as exc:
            log.debug("charger=%s connection failed: %r", station.identity, exc)
        station.online.clear()
        station._ws = None
        if station._inflight is not None:
            station._inflight.cancel()
        await asyncio.sleep(delay_s * (0.5 + station.rng.random()))
        delay_s = min(station.reconnect_s[1], delay_s * 2)


async def serve(station: EmulatedCharger, ws: ClientConnection) -> None:
    station._ws = ws
    link = make_link(station, ws)
    station._link = link
    receiver = asyncio.create_task(link.start())
    try:
        if not station.accepted.is_set():
            await boot(station, link, receiver)
        else:
            station._queue_all_status()  # resync the CSMS after a reconnect, without booting again
        station.online.set()
        station._wake.set()
        await receiver
    except ConnectionClosed:
        pass
    finally:
        station.online.clear()
        station._link = None
        # The receiver may swallow one cancellation (the library, when a frame races it): cancel until it ends.
        await cancel_and_wait([receiver])
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError  # stop(): never swallow our own cancellation


async def boot(station: EmulatedCharger, link: Link, receiver: asyncio.Task[None]) -> None:
    while not receiver.done():
        station.boot_count += 1
        status, interval_s = await link.boot()
        if status == "Accepted":
            if interval_s > 0:
                station.heartbeat_s = float(interval_s)
            station.accepted.set()
            station._queue_all_status()
            return
        await station.clock.sleep(interval_s if interval_s > 0 else 30.0)
    await receiver  # raises the ConnectionClosed that ended it


async def sender_loop(station: EmulatedCharger) -> None:
    while not station._stopping:
        await station._wake.wait()
        station._wake.clear()
        while station._outbox and station.online.is_set() and station._ws is not None:
            event, attempts = station._outbox[0]
            link = station._link
            if link is None:
                break
            station._inflight = asyncio.create_task(link.send(event))
            started = time.perf_counter()
            try:
                await station._inflight
                _raise_if_cancelling()
                station.rtt_ms.append((time.perf_counter() - started) * 1000.0)
                station._outbox.popleft()
                station.sent += 1
            except asyncio.CancelledError:
                _raise_if_cancelling()
                break  # the connection dropped under the call: resend after reconnect
            except (ConnectionClosed, OSError):
                break
            except (TimeoutError, OCPPError) as exc:
                if attempts + 1 >= SEND_ATTEMPTS or isinstance(exc, OCPPError):
                    station._outbox.popleft()
                    station.dropped += 1
                    log.warning("charger=%s dropped %s after %r", station.identity, type(event).__name__, exc)
                else:
                    station._outbox[0] = (event, attempts + 1)
            finally:
                station._inflight = None


def _raise_if_cancelling() -> None:
    """Re-raise a cancellation of the current task that an awaited inner task swallowed (the inner task ended
    normally, so the outer ``await`` returned instead of raising): stop() must not wait for ever."""
    current = asyncio.current_task()
    if current is not None and current.cancelling():
        raise asyncio.CancelledError
