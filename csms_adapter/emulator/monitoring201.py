"""The emulated 2.0.1 station's monitoring side: the inventory it reports (GetBaseReport → NotifyReport) and the
variable monitors a CSMS may set on it (SetVariableMonitoring). Pure: the station's state in, wire dicts out
(snake_case, as the ocpp library takes them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MONITOR_TYPES = frozenset({"UpperThreshold", "LowerThreshold", "Delta", "Periodic", "PeriodicClockAligned"})


@dataclass(frozen=True, slots=True)
class Monitor:
    """A variable monitor the CSMS set (id, what it watches, its type and severity 0..9)."""

    id: int
    component: str
    evse_id: int | None
    variable: str
    type: str
    value: float
    severity: int


def _item(component: str, variable: str, value: str, *, evse_id: int | None = None, data_type: str = "string",
          mutability: str = "ReadOnly", monitorable: bool = False) -> dict[str, Any]:
    comp: dict[str, Any] = {"name": component}
    if evse_id is not None:
        comp["evse"] = {"id": evse_id, "connector_id": 1}
    return {
        "component": comp,
        "variable": {"name": variable},
        "variable_attribute": [{"type": "Actual", "value": value, "mutability": mutability}],
        "variable_characteristics": {"data_type": data_type, "supports_monitoring": monitorable},
    }


def inventory(settings: Mapping[tuple[str, str], str], writable: Iterable[tuple[str, str]],
              problems: Mapping[int, bool], station_temp_c: float) -> list[dict[str, Any]]:
    """FullInventory: the station's settings, the monitoring controller, a ``Problem`` flag per connector and the
    station's temperature (both monitorable)."""
    rw = set(writable)
    items = [_item(c, v, value, mutability="ReadWrite" if (c, v) in rw else "ReadOnly")
             for (c, v), value in settings.items()]
    items.append(_item("MonitoringCtrlr", "Enabled", "true", data_type="boolean"))
    items.append(_item("MonitoringCtrlr", "ItemsPerMessage", "20", data_type="integer"))
    for evse_id, problem in sorted(problems.items()):
        items.append(_item("Connector", "Problem", "true" if problem else "false", evse_id=evse_id,
                           data_type="boolean", monitorable=True))
    items.append(_item("ChargingStation", "Temperature", f"{station_temp_c:.1f}", data_type="decimal",
                       monitorable=True))
    return items


def set_monitors(requests: list[dict[str, Any]], evse_ids: Iterable[int], next_id: int,
                 ) -> tuple[list[dict[str, Any]], list[Monitor]]:
    """Results for a SetVariableMonitoring request and the monitors accepted (ids from ``next_id`` on)."""
    evses = set(evse_ids)
    results: list[dict[str, Any]] = []
    accepted: list[Monitor] = []
    for request in requests:
        component, variable = request.get("component", {}), request.get("variable", {})
        name, var = component.get("name"), variable.get("name")
        evse = component.get("evse") or {}
        evse_id = evse.get("id")
        status = "Accepted"
        if (name, var) not in (("Connector", "Problem"), ("ChargingStation", "Temperature")):
            status = "UnknownComponent" if name not in ("Connector", "ChargingStation") else "UnknownVariable"
        elif name == "Connector" and evse_id not in evses:
            status = "UnknownComponent"
        elif request.get("type") not in MONITOR_TYPES or not 0 <= int(request.get("severity", -1)) <= 9:
            status = "Rejected"
        result: dict[str, Any] = {"status": status, "type": request.get("type", "Delta"),
                                  "severity": request.get("severity", 0), "component": component, "variable": variable}
        if status == "Accepted":
            monitor = Monitor(request.get("id") or next_id + len(accepted), str(name),
                              evse_id if name == "Connector" else None, str(var), str(request["type"]),
                              float(request.get("value", 0)), int(request["severity"]))
            accepted.append(monitor)
            result["id"] = monitor.id
        results.append(result)
    return results, accepted
