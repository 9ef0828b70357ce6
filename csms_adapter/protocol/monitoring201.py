"""OCPP 2.0.1 monitoring: NotifyEvent, SecurityEventNotification, FirmwareStatusNotification,
LogStatusNotification and NotifyReport handlers, and the device-model setup after boot (GetBaseReport
FullInventory, then SetVariableMonitoring for connector problems and over-temperature where the station supports
monitoring), so problems arrive as events without polling.

Mixed into ``ocpp201.Ocpp201Link``; the ``ocpp`` library finds ``@on`` methods on base classes. Handlers only
translate and answer; the setup calls run from the controller's after-boot task, never inside a handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from ocpp.routing import on
from ocpp.v201 import call, call_result
from ocpp.v201.enums import Action

from csms_adapter.protocol import events as ev
from csms_adapter.protocol.link import LinkContext
from csms_adapter.protocol.telemetry import safe_time

log = logging.getLogger("depotctl.monitoring201")

REPORT_WAIT_S = 60.0  # how long the setup waits for the last NotifyReport part
OVER_TEMPERATURE_C = 70.0  # UpperThreshold of the over-temperature monitors
PROBLEM_SEVERITY = 4  # OCPP monitor severity "Error"
TEMPERATURE_SEVERITY = 5  # "Alert"
MAX_MONITORS = 20  # a small useful set; stations limit ItemsPerMessageSetVariableMonitoring
_request_ids = itertools.count(1)


def _str(raw: object) -> str | None:
    return raw if isinstance(raw, str) else None


def _int(raw: object) -> int | None:
    return raw if isinstance(raw, int) and not isinstance(raw, bool) else None


def _map(raw: object) -> Mapping[str, Any]:
    return raw if isinstance(raw, Mapping) else {}


def device_events(charger_id: str, event_data: object, now: datetime) -> list[ev.DeviceEvent]:
    """The ``eventData`` of a NotifyEvent (snake_cased by the library) as events; items that are not objects are
    skipped (the schema already refused a malformed message)."""
    out: list[ev.DeviceEvent] = []
    for item in event_data if isinstance(event_data, list) else []:
        if not isinstance(item, Mapping):
            continue
        component, variable = _map(item.get("component")), _map(item.get("variable"))
        evse = _map(component.get("evse"))
        tx = item.get("transaction_id")
        cleared = item.get("cleared")
        out.append(ev.DeviceEvent(
            charger_id=charger_id, time=safe_time(item.get("timestamp"), now), event_id=_int(item.get("event_id")) or 0,
            trigger=str(item.get("trigger", "")), component=str(component.get("name", "")),
            variable=str(variable.get("name", "")), actual_value=str(item.get("actual_value", "")),
            event_notification_type=str(item.get("event_notification_type", "")),
            component_instance=_str(component.get("instance")), variable_instance=_str(variable.get("instance")),
            evse_id=_int(evse.get("id")), connector_id=_int(evse.get("connector_id")), cause=_int(item.get("cause")),
            tech_code=_str(item.get("tech_code")), tech_info=_str(item.get("tech_info")),
            cleared=cleared if isinstance(cleared, bool) else None, transaction_id=_str(tx),
            variable_monitoring_id=_int(item.get("variable_monitoring_id"))))
    return out


def report_variables(report_data: object) -> tuple[ev.DeviceVariable, ...]:
    out: list[ev.DeviceVariable] = []
    for item in report_data if isinstance(report_data, list) else []:
        if not isinstance(item, Mapping):
            continue
        component, variable = _map(item.get("component")), _map(item.get("variable"))
        evse = _map(component.get("evse"))
        for attribute in item.get("variable_attribute") or []:
            if not isinstance(attribute, Mapping):
                continue
            out.append(ev.DeviceVariable(
                component=str(component.get("name", "")), variable=str(variable.get("name", "")),
                value=_str(attribute.get("value")), attribute_type=str(attribute.get("type", "Actual")),
                mutability=_str(attribute.get("mutability")), component_instance=_str(component.get("instance")),
                variable_instance=_str(variable.get("instance")), evse_id=_int(evse.get("id")),
                connector_id=_int(evse.get("connector_id"))))
    return tuple(out)


def monitoring_supported(variables: tuple[ev.DeviceVariable, ...]) -> bool:
    """MonitoringCtrlr reported and enabled (or at least available)."""
    flags = {v.variable: (v.value or "").lower() for v in variables
             if v.component == "MonitoringCtrlr" and v.attribute_type == "Actual"}
    if not flags:
        return False
    return flags.get("Enabled", flags.get("Available", "true")) == "true"


def wanted_monitors(variables: tuple[ev.DeviceVariable, ...]) -> list[dict[str, Any]]:
    """SetMonitoringData (snake_case, as the library takes it) for the station's problem flags and temperatures."""
    monitors: list[dict[str, Any]] = []
    seen: set[tuple[str, str | None, int | None, int | None, str, str | None]] = set()
    for v in variables:
        if v.attribute_type != "Actual" or v.variable not in ("Problem", "Temperature"):
            continue
        key = (v.component, v.component_instance, v.evse_id, v.connector_id, v.variable, v.variable_instance)
        if key in seen:
            continue
        seen.add(key)
        component: dict[str, Any] = {"name": v.component}
        if v.component_instance is not None:
            component["instance"] = v.component_instance
        if v.evse_id is not None:
            component["evse"] = {"id": v.evse_id} | ({"connector_id": v.connector_id} if v.connector_id else {})
        variable: dict[str, Any] = {"name": v.variable}
        if v.variable_instance is not None:
            variable["instance"] = v.variable_instance
        if v.variable == "Problem":
            monitors.append({"value": 1.0, "type": "Delta", "severity": PROBLEM_SEVERITY, "component": component,
                             "variable": variable})
        else:
            monitors.append({"value": OVER_TEMPERATURE_C, "type": "UpperThreshold", "severity": TEMPERATURE_SEVERITY,
                             "component": component, "variable": variable})
    return monitors[:MAX_MONITORS]


