"""The dashboard's health panel in a real headless Chromium: a fault injected into an emulated charger appears as
an open incident with its code, vendor code and age, colours the charger's 24 h timeline, lowers its availability,
and leaves the list when it clears — all without a reload. A screenshot is saved to test-artifacts/."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from http_depot import running_depot
from test_dashboard_browser import ARTIFACTS, CHROMIUM, LAUNCH_ARGS

from csms_adapter.emulator.faults import InjectionRecord, parse_fault

playwright_api = pytest.importorskip("playwright.async_api", reason="playwright is not installed (make install)")
if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
    pytest.skip(f"no chromium at {CHROMIUM}: apt-get install chromium (the Makefile does) or set DEPOTCTL_CHROMIUM",
                allow_module_level=True)


async def test_health_panel_shows_an_injected_fault_and_its_resolution(tmp_path: Path) -> None:
    async with running_depot(tmp_path) as depot, playwright_api.async_playwright() as pw:
        assert depot.fleet is not None
        await depot.fleet.wait_booted(timeout_s=20)
        async with asyncio.timeout(20):  # chargers that booted late on a busy machine were offline for a moment
            while depot.controller.monitor.incidents(open=True):
                await asyncio.sleep(0.05)
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1100})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(depot.base_url + "/")
            await page.wait_for_selector("#live.on", timeout=10_000)
            await page.wait_for_selector("#incidents tbody tr.none", timeout=10_000)
            await page.wait_for_selector("#timeline .tl-row[data-charger=cp-a] .tl-bar > i", timeout=10_000)
            assert await page.locator("#timeline .tl-row").count() == 2
            assert await page.locator("#timeline i[data-state=faulted]").count() == 0

            # 10 emulated minutes (10 s of wall time) of ground fault on cp-a #1 and of cp-b offline, from a minute on
            faults = [parse_fault("fault:cp-a:1@60+600,code=GroundFailure,vendor=GF-12,info=RCD tripped"),
                      parse_fault("offline:cp-b@60+600")]
            depot.fleet.injections = [InjectionRecord(f) for f in faults]
            depot.fleet.schedule_faults()

            row = page.locator("#incidents tbody tr[data-kind=fault]")
            await row.wait_for(timeout=15_000)
            assert await row.locator("td.id").text_content() == "cp-a #1"
            assert await row.locator("td.code").text_content() == "GroundFailure"
            assert await row.locator("td.vendor").text_content() == "GF-12"
            assert await row.locator("td.info").text_content() == "RCD tripped"
            assert await row.locator("td.sev-critical, td.sev-warning").count() == 1
            first_age = await row.locator("td.age").text_content()
            await page.wait_for_function(  # the age grows with the (60×) clock, without a reload
                "([before]) => { const c = document.querySelector('#incidents tr[data-kind=fault] td.age');"
                " return c && c.textContent !== before; }", arg=[first_age], timeout=10_000)
            await page.wait_for_selector("#timeline .tl-row[data-charger=cp-a] i[data-state=faulted]", timeout=10_000)
            assert await page.locator("#timeline .tl-row[data-charger=cp-b] i[data-state=faulted]").count() == 0
            # cp-b shows up after the offline debounce (120 emulated s)
            await page.locator("#incidents tbody tr[data-kind=offline]").wait_for(timeout=15_000)
            await page.wait_for_selector("#timeline .tl-row[data-charger=cp-b] i[data-state=offline]", timeout=10_000)
            ARTIFACTS.mkdir(exist_ok=True)
            await page.locator("#health").screenshot(path=str(ARTIFACTS / "dashboard-health.png"))
            assert (ARTIFACTS / "dashboard-health.png").stat().st_size > 5_000

            # both clear: the incidents leave the list; the timeline keeps them as history, and the charger that
            # was down as a whole (cp-b) lost availability while cp-a, with its other connector free, did not
            await page.wait_for_selector("#incidents tbody tr.none", timeout=30_000)
            await page.wait_for_function(
                "() => { const a = document.querySelector('#timeline .tl-row[data-charger=cp-b] .avail');"
                " return a && a.dataset.value !== '' && Number(a.dataset.value) < 1; }", timeout=45_000)
            assert await page.locator("#timeline .tl-row[data-charger=cp-a] i[data-state=faulted]").count() == 1
            # (a charger that booted late on a busy machine may show a short offline span at the start as well)
            assert await page.locator("#timeline .tl-row[data-charger=cp-b] i[data-state=offline]").count() >= 1
            cp_a = await page.get_attribute("#timeline .tl-row[data-charger=cp-a] .avail", "data-value")
            cp_b = await page.get_attribute("#timeline .tl-row[data-charger=cp-b] .avail", "data-value")
            assert cp_a is not None and cp_b is not None
            assert float(cp_b) < 1 - 500 / 86400 < float(cp_a)  # cp-b lost about 10 minutes of 24 h, cp-a none
            assert errors == []
        finally:
            await browser.close()
