"""The F1 pipeline's part of `pipeworks serve` over a real server: the generated race
with a known truth (a safety car on laps 38-41, planned pit cycles) synced end to end,
then read through the session API (the CLI report's JSON) and on the session page in a
real headless Chromium (its charts drawn, the safety car shaded, the tables filled)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import pytest_asyncio
from playwright.async_api import expect
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from devstack.f1 import F1UpstreamServer, GeneratedRace
from devstack.postgres import EmbeddedPostgres
from pipeworks.db import Connection
from pipeworks.settings import Settings
from starters.f1.report import session_report
from tests.browser import browser_page, screenshot
from tests.f1.conftest_upstream import TRUTH_RACE, TRUTH_SAFETY_CAR
from tests.f1.helpers import sync_session
from tests.web_server import VIEWER_KEY, ApiServer, api_server

TIMEOUT_MS = 30_000
PROBLEM_JSON = "application/problem+json"


@pytest_asyncio.fixture(loop_scope="session")
async def synced(f1_worker: Worker, f1_settings: Settings, temporal_env: WorkflowEnvironment,
                 f1_upstream: F1UpstreamServer, f1_truth_race: GeneratedRace, db: Connection
                 ) -> AsyncIterator[ApiServer]:
    """The truth race synced (worker, Temporal, demo upstream), and `pipeworks serve`'s
    server over the F1 pipeline."""
    result = await sync_session(temporal_env.client, f1_settings, TRUTH_RACE)
    assert result["status"] == "completed", result
    async with api_server(f1_settings) as server:
        yield server


async def test_the_session_api_prints_the_cli_report(
        synced: ApiServer, postgres: EmbeddedPostgres) -> None:
    # What `pipeworks f1 report KEY --json` prints (starters/f1/cli.py), newline aside.
    printed = json.dumps(await session_report(postgres.dsn, TRUTH_RACE),
                         ensure_ascii=False, default=str)
    async with synced.client(VIEWER_KEY) as client:
        response = await client.get(f"/api/v1/f1/sessions/{TRUTH_RACE}")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].split(";")[0] == "application/json"
        assert response.text == printed
        document = response.json()
        assert document == json.loads(printed)
        assert document["pit_cycles"] and document["stints"]

        unknown = await client.get("/api/v1/f1/sessions/123456")
        assert unknown.status_code == 404, unknown.text
        assert unknown.headers["content-type"].startswith(PROBLEM_JSON)
        body = unknown.json()
        assert body["status"] == 404 and "123456" in body["detail"]
        assert "sync-session 123456" in body["detail"]

        for bad in ("0", "-1", "abc", "1.5", str(2**31)):
            invalid = await client.get(f"/api/v1/f1/sessions/{bad}")
            assert invalid.status_code == 422, (bad, invalid.text)
            assert invalid.headers["content-type"].startswith(PROBLEM_JSON), bad
            assert invalid.json()["status"] == 422

    async with synced.client() as anonymous:
        refused = await anonymous.get(f"/api/v1/f1/sessions/{TRUTH_RACE}")
        assert refused.status_code == 401, refused.text
        assert refused.headers["content-type"].startswith(PROBLEM_JSON)
        assert "laps" not in refused.text and "stints" not in refused.text
    async with synced.client("wrong-key-0123456789abcdef") as wrong:
        assert (await wrong.get(f"/api/v1/f1/sessions/{TRUTH_RACE}")).status_code == 401


# The chart on a canvas, once Chart.js has drawn it there (null before).
CHART = """id => {
  const canvas = document.getElementById(id);
  const chart = canvas && window.Chart && window.Chart.getChart(canvas);
  return chart && canvas.width > 0 && canvas.height > 0 && chart.chartArea
    && chart.chartArea.right > chart.chartArea.left ? chart : null;
}"""

LAP_CHART = f"""() => {{
  const chart = ({CHART})("lap-chart");
  return {{
    labels: chart.data.datasets.map(d => d.label),
    points: chart.data.datasets.map(d => d.data.length),
    ranges: JSON.parse(JSON.stringify(chart.config.options.plugins.neutralisedBands.ranges)),
    plugins: chart.config.plugins.map(p => p.id),
    size: [chart.width, chart.height],
  }};
}}"""

# The RGBA of the lap chart's pixel at lap `lap`, `above` CSS pixels over the chart
# area's bottom: below the fastest lap by a second, where no line runs.
PIXEL = f"""([lap, above]) => {{
  const chart = ({CHART})("lap-chart");
  const ratio = chart.currentDevicePixelRatio;
  const x = chart.scales.x.getPixelForValue(lap);
  const y = chart.chartArea.bottom - above;
  return Array.from(chart.ctx.getImageData(Math.round(x * ratio), Math.round(y * ratio),
                                           1, 1).data);
}}"""

DEGRADATION_CHART = f"""() => {{
  const chart = ({CHART})("degradation-chart");
  return chart.data.datasets.map(d => ({{type: d.type, label: d.label,
                                         points: d.data.length}}));
}}"""


async def degradation_of(db: Connection, driver: int) -> tuple[list[int], int]:
    """A driver's stints as the degradation chart shows them: the points per stint (its
    laps valid for pace) and how many fitted lines."""
    rows = await db.fetch("SELECT valid_laps, degradation_s_per_lap FROM f1.stint_metrics"
                          " WHERE session_key = $1 AND driver_number = $2"
                          " ORDER BY stint_number", TRUTH_RACE, driver)
    return ([r["valid_laps"] for r in rows],
            sum(r["degradation_s_per_lap"] is not None and r["valid_laps"] > 0 for r in rows))


async def test_the_session_page_in_a_browser(synced: ApiServer, db: Connection) -> None:
    pit_cycles = await db.fetchval("SELECT count(*) FROM f1.pit_cycles WHERE session_key = $1",
                                   TRUTH_RACE)
    assert pit_cycles > 0
    acronyms = [r["name_acronym"] for r in await db.fetch(
        "SELECT DISTINCT d.name_acronym FROM f1.laps l JOIN f1.drivers d USING (session_key,"
        " driver_number) WHERE l.session_key = $1", TRUTH_RACE)]
    async with browser_page(synced.url) as (page, errors):
        await page.goto(f"/login?key={VIEWER_KEY}")
        await expect(page).to_have_url(re.compile(r"/$"))

        # The sessions list shows the race; its link opens the session page.
        await page.goto("/f1")
        row = page.locator("#f1-sessions tbody tr", has_text=str(TRUTH_RACE))
        await expect(row).to_have_count(1)
        await expect(row).to_contain_text("Race")
        await row.locator(f'a[href="/f1/sessions/{TRUTH_RACE}"]').click()
        await expect(page).to_have_url(re.compile(f"/f1/sessions/{TRUTH_RACE}$"))
        await expect(page.locator("h1")).to_contain_text("Race")

        # Both charts drawn.
        for canvas in ("lap-chart", "degradation-chart"):
            await page.wait_for_function(f"() => !!({CHART})({json.dumps(canvas)})",
                                         timeout=TIMEOUT_MS)
        lap_chart = await page.evaluate(LAP_CHART)
        assert sorted(lap_chart["labels"]) == sorted(acronyms)
        assert all(n > 0 for n in lap_chart["points"])
        assert lap_chart["size"][0] > 600 and lap_chart["size"][1] > 200, lap_chart["size"]

        # The safety car: in the shading plugin's options, named over the chart, and
        # shaded (its band's pixels differ from the same spot on a racing lap).
        assert "neutralisedBands" in lap_chart["plugins"]
        assert lap_chart["ranges"] == [{"kind": "SC", "from_lap": TRUTH_SAFETY_CAR[0],
                                        "to_lap": TRUTH_SAFETY_CAR[1]}]
        await expect(page.locator("#lap-chart-title + p")).to_contain_text(
            f"Neutralised: SC laps {TRUTH_SAFETY_CAR[0]}\u2013{TRUTH_SAFETY_CAR[1]}.")
        middle = (TRUTH_SAFETY_CAR[0] + TRUTH_SAFETY_CAR[1]) / 2
        shaded = await page.evaluate(PIXEL, [middle, 4])
        racing = await page.evaluate(PIXEL, [20.5, 4])
        assert shaded != racing, (shaded, racing)
        assert shaded[0] > shaded[2], shaded  # a yellow tint: more red than blue

        # The tables: every pit cycle of the session; no check failed.
        await expect(page.locator("#pit-cycles tbody tr")).to_have_count(pit_cycles)
        await expect(page.locator("#failed-checks")).to_contain_text("Every check passed")

        # The degradation chart follows the driver selector.
        select = page.locator("#degradation-driver")
        options = await select.locator("option").evaluate_all(
            "options => options.map(o => o.value)")
        assert len(options) >= 2
        first, other = int(options[0]), int(options[-1])
        assert int(await select.input_value()) == first
        shown_text = await page.evaluate(f"() => JSON.stringify(({DEGRADATION_CHART})())")
        shown = json.loads(shown_text)
        points, lines = await degradation_of(db, first)
        assert [d["points"] for d in shown if d["type"] == "scatter"] == points
        assert sum(d["type"] == "line" for d in shown) == lines
        await select.select_option(str(other))
        await page.wait_for_function(
            f"before => JSON.stringify(({DEGRADATION_CHART})()) !== before",
            arg=shown_text, timeout=TIMEOUT_MS)
        changed = await page.evaluate(DEGRADATION_CHART)
        points, lines = await degradation_of(db, other)
        assert [d["points"] for d in changed if d["type"] == "scatter"] == points
        assert sum(d["type"] == "line" for d in changed) == lines
        await select.select_option(str(first))
        await page.wait_for_function(
            f"before => JSON.stringify(({DEGRADATION_CHART})()) === before",
            arg=shown_text, timeout=TIMEOUT_MS)

        await screenshot(page, "f1-session-page")
        assert errors.messages == []
