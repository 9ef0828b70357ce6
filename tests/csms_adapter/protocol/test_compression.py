"""``ocpp.compression``: permessage-deflate (RFC 7692) offered to chargers or not (docs/benchmarks.md, "Per-message
compression"). Deflate is the default: a 2.0.1 CSMS must support it, and it saves bytes on cellular links; "none"
saves the controller's CPU on a LAN depot. A charger that offers compression to a server without it still connects."""

from __future__ import annotations

import pytest
from fake_chargers import basic
from live_site import ENV, PASSWORD_A, make_site
from websockets.asyncio.client import connect

from csms_adapter.cli.run_command import with_compression
from csms_adapter.control.controller import Controller
from optimizer.errors import ConfigError


def test_deflate_is_the_default() -> None:
    assert make_site().ocpp.compression == "deflate"


@pytest.mark.parametrize(("setting", "negotiated"), [("deflate", True), ("none", False)])
async def test_the_setting_decides_what_the_handshake_agrees(setting: str, negotiated: bool) -> None:
    site = make_site(f"  compression: {setting}\n")
    async with (Controller(site, env=ENV, debounce_real_s=0.05) as c,
                connect(c.url + "cp-a", subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                        additional_headers=basic("cp-a", PASSWORD_A), open_timeout=5) as ws):
        assert ws.request is not None and "permessage-deflate" in ws.request.headers["Sec-WebSocket-Extensions"]
        assert ws.response is not None
        agreed = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        assert ("permessage-deflate" in agreed) is negotiated
        assert ws.subprotocol == "ocpp1.6"


def test_the_command_line_overrides_the_site_file() -> None:
    site = make_site("  compression: deflate\n")
    assert with_compression(site, "none").ocpp.compression == "none"
    assert with_compression(site, "none").chargers == site.chargers


@pytest.mark.parametrize("value", ["gzip", "true", "1", "[deflate]", "''"])
def test_any_other_value_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_site(f"  compression: {value}\n")
    assert "compression" in str(info.value)
