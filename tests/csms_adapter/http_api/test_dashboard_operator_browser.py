"""The health panel's 24 h timeline in a real headless Chromium: a connector the operator takes out of service
through the API shows in its own colour, named by the legend, never as a fault or an outage; a fault on the same
charger afterwards shows as a fault. The charger is the independent test client (``outsider_charger``)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from http_depot import AUTH, OPERATOR_PASSWORD
from live_site import ENV, PASSWORD_A, make_site
from outsider_charger import OutsiderCharger, Station, outsider
from polling import eventually
from test_dashboard_browser import ARTIFACTS, CHROMIUM, LAUNCH_ARGS

from csms_adapter.control.controller import Controller
from csms_adapter.control.recorder import StoreRecorder
from csms_adapter.http_api import attach_http_api
from csms_adapter.http_api.auth import PASSWORD_ENV

playwright_api = pytest.importorskip("playwright.async_api", reason="playwright is not installed (make install)")
if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
    pytest.skip(f"no chromium at {CHROMIUM}: apt-get install chromium (the Makefile does) or set DEPOTCTL_CHROMIUM",
                allow_module_level=True)


@asynccontextmanager
async def depot_with_outsider(tmp_path: Path) -> AsyncIterator[tuple[Controller, OutsiderCharger, str]]:
    env = dict(ENV) | {PASSWORD_ENV: OPERATOR_PASSWORD}
    controller = Controller(make_site(), env=env, debounce_real_s=0.05,
                            recorder=StoreRecorder.open(f"sqlite:///{tmp_path / 'depot.db'}"))
    api = attach_http_api(controller, "127.0.0.1:0")
    station = Station(connector_status={1: "Available", 2: "Available"})
    async with controller, outsider(controller.url, "cp-a", PASSWORD_A, "1.6", station) as cp:
        answer = await cp.boot()
        assert answer.ok
        yield controller, cp, f"http://127.0.0.1:{api.port}"


async def test_operator_unavailability_has_its_own_colour_and_legend(tmp_path: Path) -> None:
    async with depot_with_outsider(tmp_path) as (controller, cp, base_url), \
            httpx.AsyncClient(base_url=base_url, auth=AUTH, timeout=10.0) as api, \
            playwright_api.async_playwright() as pw:
        await eventually(lambda: controller.live.charger("cp-a").set_up)
        response = await api.put("/api/chargers/cp-a/availability",
                                  json={"connector": 2, "state": "inoperative", "reason": "cable swap"})
        assert response.status_code == 200, response.text
        assert response.json()["answer"] == "Accepted"
        await eventually(lambda: cp.station.connector_status[2] == "Unavailable")
        # the Unavailable the operator asked for is no incident
        assert [i for i in controller.monitor.incidents(charger="cp-a") if i.kind.value == "unavailable"] == []
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1100})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(base_url + "/")
            row = "#timeline .tl-row[data-charger=cp-a]"
            operator = page.locator(f"{row} i[data-state=unavailable_operator]")
            await operator.first.wait_for(timeout=15_000)
            for other in ("faulted", "offline", "unavailable"):
                assert await page.locator(f"{row} i[data-state={other}]").count() == 0
            # its own colour, distinct from every outage state, and a legend entry that says what it is
            colours = await page.evaluate(
                "() => Object.fromEntries(['available', 'faulted', 'offline', 'unavailable', 'unavailable_operator']"
                ".map((s) => [s, getComputedStyle(document.querySelector('.legend .swatch.' + s)).backgroundImage"
                " + getComputedStyle(document.querySelector('.legend .swatch.' + s)).backgroundColor]))")
            assert len(set(colours.values())) == 5, colours
            bar = await operator.first.evaluate("(e) => getComputedStyle(e).backgroundImage")
            assert bar == (await page.evaluate(
                "() => getComputedStyle(document.querySelector('.legend .swatch.unavailable_operator')).backgroundImage"))
            legend = await page.locator(".legend").text_content()
            assert legend is not None and "operator" in legend
            assert "operator" in (await operator.first.get_attribute("title") or "")
            ARTIFACTS.mkdir(exist_ok=True)
            await page.locator("#health").screenshot(path=str(ARTIFACTS / "dashboard-operator-unavailable.png"))

            # a fault on the other connector is a fault, and wins over the operator's state on the charger's row
            assert (await cp.call("StatusNotification", {"connectorId": 1, "errorCode": "GroundFailure",
                                                         "status": "Faulted"})).ok
            await page.wait_for_selector(f"{row} i[data-state=faulted]", timeout=15_000)
            assert errors == []
        finally:
            await browser.close()
