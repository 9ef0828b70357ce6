"""Webhook delivery of incident openings and resolutions (docs/alerts.md).

Each ``opened`` and ``resolved`` change the Monitor reports becomes one POST per configured target whose
``min_severity`` it reaches, with the body ``{"event": ..., "site": ..., "incident": {...}}`` of the contract and,
when the target has a secret, ``X-Depotctl-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes>``.
The Monitor calls listeners only after its debounce (an offline blip shorter than ``monitoring.debounce_s`` never
reaches here); this module adds that a change is queued once per incident and event, whatever the Monitor
repeats, and that ``repeated`` changes are not sent.

Delivery never blocks the control loop: the listener only appends to a bounded per-target queue; one task per
target posts in order (so a resolution never overtakes its opening), retries a failed attempt with exponential
back-off and jitter, and gives up after ``RetryPolicy.max_attempts`` or at once on a 4xx that a retry cannot
fix. Every failed attempt counts in ``depotctl_webhook_failures_total``. When a receiver is down for long
and the queue is full, the oldest queued change is shed (counted and logged): the newest state matters most.
Webhook URLs often carry a token in their path, so logs name only the scheme and host.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from csms_adapter.monitoring import SEVERITY_RANK, IncidentChange, Severity
from csms_adapter.tasks import cancel_and_wait
from optimizer.errors import ConfigError, ConfigProblem

log = logging.getLogger("depotctl.webhooks")

SIGNATURE_HEADER = "X-Depotctl-Signature"
USER_AGENT = "depotctl-webhook/1"
SENT_EVENTS = ("opened", "resolved")
_RETRYABLE_4XX = frozenset({408, 425, 429})
_SEEN_MAX = 20_000  # (incident, event) pairs remembered to send each once; old incidents are long delivered


class WebhookConfig(Protocol):
    """One entry of the site file's ``monitoring.webhooks`` as the site loader gives it."""

    @property
    def url(self) -> str: ...

    @property
    def min_severity(self) -> str: ...

    @property
    def secret_env(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """A receiver with its secret resolved from the environment (``None``: the body goes unsigned)."""

    url: str
    min_severity: Severity = Severity.INFO
    secret: bytes | None = field(default=None, repr=False)

    def wants(self, severity: Severity) -> bool:
        return SEVERITY_RANK[severity] >= SEVERITY_RANK[self.min_severity]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Back-off between attempts: ``first_delay_s`` doubling up to ``max_delay_s``, each scaled by a random factor
    in [0.5, 1] so that many controllers do not hit a recovering receiver at the same instant."""

    first_delay_s: float = 2.0
    max_delay_s: float = 300.0
    max_attempts: int = 10  # about 17 minutes of trying with the defaults
    timeout_s: float = 10.0  # per attempt, connect to response headers

    def delay_s(self, failed_attempts: int, rng: random.Random) -> float:
        base = min(self.max_delay_s, self.first_delay_s * 2.0 ** (failed_attempts - 1))
        return base * (0.5 + 0.5 * rng.random())


@dataclass(slots=True)
class WebhookStats:
    """Counters since start, summed over targets (``/metrics`` reads them)."""

    delivered: int = 0
    failures: int = 0  # failed attempts: transport error, time-out or non-2xx answer
    dropped: int = 0  # changes given up after the last attempt, refused for good, or shed from a full queue


@dataclass(frozen=True, slots=True)
class Delivery:
    event: str
    incident_id: str
    body: bytes

    @property
    def delivery_id(self) -> str:
        # The same for every attempt, so a receiver can drop a duplicate (an attempt that timed out after the
        # receiver took it is sent again).
        return f"{self.incident_id}:{self.event}"


class DeliveryFailed(Exception):
    """An attempt did not reach the receiver (transport error or time-out)."""


# (url, body, headers, timeout_s) -> HTTP status; raises DeliveryFailed when no answer came.
Post = Callable[[str, bytes, Mapping[str, str], float], Awaitable[int]]


def sign(secret: bytes, body: bytes) -> str:
    """The ``X-Depotctl-Signature`` value for ``body``: ``sha256=`` and the hex HMAC-SHA256 with ``secret``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, signature: str) -> bool:
    """What a receiver does: compare in constant time."""
    return hmac.compare_digest(sign(secret, body), signature)


