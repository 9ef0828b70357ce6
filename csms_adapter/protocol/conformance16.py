"""OCPP 1.6J: the answers to charge-point-initiated messages that are not telemetry, transactions or monitoring.

Mixed into ``ocpp16.Ocpp16Link`` (the library routes ``@on`` methods found on base classes too).

- DataTransfer (Core profile, 1.6 §4.3): depotctl knows no vendor extension, so ``UnknownVendorId``.
- SignCertificate (1.6 security whitepaper, A02/A03): depotctl runs no certificate authority for charge points,
  so the request is ``Rejected`` (the charge point keeps its certificate).
"""

from __future__ import annotations

import logging
from typing import Any

from ocpp.routing import on
from ocpp.v16 import call_result
from ocpp.v16.enums import Action

log = logging.getLogger("depotctl.ocpp16")


class Conformance16:
    """The 1.6 handlers above. Needs the link's ``charger_id``."""

    charger_id: str

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, **kwargs: Any) -> Any:
        log.info("charger=%s DataTransfer vendor=%s message=%s: unknown vendor", self.charger_id, vendor_id[:255],
                 str(kwargs.get("message_id", ""))[:50])
        return call_result.DataTransfer(status="UnknownVendorId")

    @on(Action.sign_certificate)
    def on_sign_certificate(self, csr: str, **kwargs: Any) -> Any:
        log.info("charger=%s SignCertificate: depotctl signs no certificates; Rejected", self.charger_id)
        return call_result.SignCertificate(status="Rejected")
