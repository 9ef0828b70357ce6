"""Every depotctl command keeps OCPP frames out of the log unless DEPOTCTL_LOG_FRAMES asks for them."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from csms_adapter.cli.main import configure_logging
from csms_adapter.protocol.log_redaction import FRAME_LOGGERS


@pytest.fixture(autouse=True)
def _restore_levels() -> Iterator[None]:
    before = {name: logging.getLogger(name).level for name in FRAME_LOGGERS}
    yield
    for name, level in before.items():
        logging.getLogger(name).setLevel(level)


def test_frames_are_not_logged_by_default(caplog: pytest.LogCaptureFixture) -> None:
    configure_logging({})
    with caplog.at_level(logging.INFO):
        logging.getLogger("ocpp").info("cp-1: send [2, \"1\", \"Heartbeat\", {}]")
        logging.getLogger("depotctl.run").info("controller started")
    assert [r.name for r in caplog.records] == ["depotctl.run"]
    assert all(logging.getLogger(name).level == logging.WARNING for name in FRAME_LOGGERS)


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_frames_are_logged_when_asked(value: str) -> None:
    configure_logging({"DEPOTCTL_LOG_FRAMES": value})
    assert all(logging.getLogger(name).getEffectiveLevel() <= logging.INFO for name in FRAME_LOGGERS)


def test_any_other_value_keeps_frames_quiet() -> None:
    configure_logging({"DEPOTCTL_LOG_FRAMES": "0"})
    assert logging.getLogger("ocpp").level == logging.WARNING