def encode(site: str, change: IncidentChange) -> bytes:
    """The contract's body, serialised once: the signature covers exactly these bytes."""
    document = {"event": change.event, "site": site, "incident": change.incident.to_json()}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def redact_url(url: str) -> str:
    """``scheme://host[:port]/…``: what a log may show of a webhook URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}{f':{parts.port}' if parts.port else ''}/…"


def resolve_targets(webhooks: Sequence[WebhookConfig], env: Mapping[str, str], *,
                    source: str = "site file") -> list[WebhookTarget]:
    """Targets for the site file's ``monitoring.webhooks``. Raises ConfigError naming every entry whose URL is not
    http(s) or whose ``secret_env`` is not set in ``env``: a configured signature is never silently dropped."""
    problems: list[ConfigProblem] = []
    targets: list[WebhookTarget] = []
    for index, hook in enumerate(webhooks):
        key = f"monitoring.webhooks[{index}]"
        parts = urlsplit(hook.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(ConfigProblem(source, None, f"{key}.url", "must be an http:// or https:// URL"))
            continue
        try:
            severity = Severity(hook.min_severity)
        except ValueError:
            problems.append(ConfigProblem(source, None, f"{key}.min_severity",
                                          f"must be one of {', '.join(s.value for s in Severity)}"))
            continue
        secret: bytes | None = None
        if hook.secret_env:
            value = env.get(hook.secret_env, "")
            if not value:
                problems.append(ConfigProblem(source, None, f"{key}.secret_env",
                                              f"environment variable {hook.secret_env} is not set"))
                continue
            secret = value.encode()
        targets.append(WebhookTarget(hook.url, severity, secret))
    if problems:
        raise ConfigError(problems)
    return targets


@dataclass
class _Lane:
    """One target's queue and worker."""

    target: WebhookTarget
    queue: deque[Delivery] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    in_flight: Delivery | None = None
    task: asyncio.Task[None] | None = None