class Monitoring201:
    """The monitoring handlers of a 2.0.1 link (``ctx``, ``charger_id`` and ``_call`` come from ``LinkPlumbing``)."""

    ctx: LinkContext
    charger_id: str
    _call: Callable[[Any], Awaitable[Any]]  # LinkPlumbing's: one call in flight, errors as ChargerError

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._report_parts: dict[int, list[ev.DeviceVariable]] = {}
        self._report_done: dict[int, asyncio.Event] = {}

    @on(Action.notify_event)
    def on_notify_event(self, generated_at: str, seq_no: int, event_data: list[Any], **kwargs: Any) -> Any:
        for event in device_events(self.charger_id, event_data, self.ctx.clock()):
            self.ctx.sink(event)
        return call_result.NotifyEvent()

    @on(Action.security_event_notification)
    def on_security_event(self, type: str, timestamp: str, **kwargs: Any) -> Any:
        now = self.ctx.clock()
        self.ctx.sink(ev.SecurityEventReported(self.charger_id, safe_time(timestamp, now), type,
                                               _str(kwargs.get("tech_info"))))
        return call_result.SecurityEventNotification()

    @on(Action.firmware_status_notification)
    def on_firmware_status(self, status: str, **kwargs: Any) -> Any:
        self.ctx.sink(ev.FirmwareStatusReported(self.charger_id, self.ctx.clock(), status,
                                                _int(kwargs.get("request_id"))))
        return call_result.FirmwareStatusNotification()

    @on(Action.log_status_notification)
    def on_log_status(self, status: str, **kwargs: Any) -> Any:
        self.ctx.sink(ev.DiagnosticsStatusReported(self.charger_id, self.ctx.clock(), status, "log",
                                                   _int(kwargs.get("request_id"))))
        return call_result.LogStatusNotification()

    @on(Action.notify_report)
    def on_notify_report(self, request_id: int, generated_at: str, seq_no: int, **kwargs: Any) -> Any:
        now = self.ctx.clock()
        variables = report_variables(kwargs.get("report_data"))
        tbc = kwargs.get("tbc") is True
        self.ctx.sink(ev.DeviceReported(self.charger_id, safe_time(generated_at, now), request_id, seq_no, tbc,
                                        variables))
        if request_id in self._report_done:
            self._report_parts.setdefault(request_id, []).extend(variables)
            if not tbc:
                self._report_done[request_id].set()
        return call_result.NotifyReport()

    async def configure_monitoring(self) -> None:
        """Ask for the full inventory, keep it (as ``DeviceReported`` events) and, where the station supports
        monitoring, set monitors on its problem flags and temperatures. Raises ChargerError when a call fails."""
        request_id = next(_request_ids)
        done = self._report_done[request_id] = asyncio.Event()
        try:
            result = await self._call(call.GetBaseReport(request_id=request_id, report_base="FullInventory"))
            if result.status not in ("Accepted", "EmptyResultSet"):
                log.info("charger=%s refused GetBaseReport (%s)", self.charger_id, result.status)
                return
            if result.status == "EmptyResultSet":
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(REPORT_WAIT_S):
                    await done.wait()
            variables = tuple(self._report_parts.get(request_id, ()))
        finally:
            self._report_done.pop(request_id, None)
            self._report_parts.pop(request_id, None)
        if not done.is_set():
            log.warning("charger=%s device report incomplete after %.0f s; no monitors set", self.charger_id,
                        REPORT_WAIT_S)
            return
        monitors = wanted_monitors(variables)
        if not monitoring_supported(variables) or not monitors:
            log.info("charger=%s reported %d variables; monitoring %s", self.charger_id, len(variables),
                     "not supported" if not monitoring_supported(variables) else "has nothing to watch")
            return
        answer = await self._call(call.SetVariableMonitoring(set_monitoring_data=monitors))
        results = [r for r in answer.set_monitoring_result or [] if isinstance(r, Mapping)]
        accepted = sum(1 for r in results if r.get("status") == "Accepted")
        log.info("charger=%s monitors set=%d refused=%d", self.charger_id, accepted, len(results) - accepted)

