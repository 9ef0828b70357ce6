"""The site file's ``monitoring:`` section: defaults, per-kind debounce, webhooks, and garbage refused by key."""

from __future__ import annotations

import pytest

from optimizer.errors import ConfigError
from optimizer.site_loader import parse_site
from tests.optimizer.test_site_loader import GOOD


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_site(text, "depot.yaml")
    return [str(p) for p in info.value.problems]


def test_defaults_debounce_offline_only() -> None:
    monitoring = parse_site(GOOD, "depot.yaml").monitoring
    assert monitoring.debounce_for("offline") == 120.0
    assert monitoring.debounce_for("fault") == 0.0
    assert monitoring.offline_after_s == 600.0 and monitoring.webhooks == ()


def test_per_kind_debounce_and_webhooks() -> None:
    text = GOOD + """\
monitoring:
  offline_after_s: 90
  debounce_s: {fault: 5}
  retention_days: 30
  webhooks:
    - {url: "https://ops.example.net/hooks/depot", min_severity: critical, secret_env: DEPOT_HOOK_SECRET}
"""
    monitoring = parse_site(text, "depot.yaml").monitoring
    assert (monitoring.debounce_for("fault"), monitoring.debounce_for("offline")) == (5.0, 120.0)
    assert monitoring.offline_after_s == 90 and monitoring.retention_days == 30
    [hook] = monitoring.webhooks
    assert (hook.min_severity, hook.secret_env) == ("critical", "DEPOT_HOOK_SECRET")


def test_one_debounce_number_applies_to_every_kind() -> None:
    monitoring = parse_site(GOOD + "monitoring:\n  debounce_s: 30\n", "depot.yaml").monitoring
    assert monitoring.debounce_for("offline") == monitoring.debounce_for("meter_anomaly") == 30.0


@pytest.mark.parametrize(("snippet", "key"), [
    ("monitoring:\n  debounce_s: {offlien: 5}\n", "monitoring.debounce_s"),
    ("monitoring:\n  debounce_s: -1\n", "monitoring.debounce_s"),
    ("monitoring:\n  offline_after_s: 0\n", "monitoring.offline_after_s"),
    ("monitoring:\n  retention_days: .nan\n", "monitoring.retention_days"),
    ("monitoring:\n  webhooks: [{url: 'ftp://x/y'}]\n", "monitoring.webhooks[0].url"),
    ("monitoring:\n  webhooks: [{url: 'https://x', min_severity: loud}]\n", "monitoring.webhooks[0].min_severity"),
    ("monitoring:\n  webhooks: [{url: 'https://x', secret_env: 'not a name'}]\n", "monitoring.webhooks[0].secret_env"),
    ("monitoring:\n  webhooks: [{url: 'https://x', secret: hunter2}]\n", "monitoring.webhooks[0].secret"),
    ("monitoring: [1, 2]\n", "monitoring"),
])
def test_bad_monitoring_keys_are_named(snippet: str, key: str) -> None:
    found = problems_of(GOOD + snippet)
    assert any(key in p for p in found), found
