"""Webhook delivery against a real HTTP receiver on 127.0.0.1: the contract's body and signature, once per
incident and event, retried with back-off, bounded, never blocking (csms_adapter/monitoring/webhooks.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from http_receiver import receiving
from polling import eventually

from csms_adapter.monitoring import Incident, IncidentChange, IncidentKind, Severity
from csms_adapter.monitoring.webhooks import (
    SIGNATURE_HEADER,
    RetryPolicy,
    WebhookNotifier,
    WebhookTarget,
    redact_url,
    resolve_targets,
    sign,
    verify,
)
from optimizer.domain import WebhookSpec
from optimizer.errors import ConfigError

FAST = RetryPolicy(first_delay_s=0.02, max_delay_s=0.1, max_attempts=4, timeout_s=1.0)
OPENED_AT = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


@contextlib.asynccontextmanager
async def notifier(*targets: WebhookTarget, **kwargs: object) -> AsyncIterator[WebhookNotifier]:
    kwargs.setdefault("retry", FAST)
    hooks = WebhookNotifier("north-depot", targets, **kwargs)  # type: ignore[arg-type]
    await hooks.start()
    try:
        yield hooks
    finally:
        await hooks.stop(grace_s=0.0)


def incident(severity: Severity = Severity.CRITICAL, *, ident: str = "inc-1", resolved: bool = False,
             occurrences: int = 1) -> Incident:
    return Incident(
        id=ident, charger="cp-03", connector=1, kind=IncidentKind.FAULT, code="GroundFailure", vendor_code="GF-12",
        info="RCD tripped", severity=severity, opened_at=OPENED_AT,
        resolved_at=OPENED_AT.replace(hour=7) if resolved else None, occurrences=occurrences,
        source="StatusNotification")


def opened(**kw: object) -> IncidentChange:
    return IncidentChange("opened", incident(**kw))  # type: ignore[arg-type]


def resolved(**kw: object) -> IncidentChange:
    return IncidentChange("resolved", incident(resolved=True, **kw))  # type: ignore[arg-type]


async def test_opening_and_resolution_are_posted_once_each_as_the_contract_says() -> None:
    secret = b"s3cret"
    async with receiving() as rx, notifier(WebhookTarget(rx.url, Severity.INFO, secret)) as hooks:
        hooks.on_change(opened())
        hooks.on_change(IncidentChange("repeated", incident(occurrences=2)))  # never sent
        hooks.on_change(opened())  # the same opening again: sent once
        hooks.on_change(resolved())
        await eventually(lambda: len(rx.requests) == 2 and hooks.pending == 0)
        await asyncio.sleep(0.1)
        assert len(rx.requests) == 2
        first, second = rx.requests
        assert first.path == "/hooks/T0KEN-in-path"
        assert first.json() == {
            "event": "opened",
            "site": "north-depot",
            "incident": {
                "id": "inc-1", "charger": "cp-03", "connector": 1, "kind": "fault", "code": "GroundFailure",
                "vendor_code": "GF-12", "info": "RCD tripped", "severity": "critical",
                "opened_at": "2026-03-02T06:00:00+00:00", "resolved_at": None, "occurrences": 1,
                "source": "StatusNotification",
            },
        }
        assert second.json()["event"] == "resolved"
        assert second.json()["incident"]["resolved_at"] == "2026-03-02T07:00:00+00:00"  # type: ignore[index]
        for request in rx.requests:
            signature = request.headers[SIGNATURE_HEADER.lower()]
            assert signature.startswith("sha256=") and verify(secret, request.body, signature)
            assert not verify(b"other", request.body, signature)
            assert request.headers["content-type"] == "application/json"
        assert first.headers["x-depotctl-delivery"] == "inc-1:opened"
        assert (hooks.stats.delivered, hooks.stats.failures, hooks.stats.dropped) == (2, 0, 0)


async def test_signature_is_the_hex_hmac_sha256_of_the_exact_body() -> None:
    # RFC 4231 test case 2: HMAC-SHA-256 with key "Jefe"
    body = b"what do ya want for nothing?"
    assert sign(b"Jefe", body) == "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


async def test_without_a_secret_there_is_no_signature_header() -> None:
    async with receiving() as rx, notifier(WebhookTarget(rx.url)) as hooks:
        hooks.on_change(opened())
        await eventually(lambda: len(rx.requests) == 1)
        assert SIGNATURE_HEADER.lower() not in rx.requests[0].headers


async def test_each_target_gets_only_the_severities_it_asked_for() -> None:
    async with receiving() as everything, receiving() as critical_only, notifier(
            WebhookTarget(everything.url, Severity.INFO), WebhookTarget(critical_only.url, Severity.CRITICAL)) as hooks:
        hooks.on_change(opened(severity=Severity.WARNING, ident="w"))
        hooks.on_change(opened(severity=Severity.CRITICAL, ident="c"))
        await eventually(lambda: len(everything.requests) == 2 and len(critical_only.requests) == 1)
        assert [r.json()["incident"]["id"] for r in critical_only.requests] == ["c"]  # type: ignore[index]


async def test_failed_attempts_are_retried_in_order_and_counted() -> None:
    async with receiving(statuses=[503, 500]) as rx, notifier(WebhookTarget(rx.url)) as hooks:
        hooks.on_change(opened())
        hooks.on_change(resolved())
        await eventually(lambda: hooks.stats.delivered == 2)
        assert [r.json()["event"] for r in rx.requests] == ["opened", "opened", "opened", "resolved"]
        assert (hooks.stats.failures, hooks.stats.dropped) == (2, 0)


async def test_a_refusal_that_a_retry_cannot_fix_is_not_retried() -> None:
    async with receiving(statuses=[401]) as rx, notifier(WebhookTarget(rx.url)) as hooks:
        hooks.on_change(opened())
        hooks.on_change(resolved())
        await eventually(lambda: hooks.stats.delivered == 1)
        assert [r.json()["event"] for r in rx.requests] == ["opened", "resolved"]
        assert (hooks.stats.failures, hooks.stats.dropped) == (1, 1)


async def test_an_unreachable_receiver_is_tried_max_attempts_times_then_given_up(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="depotctl.webhooks")
    async with receiving() as rx:
        url = rx.url
    async with notifier(WebhookTarget(url, secret=b"hush")) as hooks:  # nothing listens on that port any more
        hooks.on_change(opened())
        await eventually(lambda: hooks.stats.dropped == 1)
        assert hooks.stats.failures == FAST.max_attempts and hooks.stats.delivered == 0
    assert "gave up on inc-1:opened" in caplog.text
    assert "T0KEN" not in caplog.text and "hush" not in caplog.text  # the URL's path may be a credential


async def test_a_stalled_receiver_times_out_and_never_blocks_the_caller() -> None:
    policy = RetryPolicy(first_delay_s=0.01, max_delay_s=0.01, max_attempts=2, timeout_s=0.2)
    async with receiving(stall_s=5.0) as rx, notifier(WebhookTarget(rx.url), retry=policy, queue_size=3) as hooks:
        started = time.perf_counter()
        for n in range(50):
            hooks.on_change(opened(ident=f"i{n}"))
        enqueue_s = time.perf_counter() - started
        # 50 calls on the loop, none waiting for the network (the receiver answers nothing for 5 s)
        assert enqueue_s < 0.5
        assert hooks.pending <= 3 + 1
        assert hooks.stats.dropped >= 50 - 4  # shed from the bounded queue, oldest first
        await eventually(lambda: hooks.stats.failures >= 2)
        assert hooks.stats.delivered == 0 and len(rx.requests) >= 1


async def test_backoff_grows_and_is_capped() -> None:
    import random

    policy = RetryPolicy(first_delay_s=1.0, max_delay_s=10.0)
    rng = random.Random(1)
    delays = [policy.delay_s(n, rng) for n in range(1, 8)]
    bases = [1, 2, 4, 8, 10, 10, 10]
    assert all(b / 2 <= d <= b for d, b in zip(delays, bases, strict=True))


async def test_stop_lets_queued_changes_out_within_its_grace_and_then_ignores_new_ones() -> None:
    async with receiving() as rx:
        hooks = WebhookNotifier("north-depot", [WebhookTarget(rx.url)], retry=FAST)
        hooks.on_change(opened())  # before start: kept until the worker runs
        await hooks.start()
        hooks.on_change(resolved())
        await hooks.stop(grace_s=2.0)
        assert [r.json()["event"] for r in rx.requests] == ["opened", "resolved"]
        hooks.on_change(opened(ident="late"))
        assert hooks.pending == 0


async def test_stop_does_not_wait_for_a_retry_in_back_off() -> None:
    policy = RetryPolicy(first_delay_s=30.0, max_delay_s=30.0, max_attempts=5)
    async with receiving(statuses=[503] * 5) as rx:
        hooks = WebhookNotifier("north-depot", [WebhookTarget(rx.url)], retry=policy)
        await hooks.start()
        hooks.on_change(opened())
        await eventually(lambda: hooks.stats.failures == 1)
        started = time.perf_counter()
        await hooks.stop(grace_s=0.1)
        assert time.perf_counter() - started < 2.0


def test_targets_come_from_the_site_file_with_secrets_from_the_environment() -> None:
    specs = [WebhookSpec("https://alerts.example.com/hook", "warning", "HOOK_SECRET"),
             WebhookSpec("http://10.0.0.5:9000/x")]
    targets = resolve_targets(specs, {"HOOK_SECRET": "abc"})
    assert targets == [WebhookTarget("https://alerts.example.com/hook", Severity.WARNING, b"abc"),
                       WebhookTarget("http://10.0.0.5:9000/x", Severity.INFO, None)]
    assert "abc" not in repr(targets)


@pytest.mark.parametrize("spec, key, reason", [
    (WebhookSpec("https://a.example/h", secret_env="MISSING"), "monitoring.webhooks[0].secret_env",
     "MISSING is not set"),
    (WebhookSpec("ftp://a.example/h"), "monitoring.webhooks[0].url", "http:// or https://"),
    (WebhookSpec("not a url"), "monitoring.webhooks[0].url", "http:// or https://"),
    (WebhookSpec("https://a.example/h", min_severity="loud"), "monitoring.webhooks[0].min_severity",
     "info, warning, critical"),
])
def test_bad_webhook_entries_are_refused_naming_the_key(spec: WebhookSpec, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_targets([spec], {"MISSING": ""}, source="depot.yaml")
    [problem] = caught.value.problems
    assert (problem.file, problem.key) == ("depot.yaml", key) and reason in problem.reason


def test_logs_show_only_scheme_and_host_of_a_webhook_url() -> None:
    assert redact_url("https://hooks.example.com/services/T000/B000/XXXXSECRET?token=1") == "https://hooks.example.com/…"
    assert redact_url("http://127.0.0.1:8080/a") == "http://127.0.0.1:8080/…"
