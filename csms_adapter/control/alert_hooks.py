"""Alerts wired into a controller: the site's ``monitoring.webhooks`` as a controller service listening to its
Monitor (docs/alerts.md). Composition only; the notifier itself is ``monitoring.webhooks``."""

from __future__ import annotations

from csms_adapter.control.controller import Controller
from csms_adapter.monitoring.webhooks import RetryPolicy, WebhookNotifier, resolve_targets


def attach_webhooks(controller: Controller, *, retry: RetryPolicy | None = None) -> WebhookNotifier | None:
    """Post ``controller``'s incident changes to the site's ``monitoring.webhooks`` (None when there are none):
    the notifier listens to the Monitor and runs as a controller service. Raises ConfigError for an entry that
    cannot be used (``resolve_targets``)."""
    site = controller.site
    if not site.monitoring.webhooks:
        return None
    targets = resolve_targets(site.monitoring.webhooks, controller.env, source=site.source_file)
    notifier = WebhookNotifier(site.name, targets, retry=retry)
    controller.monitor.listeners.append(notifier.on_change)
    controller.services.append(notifier)
    return notifier
