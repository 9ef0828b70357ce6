"""OCPP 2.0.1: the answers to every station-initiated message that is not telemetry, transactions or monitoring.

Mixed into ``ocpp201.Ocpp201Link`` (the library routes ``@on`` methods found on base classes too). Each handler
answers what the specification asks of a CSMS (docs/ocpp-conformance.md has the table) and, where the message is
input a load controller must use, turns it into an event:

- NotifyChargingLimit / ClearedChargingLimit (K12, K13): an external limit, planned under until it is cleared;
- NotifyEVChargingSchedule (K15.FR.11, K17.FR.11): checked against the TxProfile last sent for that EVSE
  (Rejected when the vehicle asks for more), then used as the vehicle's own ceiling where it asks for less;
- DataTransfer (P02): depotctl knows no vendor extension, so ``UnknownVendorId`` (P02.FR.06);
- reports, customer information, display messages, firmware publishing, reservations: acknowledged (their
  responses have no status to give);
- ISO 15118 certificate messages: depotctl runs no PKI for vehicles or stations, so they fail or are rejected
  the way the specification provides for (A02/A03 SignCertificate Rejected, M02 Failed, M06 Failed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ocpp.routing import on
from ocpp.v201 import call_result
from ocpp.v201.enums import Action

from csms_adapter.protocol import events as ev
from csms_adapter.protocol.charging_schedules import ScheduleError, exceeds_offer, schedule_periods
from csms_adapter.protocol.link import LinkContext
from csms_adapter.protocol.telemetry import parse_departure
from optimizer.domain import RateUnit

log = logging.getLogger("depotctl.ocpp201")

_LIMIT_SOURCES = frozenset({"EMS", "Other", "SO", "CSO"})


class Conformance201:
    """The 2.0.1 handlers above. Needs the link's ``ctx``, ``charger_id`` and ``_emit`` (``link.LinkPlumbing``)."""

    ctx: LinkContext
    charger_id: str
    _tx_offered: dict[int, ev.LimitPeriod]
    _emit: Callable[[ev.Event], None]

    def remember_tx_offer(self, evse_id: int, limit: float, unit: RateUnit, phases: int, start: datetime,
                          end: datetime) -> None:
        """Called by ``set_tx_limit`` once a TxProfile is accepted: what NotifyEVChargingSchedule is checked against."""
        self._tx_offered[evse_id] = ev.LimitPeriod(start, end, limit, unit, phases)

    # ------------------------------------------------------------------------------ smart charging (K12-K17)

    @on(Action.notify_charging_limit)
    def on_notify_charging_limit(self, charging_limit: dict[str, Any], **kwargs: Any) -> Any:
        now = self.ctx.clock()
        source = str(charging_limit.get("charging_limit_source", "Other"))
        evse_id = kwargs.get("evse_id")
        evse = evse_id if isinstance(evse_id, int) and evse_id >= 0 else 0
        periods: list[ev.LimitPeriod] = []
        schedules = kwargs.get("charging_schedule") or []
        for index, schedule in enumerate(schedules):
            try:
                periods.extend(schedule_periods(schedule, now, now))
            except ScheduleError as exc:
                log.warning("charger=%s NotifyChargingLimit chargingSchedule[%d] unusable: %s", self.charger_id,
                            index, exc)
        critical = charging_limit.get("is_grid_critical")
        log.info("charger=%s external limit source=%s evse=%d periods=%d grid_critical=%s", self.charger_id, source,
                 evse, len(periods), critical)
        self._emit(ev.ChargingLimitReported(self.charger_id, now, source if source in _LIMIT_SOURCES else "Other",
                                            evse, tuple(periods), critical if isinstance(critical, bool) else None,
                                            unusable=bool(schedules) and not periods))
        return call_result.NotifyChargingLimit()

    @on(Action.cleared_charging_limit)
    def on_cleared_charging_limit(self, charging_limit_source: str, **kwargs: Any) -> Any:
        evse_id = kwargs.get("evse_id")
        evse = evse_id if isinstance(evse_id, int) and evse_id >= 0 else None
        log.info("charger=%s external limit cleared source=%s evse=%s", self.charger_id, charging_limit_source, evse)
        self._emit(ev.ChargingLimitCleared(self.charger_id, self.ctx.clock(), charging_limit_source, evse))
        return call_result.ClearedChargingLimit()

    @on(Action.notify_ev_charging_schedule)
    def on_notify_ev_charging_schedule(self, time_base: str, evse_id: int, charging_schedule: dict[str, Any],
                                       **kwargs: Any) -> Any:
        now = self.ctx.clock()
        base = _time_or(time_base, now)
        try:
            periods = schedule_periods(charging_schedule, base, now)
        except ScheduleError as exc:
            log.warning("charger=%s NotifyEVChargingSchedule evse=%d unusable: %s", self.charger_id, evse_id, exc)
            return call_result.NotifyEVChargingSchedule(
                status="Rejected", status_info={"reason_code": "InvalidSchedule", "additional_info": str(exc)[:512]})
        offered = self._tx_offered.get(evse_id)
        accepted = not exceeds_offer(periods, offered, self.ctx.voltage_v)
        self._emit(ev.EvScheduleReported(self.charger_id, now, evse_id, periods, offered, accepted))
        if not accepted:
            log.warning("charger=%s evse=%d the vehicle's schedule exceeds the TxProfile sent; Rejected",
                        self.charger_id, evse_id)
            return call_result.NotifyEVChargingSchedule(
                status="Rejected", status_info={"reason_code": "ExceedsLimit",
                                                "additional_info": "schedule above the TxProfile limit"})
        return call_result.NotifyEVChargingSchedule(status="Accepted")

    @on(Action.report_charging_profiles)
    def on_report_charging_profiles(self, request_id: int, evse_id: int, **kwargs: Any) -> Any:
        # The answer to a GetChargingProfiles; depotctl reads the composite schedule instead and asks for none.
        log.info("charger=%s ReportChargingProfiles request=%d evse=%d", self.charger_id, request_id, evse_id)
        return call_result.ReportChargingProfiles()

    # ------------------------------------------------------------------------------ data transfer (P01/P02)

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, **kwargs: Any) -> Any:
        log.info("charger=%s DataTransfer vendor=%s message=%s: unknown vendor", self.charger_id, vendor_id[:255],
                 str(kwargs.get("message_id", ""))[:50])
        return call_result.DataTransfer(status="UnknownVendorId")

    # ------------------------------------------------------------------------------ reports and displays

    @on(Action.notify_report)
    def on_notify_report(self, request_id: int, seq_no: int, **kwargs: Any) -> Any:
        return call_result.NotifyReport()

    @on(Action.notify_monitoring_report)
    def on_notify_monitoring_report(self, request_id: int, seq_no: int, **kwargs: Any) -> Any:
        return call_result.NotifyMonitoringReport()

    @on(Action.notify_customer_information)
    def on_notify_customer_information(self, request_id: int, seq_no: int, **kwargs: Any) -> Any:
        return call_result.NotifyCustomerInformation()

    @on(Action.notify_display_messages)
    def on_notify_display_messages(self, request_id: int, **kwargs: Any) -> Any:
        return call_result.NotifyDisplayMessages()

    @on(Action.publish_firmware_status_notification)
    def on_publish_firmware_status(self, status: str, **kwargs: Any) -> Any:
        return call_result.PublishFirmwareStatusNotification()

    @on(Action.reservation_status_update)
    def on_reservation_status_update(self, reservation_id: int, reservation_update_status: str, **kwargs: Any) -> Any:
        return call_result.ReservationStatusUpdate()

    # ------------------------------------------------------------------------------ certificates (A02/A03, M02, M06)

    @on(Action.sign_certificate)
    def on_sign_certificate(self, csr: str, **kwargs: Any) -> Any:
        log.info("charger=%s SignCertificate: depotctl signs no certificates; Rejected", self.charger_id)
        return call_result.SignCertificate(status="Rejected", status_info={"reason_code": "NoCertAuthority"})

    @on(Action.get_15118_ev_certificate)
    def on_get_15118_ev_certificate(self, iso15118_schema_version: str, action: str, exi_request: str,
                                    **kwargs: Any) -> Any:
        return call_result.Get15118EVCertificate(status="Failed", exi_response="",
                                                 status_info={"reason_code": "NoCertAuthority"})

    @on(Action.get_certificate_status)
    def on_get_certificate_status(self, ocsp_request_data: dict[str, Any], **kwargs: Any) -> Any:
        return call_result.GetCertificateStatus(status="Failed", status_info={"reason_code": "NoOcspResponder"})


def _time_or(raw: object, now: datetime) -> datetime:
    """A charger's date-time, or now when it is unusable (the library does not check the format)."""
    return parse_departure(raw, now) or now
