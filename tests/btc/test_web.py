"""The reconciliation's part of `pipeworks serve` over real findings: mainnet 0-438
ingested and reconciled twice against the node emulator with faults of every category
planted, some of them fixed by a re-ingest in between (resolved by the second run), one
planted after the first run (new in the second). Then, against a real HTTP server, the
worker, Temporal and Postgres: the findings API (every filter and the cursor against
SQL, every error, the keys), starting a reconciliation over the API (its audit rows),
and the reconciliation page in a real headless Chromium (the summary, the filter form,
the pager, the trend chart, the breaker state and batch size of a running run)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections import Counter
from typing import Any

import httpx
import pytest
from playwright.async_api import expect
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from devstack.btc import BtcNodeServer
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.browser import browser_page, screenshot
from tests.btc.helpers import ingest, open_findings, reconcile, start
from tests.web_server import OPERATOR_KEY, VIEWER_KEY, api_server, audit_rows, is_problem

pytestmark = pytest.mark.asyncio(loop_scope="session")

RECONCILE_ID = "btc-reconcile-main"
TIMEOUT_MS = 30_000
PAGE_ROWS = 50  # starters/btc/web/routes.py: findings per page of /btc

# Faults of every category the checks of a height find (as tests/btc/test_reconcile.py
# plants them), each with the statements that plant it.
PLANTED: dict[tuple[int, str, str], list[str]] = {
    (300, "missing_block", "hash"):
        ["DELETE FROM btc.transactions WHERE block_hash IN"
         " (SELECT hash FROM btc.blocks WHERE height = 300)",
         "DELETE FROM btc.blocks WHERE height = 300",
         "DELETE FROM btc.block_calcs WHERE height = 300"],
    (310, "stale_block", "hash"):
        ["UPDATE btc.blocks SET hash = repeat('ab', 32) WHERE height = 310"],
    (170, "partial_block", "rows"):
        ["DELETE FROM btc.transactions WHERE tx_index = 1 AND block_hash ="
         " (SELECT hash FROM btc.blocks WHERE height = 170)"],
    # Above the re-ingest (which would count the extra row into its calcs): stays open.
    (425, "duplicate_block", "rows"):
        ["INSERT INTO btc.transactions (block_hash, tx_index, txid, is_coinbase,"
         " input_count, output_count, input_value_sat, output_value_sat, fee_sat)"
         " SELECT hash, 1, repeat('cd', 32), false, 1, 1, 1, 1, 0 FROM btc.blocks"
         " WHERE height = 425"],
    (330, "count_mismatch", "output_count"):
        ["UPDATE btc.block_calcs SET output_count = output_count + 1 WHERE height = 330"],
    (340, "value_mismatch", "total_out_sat"):
        ["UPDATE btc.block_calcs SET total_out_sat = total_out_sat + 1 WHERE height = 340"],
    (435, "value_mismatch", "total_out_sat"):  # stays open
        ["UPDATE btc.block_calcs SET total_out_sat = total_out_sat - 7 WHERE height = 435"],
    (350, "invariant_violation", "coinbase_out_sat"):
        ["UPDATE btc.block_calcs SET coinbase_out_sat = coinbase_out_sat + 1,"
         " unclaimed_sat = unclaimed_sat - 1 WHERE height = 350"],
}
# Enough count mismatches that the page has a second page; the re-ingest fixes the lower
# half of them.
BULK = range(360, 420)
BULK_SQL = ("UPDATE btc.block_calcs SET output_count = output_count + 1"
            " WHERE height BETWEEN 360 AND 419")
PRUNED_BELOW = 5  # heights the node has no data for in the first run: unverifiable
REINGEST_TO = 389
LATE = 430  # planted after the first run: new in the second
LATE_SQL = "UPDATE btc.block_calcs SET output_count = output_count + 1 WHERE height = 430"


def count_mismatch(height: int) -> tuple[int, str, str]:
    return (height, "count_mismatch", "output_count")


FIRST_RUN = (set(PLANTED)
             # The coinbase raised at 350 differs from the node's block too.
             | {(350, "value_mismatch", "coinbase_out_sat")}
             | {(h, "unverifiable", "block") for h in range(PRUNED_BELOW)}
             | {count_mismatch(h) for h in BULK})
OPEN_AFTER_SECOND = ({(425, "duplicate_block", "rows"), (435, "value_mismatch", "total_out_sat"),
                      count_mismatch(LATE)}
                     | {count_mismatch(h) for h in BULK if h > REINGEST_TO})
RESOLVED_BY_SECOND = FIRST_RUN - OPEN_AFTER_SECOND


async def reconciled_twice(client: Any, settings: Settings, node: BtcNodeServer,
                           db: Connection) -> None:
    """Two reconciliation runs with real findings: every category in the first, most of
    them fixed by a re-ingest and resolved by the second, one new in the second."""
    await ingest(client, settings)
    for statements in PLANTED.values():
        for sql in statements:
            await db.execute(sql)
    await db.execute(BULK_SQL)
    node.prune(PRUNED_BELOW)
    await reconcile(client, settings)
    assert await open_findings(db) == FIRST_RUN
    # The node has its old blocks again; a re-ingest of 0..389 repairs our tables there.
    node.prune(0)
    await db.execute("DELETE FROM btc.blocks WHERE hash = repeat('ab', 32)")
    await ingest(client, settings, from_height=0, to_height=REINGEST_TO)
    await db.execute(LATE_SQL)
    await reconcile(client, settings)
    found = await open_findings(db)
    assert found == OPEN_AFTER_SECOND, (found - OPEN_AFTER_SECOND, OPEN_AFTER_SECOND - found)
    resolved = await db.fetch("SELECT height, category, field FROM btc.discrepancies"
                              " WHERE resolved_at IS NOT NULL")
    assert {(r["height"], r["category"], r["field"]) for r in resolved} == RESOLVED_BY_SECOND


# -- SQL: what the API and page must show ------------------------------------------------

# Each API filter and the rows of btc.discrepancies it must keep (constants of this file).
FILTERS: list[tuple[dict[str, Any], str]] = [
    ({"category": "count_mismatch"}, "category = 'count_mismatch'"),
    ({"category": "missing_block"}, "category = 'missing_block'"),
    ({"category": "unverifiable"}, "category = 'unverifiable'"),
    ({"category": "supply_mismatch"}, "category = 'supply_mismatch'"),
    ({"severity": "error"}, "severity = 'error'"),
    ({"severity": "info"}, "severity = 'info'"),
    ({"severity": "warning"}, "severity = 'warning'"),
    ({"open": "true"}, "resolved_at IS NULL"),
    ({"open": "false"}, "resolved_at IS NOT NULL"),
    ({"from_height": 300, "to_height": 399}, "height BETWEEN 300 AND 399"),
    ({"from_height": 400}, "height >= 400"),
    ({"to_height": 4}, "height <= 4"),
    ({"from_height": 350, "to_height": 350}, "height = 350"),
    ({"from_height": 421, "to_height": 429}, "height BETWEEN 421 AND 429"),
    ({"category": "count_mismatch", "open": "false", "from_height": 350, "to_height": 400},
     "category = 'count_mismatch' AND resolved_at IS NOT NULL AND height BETWEEN 350 AND 400"),
    ({"severity": "error", "open": "true", "to_height": 400},
     "severity = 'error' AND resolved_at IS NULL AND height <= 400"),
    ({"category": "value_mismatch", "severity": "info"},
     "category = 'value_mismatch' AND severity = 'info'"),
]


async def expected_ids(db: Connection, where: str = "true") -> list[int]:
    # `where` is a constant of this file, never a value from outside.
    query = ("SELECT id FROM btc.discrepancies WHERE " + where
             + " ORDER BY height DESC, id DESC")
    return [r["id"] for r in await db.fetch(query)]


async def expected_summary(db: Connection, where: str = "true"
                           ) -> dict[tuple[str, str], tuple[int, int]]:
    """(category, severity) -> (open, resolved)."""
    rows = await db.fetch(
        "SELECT category, severity, count(*) FILTER (WHERE resolved_at IS NULL) AS open,"
        " count(*) FILTER (WHERE resolved_at IS NOT NULL) AS resolved"
        " FROM btc.discrepancies WHERE " + where
        + " GROUP BY category, severity")
    return {(r["category"], r["severity"]): (r["open"], r["resolved"]) for r in rows}


# -- the API ----------------------------------------------------------------------------

async def walk(client: httpx.AsyncClient, limit: int, **filters: Any
               ) -> list[dict[str, Any]]:
    """Every page of the findings in turn, following `next_cursor`."""
    rows: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        params = {**filters, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/api/v1/btc/findings", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"items", "next_cursor"}
        rows += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            assert len(page["items"]) <= limit
            return rows
        assert len(page["items"]) == limit, "a short page before the last"
    raise AssertionError("pagination does not end")


def cursor_of(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


async def held_in_a_batch(handle: WorkflowHandle[Any, Any], node: BtcNodeServer
                          ) -> dict[str, Any]:
    """With the node holding every request (`hold_after=0`), lets the plan's requests
    through one at a time until the run has planned its range (its progress has a batch
    size): the run then stands still in its first batches, until the hold is lifted."""
    for _ in range(600):
        progress: dict[str, Any] = await handle.query("progress")
        if progress.get("batch_size") is not None and progress["status"] == "running":
            return progress
        if node.faults.held:
            node.faults.set(hold_after=0)  # the held requests go on; the next one waits
        await asyncio.sleep(0.05)
    raise AssertionError("the reconciliation never planned its range")


async def test_findings_api_filters_pages_errors_and_starting_a_run(
        btc_worker: Worker, btc_settings: Settings, temporal_env: WorkflowEnvironment,
        btc_node: BtcNodeServer, db: Connection) -> None:
    await reconciled_twice(temporal_env.client, btc_settings, btc_node, db)
    everything = await expected_ids(db)
    assert len(everything) == len(FIRST_RUN) + 1
    # Hundreds of pages in a few seconds: above the default rate limit, which is not
    # under test here.
    async with api_server(btc_settings, api_rate_limit_per_second=1000,
                          api_rate_limit_burst=1000) as api, api.client(VIEWER_KEY) as client:
        # Every filter keeps exactly its rows, in order, on every page.
        for filters, where in FILTERS:
            rows = await walk(client, 7, **filters)
            assert [r["id"] for r in rows] == await expected_ids(db, where), filters
        # The filters are not vacuous: each kind keeps some rows and drops others.
        sizes = {json.dumps(f): len(await expected_ids(db, w)) for f, w in FILTERS}
        assert sum(0 < n < len(everything) for n in sizes.values()) >= 12, sizes

        # The cursor walks every finding once, highest height first, then newest id.
        for limit in (1, 6, len(everything), 500):
            rows = await walk(client, limit)
            assert [r["id"] for r in rows] == everything, limit
        keys = [(r["height"], r["id"]) for r in rows]
        assert keys == sorted(keys, reverse=True)
        # A row is the table's row, in JSON.
        by_height = {(r["height"], r["category"], r["field"]): r for r in rows}
        late = by_height[count_mismatch(LATE)]
        record = await db.fetchrow("SELECT * FROM btc.discrepancies WHERE id = $1",
                                   late["id"])
        assert record is not None
        assert (late["check"], late["severity"], late["ours"], late["theirs"],
                late["resolved_at"]) == (record["check"], "error", int(record["ours"]),
                                         int(record["theirs"]), None)
        assert late["ours"] == late["theirs"] + 1  # ours has the planted extra output
        assert by_height[(300, "missing_block", "hash")]["resolved_at"] is not None
        assert by_height[(0, "unverifiable", "block")]["severity"] == "info"

        # Errors: one problem each, naming what is wrong.
        bad = {"category": ("bogus", "category"), "severity": ("fatal", "severity"),
               "open": ("maybe", "open"), "limit": ("0", "limit"),
               "from_height": ("low", "from_height")}
        for name, (value, word) in bad.items():
            response = await client.get("/api/v1/btc/findings", params={name: value})
            body = is_problem(response, 422, word)
            assert body["instance"] == "/api/v1/btc/findings"
        is_problem(await client.get("/api/v1/btc/findings", params={"limit": 501}), 422,
                   "limit")
        is_problem(await client.get("/api/v1/btc/findings",
                                    params={"from_height": 10, "to_height": 5}),
                   400, "from_height", "to_height")
        for name in ("from_height", "to_height"):
            negative = await client.get("/api/v1/btc/findings", params={name: -1})
            assert negative.status_code in (400, 422), negative.text
            is_problem(negative, negative.status_code, name)
            # Beyond any height Postgres can hold: a problem, not a server error.
            huge = await client.get("/api/v1/btc/findings", params={name: 2**40})
            assert huge.status_code in (400, 422), huge.text
            is_problem(huge, huge.status_code, name)
        for cursor in ("not-a-cursor", cursor_of(["a", 1]), cursor_of([1, 2, 3]),
                       cursor_of({"height": 1}), cursor_of([True, 1]),
                       cursor_of([2**40, 1]), cursor_of([1, 2**70])):
            response = await client.get("/api/v1/btc/findings", params={"cursor": cursor})
            is_problem(response, 400, "cursor")
        # A key is needed; a viewer's is enough to read, not to start.
        async with api.client() as anonymous:
            missing = await anonymous.get("/api/v1/btc/findings")
        is_problem(missing, 401)
        assert "Bearer" in missing.headers["www-authenticate"]
        async with api.client("not-a-key-of-this-server") as stranger:
            is_problem(await stranger.get("/api/v1/btc/findings"), 401)
        refused = await client.post("/api/v1/pipelines/btc_reconcile/runs",
                                    params={"workflow": "BtcReconcileWorkflow"}, json={})
        is_problem(refused, 403, "operator")

        # Starting a run: `{}` is an input of both workflows, so it must name one.
        async with api.client(OPERATOR_KEY) as operator:
            ambiguous = await operator.post("/api/v1/pipelines/btc_reconcile/runs", json={})
            is_problem(ambiguous, 422, "BtcIngestWorkflow", "BtcReconcileWorkflow",
                       "?workflow=")
            # The node holds every request, so the run is still going when asked again.
            btc_node.faults.set(hold_after=0)
            try:
                first = await operator.post("/api/v1/pipelines/btc_reconcile/runs",
                                            params={"workflow": "BtcReconcileWorkflow"},
                                            json={})
                second = await operator.post("/api/v1/pipelines/btc_reconcile/runs",
                                             params={"workflow": "BtcReconcileWorkflow"},
                                             json={})
            finally:
                btc_node.faults.set(hold_after=None)
            assert first.status_code == 201, first.text
            assert second.status_code == 200, second.text
            assert first.headers["location"] == f"/api/v1/runs/{RECONCILE_ID}"
            assert (first.json()["attached"], second.json()["attached"]) == (False, True)
            assert first.json()["workflow"] == second.json()["workflow"] == (
                "BtcReconcileWorkflow")
            assert first.json()["run_id"] == second.json()["run_id"]
            handle = temporal_env.client.get_workflow_handle(RECONCILE_ID)
            result = await handle.result()
            assert result["status"] == "completed", result
            run = (await operator.get(f"/api/v1/runs/{RECONCILE_ID}")).json()
            assert run["status"] == "completed" and run["pipeline"] == "btc_reconcile"
    # Nothing was fixed or broken since: the third run finds what was open.
    assert await open_findings(db) == OPEN_AFTER_SECOND
    rows = await audit_rows(db)
    assert [(r["key_name"], r["role"], r["action"], r["status"], r["outcome"])
            for r in rows] == [
        ("ada", "viewer", "start", 403, "refused"),
        ("ops", "operator", "start", 422, "refused"),
        ("ops", "operator", "start", 201, "started"),
        ("ops", "operator", "start", 200, "attached"),
    ]
    assert {r["pipeline"] for r in rows} == {"btc_reconcile"}
    assert "BtcReconcileWorkflow" in (rows[1]["detail"] or "")
    assert [r["workflow_id"] for r in rows[2:]] == [RECONCILE_ID, RECONCILE_ID]
    assert rows[2]["run_id"] == rows[3]["run_id"] == first.json()["run_id"]
    assert json.loads(rows[2]["request"]) == {}


# -- the page in a browser ----------------------------------------------------------------

# (category, severity) -> (open, resolved) as the summary table shows them, from each
# cell's text and its data attributes (which must agree).
SUMMARY_CELLS = """els => els.map(e => [e.closest('tr').dataset.category, e.dataset.severity,
    e.dataset.open === undefined ? null : Number(e.dataset.open),
    e.dataset.resolved === undefined ? null : Number(e.dataset.resolved),
    e.textContent.replace(/\\s+/g, ' ').trim()])"""


async def shown_summary(page: Any) -> dict[tuple[str, str], tuple[int, int]]:
    cells = await page.eval_on_selector_all("#findings-summary tbody td[data-severity]",
                                            SUMMARY_CELLS)
    shown: dict[tuple[str, str], tuple[int, int]] = {}
    for category, severity, n_open, n_resolved, text in cells:
        if n_open is None:
            assert text == "—", (category, severity, text)
            continue
        assert text == f"{n_open} open {n_resolved} resolved", text
        shown[(category, severity)] = (n_open, n_resolved)
    return shown


async def shown_ids(page: Any) -> list[int]:
    ids = await page.eval_on_selector_all("#findings-table tbody tr[data-id]",
                                          "rows => rows.map(r => Number(r.dataset.id))")
    return [int(i) for i in ids]


async def shown_rows(page: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = await page.eval_on_selector_all(
        "#findings-table tbody tr[data-id]",
        "rows => rows.map(r => ({...r.dataset, cells: Array.from(r.cells,"
        " c => c.textContent.trim())}))")
    return rows


async def test_reconciliation_page_in_a_browser(
        btc_worker: Worker, btc_settings: Settings, temporal_env: WorkflowEnvironment,
        btc_node: BtcNodeServer, db: Connection) -> None:
    await reconciled_twice(temporal_env.client, btc_settings, btc_node, db)
    everything = await expected_ids(db)
    assert len(everything) > PAGE_ROWS  # the page has a next page
    async with api_server(btc_settings) as api, browser_page(api.url) as (page, errors):
        await page.goto(f"/login?key={VIEWER_KEY}&next=/btc")
        await expect(page).to_have_url(re.compile(r"/btc$"))
        assert VIEWER_KEY not in page.url
        await expect(page.locator("#trend-chart[data-ready='true']")).to_have_count(
            1, timeout=TIMEOUT_MS)
        # The trend: both runs, newest first in the table beside the chart.
        trend = page.locator("#trend-table tbody tr")
        await expect(trend).to_have_count(2)
        newest = await trend.nth(0).locator("td").all_text_contents()
        oldest = await trend.nth(1).locator("td").all_text_contents()
        # new, seen (last seen by the run), resolved, open after: the second run found
        # one new, saw again what stays open and resolved what the re-ingest fixed.
        assert [int(x) for x in newest[4:8]] == [1, len(OPEN_AFTER_SECOND),
                                                 len(RESOLVED_BY_SECOND),
                                                 len(OPEN_AFTER_SECOND)], newest
        assert (int(oldest[4]), int(oldest[7])) == (len(FIRST_RUN), len(FIRST_RUN)), oldest
        # The chart has a point per run, each labelled with its start to the second and
        # the end of its id: the two runs here start within a second or two.
        labels = await page.evaluate(
            "Chart.getChart(document.getElementById('trend-chart')).data.labels")
        assert len(labels) == 2 and labels[0] != labels[1], labels
        for started, run_id in labels:
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", started), labels
            assert len(run_id) == 9 and run_id[0] == "\u2026", labels
        # No run going: the breaker and batch size say so.
        await expect(page.locator("#breaker-state")).to_have_attribute("data-state", "none")

        # The summary is SQL's count per category and severity; the totals add it up.
        summary = await expected_summary(db)
        assert await shown_summary(page) == summary
        assert {c for c, _ in summary} == {c for _, c, _ in FIRST_RUN}
        totals = await page.eval_on_selector_all(
            "#findings-summary tfoot td[data-open]",
            "els => els.map(e => [e.dataset.severity || 'all', Number(e.dataset.open),"
            " Number(e.dataset.resolved)])")
        by_severity: Counter[str] = Counter()
        for (_, severity), (n_open, n_resolved) in summary.items():
            by_severity[f"{severity} open"] += n_open
            by_severity[f"{severity} resolved"] += n_resolved
        for severity, n_open, n_resolved in totals:
            if severity == "all":
                assert (n_open, n_resolved) == (len(OPEN_AFTER_SECOND),
                                                len(RESOLVED_BY_SECOND))
            else:
                assert (n_open, n_resolved) == (by_severity[f"{severity} open"],
                                                by_severity[f"{severity} resolved"])

        # The first page: the 50 highest; the pager leads to the rest, in order.
        assert await shown_ids(page) == everything[:PAGE_ROWS]
        await screenshot(page, "reconciliation-page")
        seen = await shown_ids(page)
        for _ in range(10):
            following = page.locator("#findings-next")
            if await following.count() == 0:
                break
            await following.click()
            await expect(page).to_have_url(re.compile(r"cursor="))
            await expect(page.locator("#findings-first")).to_be_visible()
            seen += await shown_ids(page)
        assert seen == everything

        # The filter form: a category and a height range.
        await page.goto("/btc")
        await page.select_option("#filter-category", "count_mismatch")
        await page.fill("#filter-from", "395")
        await page.fill("#filter-to", "435")
        await page.click("#findings-filter button[type=submit]")
        await expect(page).to_have_url(re.compile(r"category=count_mismatch"))
        await expect(page.locator("#filter-category")).to_have_value("count_mismatch")
        await expect(page.locator("#filter-from")).to_have_value("395")
        where = "category = 'count_mismatch' AND height BETWEEN 395 AND 435"
        wanted = await expected_ids(db, where)
        assert len(wanted) == len(range(395, 420)) + 1  # all open (above the re-ingest)
        assert await shown_ids(page) == wanted
        assert {(r["category"], r["open"]) for r in await shown_rows(page)} == {
            ("count_mismatch", "true")}
        assert await shown_summary(page) == await expected_summary(db, where)
        await expect(page.locator("#findings-next")).to_have_count(0)

        await page.select_option("#filter-category", "missing_block")
        await page.fill("#filter-from", "250")
        await page.fill("#filter-to", "350")
        await page.select_option("#filter-open", "false")
        await page.click("#findings-filter button[type=submit]")
        await expect(page).to_have_url(re.compile(r"category=missing_block"))
        where = ("category = 'missing_block' AND resolved_at IS NOT NULL"
                 " AND height BETWEEN 250 AND 350")
        wanted = await expected_ids(db, where)
        assert len(wanted) == 1
        assert await shown_ids(page) == wanted
        row = (await shown_rows(page))[0]
        assert (row["height"], row["category"], row["severity"], row["open"]) == (
            "300", "missing_block", "error", "false")
        assert "resolved" in row["cells"][7]

        # A filter that keeps nothing says so.
        await page.goto("/btc?category=supply_mismatch")
        await expect(page.locator("#findings-table tbody tr.empty")).to_contain_text(
            "match the filter")
        assert await shown_ids(page) == []

        # A running reconciliation: the node holds its requests, so the run stands still
        # in its first batches while the page shows its breaker and batch size.
        btc_node.faults.set(hold_after=0)
        handle = await start(temporal_env.client, btc_settings, "BtcReconcileWorkflow", {})
        try:
            progress = await held_in_a_batch(handle, btc_node)
            await page.goto("/btc")
            await expect(page.locator("#trend-chart[data-ready='true']")).to_have_count(1)
            breaker = page.locator("#breaker-state")
            await expect(breaker).to_have_attribute("data-state", "closed")
            await expect(breaker).to_have_text("closed")
            batch_size = page.locator("#batch-size")
            await expect(batch_size).to_have_attribute("data-value",
                                                       str(progress["batch_size"]))
            await expect(batch_size).to_have_text(f"{progress['batch_size']:,} heights")
            await expect(page.locator("#latest-run .badge").first).to_have_text("running")
            await expect(page.locator("#cursor-height")).to_have_text(
                f"{progress['cursor_height']:,}")
            await expect(trend).to_have_count(3)
            await screenshot(page, "reconciliation-page-running")
        finally:
            btc_node.faults.set(hold_after=None)
        result = await handle.result()
        assert result["status"] == "completed", result
        await page.reload()
        await expect(page.locator("#breaker-state")).to_have_attribute("data-state", "none")
        await expect(page.locator("#latest-run .badge").first).to_have_text("completed")
        assert errors.messages == []
