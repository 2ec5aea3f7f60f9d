"""The dashboard in a real headless Chromium: log in, watch a run progress to its end
on the runs page and on its own page (server-sent events), cancel one as an operator,
and keep screenshots as artifacts. Every asset is local: requests off the server fail."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import expect

from tests.browser import browser_page, screenshot
from tests.example.upstream import ReadingsUpstream
from tests.web.test_api import READINGS, wait_for_requests
from tests.web_server import OPERATOR_KEY, ApiServer

TIMEOUT_MS = 60_000


async def start(api: ApiServer, *stations: str) -> str:
    async with api.client(OPERATOR_KEY) as client:
        response = await client.post("/api/v1/pipelines/example/runs",
                                     json={"stations": list(stations), "concurrency": 1})
    assert response.status_code == 201, response.text
    return str(response.json()["workflow_id"])


async def test_watch_a_run_to_its_end_and_cancel_another(
        api: ApiServer, readings_upstream: ReadingsUpstream) -> None:
    readings_upstream.readings = READINGS
    readings_upstream.gate.clear()
    async with browser_page(api.url) as (page, errors):
        page: Any
        # `pipeworks dev up`'s link: logs in and lands on the runs page.
        await page.goto(f"/login?key={OPERATOR_KEY}")
        await expect(page).to_have_url(re.compile(r"/$"))
        assert OPERATOR_KEY not in page.url
        await expect(page.locator("#who")).to_contain_text("ops")

        watched = await start(api, "S1", "S2")
        await wait_for_requests(readings_upstream)
        row = page.locator(f'#runs tr[data-workflow-id="{watched}"]')
        # The runs page refreshes itself: the new run appears, running, without a reload.
        await expect(row).to_have_attribute("data-status", "running", timeout=TIMEOUT_MS)

        await row.locator("a").click()
        await expect(page).to_have_url(re.compile(f"/runs/{watched}$"))
        await expect(page.locator("#run-status")).to_have_text("running")
        await expect(page.locator("#web-ui-link")).to_have_attribute(
            "href", re.compile(f"/workflows/{watched}$"))
        readings_upstream.gate.set()
        await expect(page.locator("#run-status")).to_have_text("completed",
                                                               timeout=TIMEOUT_MS)
        await expect(page.locator("#run-bar progress")).to_have_attribute("value", "100")
        await expect(page.locator('#counts td[data-key="records.staged"]')).to_have_text("3")
        await expect(page.locator("#stages tbody tr")).to_have_count(1)
        await expect(page.locator("#timeline li").last).to_contain_text("completed")
        await expect(page.locator("#cancel-section")).to_be_hidden()
        # The history's timeline: a bar per activity, drawn after the run ended.
        await expect(page.locator("#timeline-chart")).to_have_attribute(
            "data-spans", re.compile(r"^[1-9]\d*$"), timeout=TIMEOUT_MS)
        await expect(page.locator("#timeline-marks li").last).to_contain_text(
            "run completed", timeout=TIMEOUT_MS)
        await screenshot(page, "run-page")

        readings_upstream.gate.clear()
        readings_upstream.requests = 0
        doomed = await start(api, "S2")
        await wait_for_requests(readings_upstream)
        await page.goto(f"/runs/{doomed}")
        await expect(page.locator("#run-status")).to_have_text("running")
        await page.fill("#reason", "browser test cancels")
        await page.click("#cancel-button")
        await expect(page.locator(".notice")).to_contain_text("Cancel sent")
        readings_upstream.gate.set()
        await expect(page.locator("#run-status")).to_have_text("cancelled",
                                                               timeout=TIMEOUT_MS)
        await expect(page.locator("#rolled-back")).to_be_visible()

        await page.goto("/")
        await expect(page.locator(f'#runs tr[data-workflow-id="{doomed}"]')).to_have_attribute(
            "data-status", "cancelled", timeout=TIMEOUT_MS)
        await expect(page.locator(f'#runs tr[data-workflow-id="{watched}"] progress')
                     ).to_have_attribute("value", "100")
        await screenshot(page, "runs-page")
        await page.goto("/health")
        await expect(page.locator("#pollers tbody tr")).not_to_have_count(0)
        await screenshot(page, "health-page")
        assert errors.messages == []
