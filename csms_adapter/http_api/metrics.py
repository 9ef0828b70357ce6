"""Prometheus metrics at ``/metrics``.

Gauges (site, circuits, connectors, chargers) are read from the live state at scrape time by a custom collector,
so they are never stale and cost nothing between scrapes. Tick durations and plan outcomes are observed as each
tick ends; OCPP message counts come from the server's ``MessageStats``. Each controller gets its own registry
(tests run several controllers in one process; the global registry would mix them).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from csms_adapter.control.control_loop import TickResult
from csms_adapter.control.controller import Controller
from csms_adapter.http_api import views
from csms_adapter.monitoring import IncidentKind, Severity
from csms_adapter.monitoring.webhooks import WebhookNotifier, WebhookStats

AVAILABILITY_WINDOW = timedelta(hours=24)
TICK_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _LiveCollector(Collector):
    def __init__(self, controller: Controller) -> None:
        self.controller = controller

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        c = self.controller
        now = c.clock()
        status = views.status(c, now, writes_enabled=False)
        yield GaugeMetricFamily("depotctl_site_power_kw", "Measured EV power plus base load (kW)",
                                value=status.site_power_kw)
        yield GaugeMetricFamily("depotctl_ev_power_kw", "Measured EV charging power (kW)", value=status.ev_power_kw)
        yield GaugeMetricFamily("depotctl_grid_limit_kw", "Grid import limit in force: schedule or external cap (kW)",
                                value=status.grid_limit_kw)
        yield GaugeMetricFamily("depotctl_grid_import_limit_kw", "Import limit of the site file now (kW)",
                                value=status.import_limit_kw)
        cap = GaugeMetricFamily("depotctl_grid_cap_kw", "External grid cap (kW); absent when none is set")
        if status.grid_cap is not None:
            cap.add_metric([], status.grid_cap.limit_kw)
        yield cap
        yield GaugeMetricFamily("depotctl_sessions", "Open charging sessions", value=status.sessions)
        yield GaugeMetricFamily("depotctl_chargers_connected", "Chargers with an open OCPP connection",
                                value=status.chargers_online)
        yield GaugeMetricFamily("depotctl_chargers_configured", "Chargers in the site file",
                                value=status.chargers_total)
        yield CounterMetricFamily("depotctl_ticks_brought_forward_for_stops", "Ticks brought forward because a vehicle "
                                  "stopped drawing or refused a new limit", value=c.stop_ticks.brought_forward)

        circuit_kw = GaugeMetricFamily("depotctl_circuit_load_kw", "Measured load on a circuit (kW)", labels=["circuit"])
        circuit_a = GaugeMetricFamily("depotctl_circuit_current_a", "Measured current on a circuit per site phase (A)",
                                      labels=["circuit", "phase"])
        circuit_limit_a = GaugeMetricFamily("depotctl_circuit_limit_a", "Per-phase current limit of a circuit (A)",
                                            labels=["circuit"])
        circuit_limit_kw = GaugeMetricFamily("depotctl_circuit_limit_kw", "Power limit of a circuit (kW)",
                                             labels=["circuit"])
        for row in views.circuits(c, now):
            circuit_kw.add_metric([row.id], row.load_kw)
            for phase, amps in row.current_a.items():
                circuit_a.add_metric([row.id, phase], amps)
            if row.max_current_a is not None:
                circuit_limit_a.add_metric([row.id], row.max_current_a)
            if row.max_kw is not None:
                circuit_limit_kw.add_metric([row.id], row.max_kw)
        yield from (circuit_kw, circuit_a, circuit_limit_a, circuit_limit_kw)

        labels = ["charger", "connector"]
        power = GaugeMetricFamily("depotctl_connector_power_kw", "Measured power of a connector (kW)", labels=labels)
        limit = GaugeMetricFamily("depotctl_connector_limit_kw", "Limit last accepted by the connector (kW)",
                                  labels=labels)
        soc = GaugeMetricFamily("depotctl_connector_soc_ratio", "State of charge of the vehicle, 0..1", labels=labels)
        temp = GaugeMetricFamily("depotctl_connector_battery_temp_c", "Battery temperature of the vehicle (°C)",
                                 labels=labels)
        online = GaugeMetricFamily("depotctl_charger_connected", "1 when the charger is connected",
                                   labels=["charger"])
        for charger in c.site.chargers:
            online.add_metric([charger.id], 1.0 if c.live.charger(charger.id).connected else 0.0)
        for conn in views.connectors(c, now):
            key = [conn.charger, str(conn.connector)]
            if conn.power_kw is not None:
                power.add_metric(key, conn.power_kw)
            if conn.limit_kw is not None:
                limit.add_metric(key, conn.limit_kw)
            if conn.soc is not None:
                soc.add_metric(key, conn.soc)
            if conn.battery_temp_c is not None:
                temp.add_metric(key, conn.battery_temp_c)
        yield from (power, limit, soc, temp, online)

        stats = c.server.stats
        messages = CounterMetricFamily("depotctl_ocpp_messages", "OCPP-J frames by direction, action and kind",
                                       labels=["direction", "action", "kind"])
        for (direction, action, kind), n in sorted(stats.messages.items()):
            messages.add_metric([direction, action, kind], n)
        errors = CounterMetricFamily("depotctl_ocpp_errors", "OCPP CALLERRORs and malformed frames by action",
                                     labels=["direction", "action"])
        for (direction, action), n in sorted(stats.errors.items()):
            errors.add_metric([direction, action], n)
        refused = CounterMetricFamily("depotctl_ocpp_refused", "Refused, throttled or malformed OCPP traffic by reason",
                                      labels=["reason"])
        for reason, n in c.server.counters.snapshot().items():
            refused.add_metric([reason], n)
        yield from (messages, errors, refused)
        yield from _monitoring_metrics(c, now)


def _monitoring_metrics(c: Controller, now: datetime) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    """The contract's condition-monitoring metrics. Every kind × severity and every charger is present (0 when
    nothing is wrong), so that alert rules compare values instead of guessing at absent series."""
    monitor = c.monitor
    up = GaugeMetricFamily("depotctl_charger_up", "1 when the charger is connected and not faulted", labels=["charger"])
    for charger in c.site.chargers:
        up.add_metric([charger.id], 1.0 if monitor.charger_up(charger.id) else 0.0)
    counts = monitor.counts_open()
    open_now = GaugeMetricFamily("depotctl_incidents_open", "Open incidents by kind and severity",
                                 labels=["kind", "severity"])
    for kind in IncidentKind:
        for severity in Severity:
            open_now.add_metric([kind.value, severity.value], counts.get((kind, severity), 0))
    totals = monitor.totals()
    opened = CounterMetricFamily("depotctl_incidents", "Incidents opened since the controller started, by kind",
                                 labels=["kind"])
    for kind in IncidentKind:
        opened.add_metric([kind.value], totals.get(kind, 0))
    ratio = GaugeMetricFamily("depotctl_charger_availability_ratio",
                              "Availability of the charger over the last 24 h, 0..1 (docs/monitoring.md)",
                              labels=["charger"])
    for row in monitor.availability(now - AVAILABILITY_WINDOW, now):
        if row.connector is None and row.availability_ratio is not None:
            ratio.add_metric([row.charger], row.availability_ratio)
    yield from (up, open_now, opened, ratio)

    stats = next((s.stats for s in c.services if isinstance(s, WebhookNotifier)), WebhookStats())
    yield CounterMetricFamily("depotctl_webhook_failures", "Failed webhook delivery attempts (each retry counts)",
                              value=stats.failures)
    yield CounterMetricFamily("depotctl_webhook_deliveries", "Incident changes delivered to a webhook receiver",
                              value=stats.delivered)
    yield CounterMetricFamily("depotctl_webhook_dropped", "Incident changes given up on (retries exhausted, "
                              "refused, or shed from a full queue)", value=stats.dropped)


class Metrics:
    def __init__(self, controller: Controller) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_LiveCollector(controller))
        self.tick_seconds = Histogram("depotctl_tick_duration_seconds", "Wall time of one control tick",
                                      buckets=TICK_BUCKETS_S, registry=self.registry)
        self.solve_seconds = Histogram("depotctl_solve_duration_seconds", "Solver time of one plan",
                                       buckets=TICK_BUCKETS_S, registry=self.registry)
        self.plans = Counter("depotctl_plans", "Ticks by plan status (error: no plan, nothing sent)",
                             ["status"], registry=self.registry)

    def observe_tick(self, tick: TickResult) -> None:
        self.tick_seconds.observe(tick.tick_ms / 1000.0)
        if tick.plan is None:
            self.plans.labels(status="error").inc()
            return
        self.solve_seconds.observe(tick.plan.solve_ms / 1000.0)
        self.plans.labels(status=str(tick.plan.status)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
