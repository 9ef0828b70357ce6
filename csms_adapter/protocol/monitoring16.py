"""OCPP 1.6J monitoring messages: firmware and diagnostics status, and the security extension's
SecurityEventNotification, LogStatusNotification and SignedFirmwareStatusNotification (1.6 Security Whitepaper
ed. 2). Thin handlers: each turns its message into one event and answers with the (empty) confirmation.

Mixed into ``ocpp16.Ocpp16Link``; the ``ocpp`` library finds ``@on`` methods on base classes.
"""

from __future__ import annotations

from typing import Any

from ocpp.routing import on
from ocpp.v16 import call_result
from ocpp.v16.enums import Action

from csms_adapter.protocol import events as ev
from csms_adapter.protocol.link import LinkContext
from csms_adapter.protocol.telemetry import safe_time


def _request_id(raw: object) -> int | None:
    return raw if isinstance(raw, int) and not isinstance(raw, bool) else None


class Monitoring16:
    """The monitoring handlers of a 1.6 link (``ctx`` and ``charger_id`` come from ``LinkPlumbing``)."""

    ctx: LinkContext
    charger_id: str

    @on(Action.firmware_status_notification)
    def on_firmware_status(self, status: str, **kwargs: Any) -> Any:
        self.ctx.sink(ev.FirmwareStatusReported(self.charger_id, self.ctx.clock(), status))
        return call_result.FirmwareStatusNotification()

    @on(Action.signed_firmware_status_notification)
    def on_signed_firmware_status(self, status: str, **kwargs: Any) -> Any:
        self.ctx.sink(ev.FirmwareStatusReported(self.charger_id, self.ctx.clock(), status,
                                                _request_id(kwargs.get("request_id"))))
        return call_result.SignedFirmwareStatusNotification()

    @on(Action.diagnostics_status_notification)
    def on_diagnostics_status(self, status: str, **kwargs: Any) -> Any:
        self.ctx.sink(ev.DiagnosticsStatusReported(self.charger_id, self.ctx.clock(), status, "diagnostics"))
        return call_result.DiagnosticsStatusNotification()

    @on(Action.log_status_notification)
    def on_log_status(self, status: str, **kwargs: Any) -> Any:
        self.ctx.sink(ev.DiagnosticsStatusReported(self.charger_id, self.ctx.clock(), status, "log",
                                                   _request_id(kwargs.get("request_id"))))
        return call_result.LogStatusNotification()

    @on(Action.security_event_notification)
    def on_security_event(self, type: str, timestamp: str, **kwargs: Any) -> Any:
        now = self.ctx.clock()
        tech_info = kwargs.get("tech_info")
        self.ctx.sink(ev.SecurityEventReported(self.charger_id, safe_time(timestamp, now), type,
                                               tech_info if isinstance(tech_info, str) else None))
        return call_result.SecurityEventNotification()

    async def configure_monitoring(self) -> None:
        """1.6 has no device model or monitors to set: status and error codes arrive by StatusNotification."""