class WebhookNotifier:
    """Posts incident changes to ``targets``. A controller service: ``start``/``stop``; subscribe ``on_change``
    to the Monitor's listeners. ``post`` (tests) replaces the HTTP client."""

    def __init__(self, site: str, targets: Sequence[WebhookTarget], *, retry: RetryPolicy | None = None,
                 queue_size: int = 1000, post: Post | None = None, rng: random.Random | None = None) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.site = site
        self.retry = retry or RetryPolicy()
        self.queue_size = queue_size
        self.stats = WebhookStats()
        self._lanes = [_Lane(t) for t in targets]
        self._post = post
        self._client: httpx.AsyncClient | None = None
        self._rng = rng or random.Random()
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._stopped = False

    @property
    def targets(self) -> list[WebhookTarget]:
        return [lane.target for lane in self._lanes]

    @property
    def pending(self) -> int:
        """Changes queued or being delivered, over all targets."""
        return sum(len(lane.queue) + (lane.in_flight is not None) for lane in self._lanes)

    # ------------------------------------------------------------------------------ listener (on the loop)

    def on_change(self, change: IncidentChange) -> None:
        """Queue ``change`` for every target that wants it; returns at once (never awaits, never raises for a
        full queue)."""
        if change.event not in SENT_EVENTS or self._stopped or not self._lanes:
            return
        key = (change.incident.id, change.event)
        if key in self._seen:
            return
        self._seen[key] = None
        if len(self._seen) > _SEEN_MAX:
            self._seen.popitem(last=False)
        delivery: Delivery | None = None
        for lane in self._lanes:
            if not lane.target.wants(change.incident.severity):
                continue
            delivery = delivery or Delivery(change.event, change.incident.id, encode(self.site, change))
            if len(lane.queue) >= self.queue_size:
                shed = lane.queue.popleft()
                self.stats.dropped += 1
                log.warning("webhook=%s queue full (%d): dropped %s of incident %s; is the receiver down?",
                            redact_url(lane.target.url), self.queue_size, shed.event, shed.incident_id)
            lane.queue.append(delivery)
            lane.wake.set()

    # ------------------------------------------------------------------------------ service

    async def start(self) -> None:
        if self._post is None:
            self._client = httpx.AsyncClient(follow_redirects=False, headers={"User-Agent": USER_AGENT})
        for index, lane in enumerate(self._lanes):
            lane.task = asyncio.create_task(self._run(lane), name=f"webhook:{index}")
        if self._lanes:
            log.info("webhooks targets=%s", ",".join(redact_url(t.url) for t in self.targets))

    async def stop(self, grace_s: float = 2.0) -> None:
        """Give queued changes up to ``grace_s`` to go out (a resolution at shutdown), then stop the workers."""
        self._stopped = True
        tasks = [lane.task for lane in self._lanes if lane.task is not None]
        if tasks and self.pending:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + grace_s
            while self.pending and loop.time() < deadline:
                await asyncio.sleep(0.05)
        await cancel_and_wait(tasks)
        for lane in self._lanes:
            lane.task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # ------------------------------------------------------------------------------ delivery

    async def _run(self, lane: _Lane) -> None:
        while True:
            await lane.wake.wait()
            lane.wake.clear()
            while lane.queue:
                lane.in_flight = lane.queue.popleft()
                try:
                    await self._deliver(lane.target, lane.in_flight)
                except Exception:  # a bug here must not stop later alerts; CancelledError passes
                    self.stats.dropped += 1
                    log.exception("webhook=%s delivery crashed", redact_url(lane.target.url))
                finally:
                    lane.in_flight = None

    def _headers(self, target: WebhookTarget, delivery: Delivery) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Depotctl-Event": delivery.event,
            "X-Depotctl-Delivery": delivery.delivery_id,
        }
        if target.secret is not None:
            headers[SIGNATURE_HEADER] = sign(target.secret, delivery.body)
        return headers

    async def _deliver(self, target: WebhookTarget, delivery: Delivery) -> None:
        headers = self._headers(target, delivery)
        where = redact_url(target.url)
        for attempt in range(1, self.retry.max_attempts + 1):
            try:
                status = await self._send(target.url, delivery.body, headers, self.retry.timeout_s)
            except DeliveryFailed as exc:
                reason = str(exc)
            else:
                if 200 <= status < 300:
                    self.stats.delivered += 1
                    log.debug("webhook=%s delivered %s attempt=%d", where, delivery.delivery_id, attempt)
                    return
                reason = f"HTTP {status}"
                if 400 <= status < 500 and status not in _RETRYABLE_4XX:
                    self.stats.failures += 1
                    self.stats.dropped += 1
                    log.warning("webhook=%s refused %s with %s; not retried: check the receiver's URL and "
                                "secret", where, delivery.delivery_id, reason)
                    return
            self.stats.failures += 1
            if attempt == self.retry.max_attempts:
                break
            delay_s = self.retry.delay_s(attempt, self._rng)
            log.info("webhook=%s attempt %d for %s failed (%s); retry in %.1f s", where, attempt,
                     delivery.delivery_id, reason, delay_s)
            await asyncio.sleep(delay_s)
        self.stats.dropped += 1
        log.warning("webhook=%s gave up on %s after %d attempts (%s)", where, delivery.delivery_id,
                    self.retry.max_attempts, reason)

    async def _send(self, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float) -> int:
        if self._post is not None:
            return await self._post(url, body, headers, timeout_s)
        if self._client is None:
            raise DeliveryFailed("notifier not started")
        try:
            # The answer's body is never read: a receiver's status code is all that counts, and a large body
            # must not cost the controller memory.
            async with self._client.stream("POST", url, content=body, headers=headers, timeout=timeout_s) as response:
                return response.status_code
        except httpx.HTTPError as exc:
            raise DeliveryFailed(type(exc).__name__) from exc
