"""What the reconciliation's API and page read (starters/btc/web/data.py), against real
Postgres: findings recorded and resolved by the pipeline's own helpers over two runs,
filtered, ordered and paged without a row lost or repeated; the summary; the trend per
run; the latest run; and the live state of a progress document as the workflow writes
it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from activities.btc import findings as btc_findings
from activities.btc.findings import Finding, record_findings, resolve_unseen
from devstack.postgres import EmbeddedPostgres
from pipeworks.breaker import BreakerPolicy, CircuitBreaker
from pipeworks.db import Connection, create_pool
from pipeworks.progress import RunProgress
from starters.btc.web import data

RUN_A, RUN_B, RUN_C = "run-a", "run-b", "run-c"
WORKFLOW = "btc-reconcile-main"


@pytest_asyncio.fixture(loop_scope="session")
async def pool(db: Connection, postgres: EmbeddedPostgres) -> AsyncIterator[asyncpg.Pool]:
    """The kernel's pool (with its jsonb codec), over the tables `db` has emptied."""
    created = await create_pool(postgres.dsn, max_size=2)
    yield created
    await created.close()


async def start_run(db: Connection, run_id: str, *, workflow_id: str = WORKFLOW,
                    pipeline: str = "btc_reconcile") -> None:
    await db.execute(
        "INSERT INTO pipeline.runs (workflow_id, run_id, pipeline, params, status, started_at)"
        " VALUES ($1, $2, $3, '{}', 'running', clock_timestamp())",
        workflow_id, run_id, pipeline)


async def finish_run(db: Connection, run_id: str, heights: int) -> None:
    await db.execute(
        "UPDATE pipeline.runs SET status = 'completed', finished_at = clock_timestamp(),"
        " stats = $2 WHERE run_id = $1", run_id, {"heights": heights})


def first_findings() -> list[Finding]:
    """Two findings at each of heights 0..29 (so that the id orders findings of one
    height) and an underclaim (info) every 10 heights: 63."""
    found = []
    for height in range(30):
        found.append(Finding(height, "stats", "tx_count", "count_mismatch", 2, 3))
        found.append(Finding(height, "stats", "total_out_sat", "value_mismatch",
                             5_000_000_000, 5_000_000_001, {"node": "getblockstats"}))
        if height % 10 == 0:
            found.append(Finding(height, "coinbase", "unclaimed_sat", "underclaim", 1, 0))
    return found


async def two_runs(db: Connection) -> None:
    """Run A finds 63 findings in heights 0..29. Run B covers 0..34: it no longer sees
    the value mismatches of heights 0, 3, ..., 27 (10 resolved) and finds count
    mismatches at 30..34 (5 new). Run C has started and found nothing yet. Runs of
    another workflow and another pipeline must not count."""
    await start_run(db, "ingest-1", workflow_id="btc-ingest-main")
    await start_run(db, "sports-1", workflow_id="sports-sync-x-1", pipeline="sports_sync")
    await start_run(db, RUN_A)
    await record_findings(db, first_findings(), RUN_A)
    await resolve_unseen(db, 0, 29, first_findings(), [], RUN_A)
    await finish_run(db, RUN_A, 30)
    await start_run(db, RUN_B)
    seen = [f for f in first_findings()
            if not (f.category == "value_mismatch" and f.height % 3 == 0)]
    seen += [Finding(h, "stats", "tx_count", "count_mismatch", 7, 8) for h in range(30, 35)]
    await record_findings(db, seen, RUN_B)
    await resolve_unseen(db, 0, 34, seen, [], RUN_B)
    await finish_run(db, RUN_B, 35)
    await start_run(db, RUN_C)


async def all_rows(pool: asyncpg.Pool, limit: int, **filters: Any) -> list[dict[str, Any]]:
    """Every page in turn, following the next key."""
    rows: list[dict[str, Any]] = []
    after = None
    for _ in range(1000):
        page, after = await data.findings_page(pool, limit=limit, after=after, **filters)
        assert len(page) <= limit
        rows += page
        if after is None:
            return rows
        assert page, "a next key after an empty page"
        assert after == (page[-1]["height"], page[-1]["id"])
    raise AssertionError("pagination does not end")


async def expected_ids(db: Connection, where: str = "true") -> list[int]:
    # `where` is a constant of this file's tests, never a value from outside.
    query = "SELECT id FROM btc.discrepancies WHERE " + where + " ORDER BY height DESC, id DESC"
    return [r["id"] for r in await db.fetch(query)]


def test_the_literal_types_are_the_pipeline_s_values() -> None:
    assert data.CATEGORIES == btc_findings.CATEGORIES
    assert data.SEVERITIES == (btc_findings.ERROR, btc_findings.WARNING, btc_findings.INFO)


async def test_pages_cover_every_finding_once_in_height_then_id_order(
        db: Connection, pool: asyncpg.Pool) -> None:
    await two_runs(db)
    everything = await expected_ids(db)
    assert len(everything) == 63 + 5
    for limit in (1, 7, 68, 100):
        rows = await all_rows(pool, limit)
        assert [r["id"] for r in rows] == everything, limit
    # A page that ends exactly at the last row says there is no next one.
    page, after = await data.findings_page(pool, limit=68)
    assert len(page) == 68 and after is None
    with pytest.raises(ValueError, match="limit"):
        await data.findings_page(pool, limit=0)


async def test_pages_have_json_values_and_every_column(db: Connection, pool: asyncpg.Pool
                                                       ) -> None:
    await two_runs(db)
    # A fractional amount and a warning, as no check of today writes them.
    await db.execute(
        """INSERT INTO btc.discrepancies (height, "check", field, ours, theirs, category,
               severity, first_run_id, last_run_id, first_seen_at, last_seen_at)
           VALUES (40, 'supply', 'utxo_btc', 0.5, NULL, 'supply_mismatch', 'warning',
                   'x', 'x', now(), now())""")
    page, _ = await data.findings_page(pool, limit=3)
    assert json.loads(json.dumps(page)) == page
    top = page[0]
    assert set(top) == {"id", "height", "check", "field", "ours", "theirs", "category",
                        "severity", "detail", "first_run_id", "last_run_id",
                        "first_seen_at", "last_seen_at", "resolved_at"}
    assert (top["height"], top["ours"], top["theirs"], top["severity"]) == (
        40, 0.5, None, "warning")
    mismatch = next(r for r in await all_rows(pool, 100, category="value_mismatch",
                                              open_only=True))
    # Satoshi amounts stay exact integers; the detail is an object, times ISO 8601.
    assert (mismatch["ours"], mismatch["theirs"]) == (5_000_000_000, 5_000_000_001)
    assert type(mismatch["ours"]) is int
    assert mismatch["detail"] == {"node": "getblockstats"}
    assert datetime.fromisoformat(mismatch["first_seen_at"]).tzinfo is not None
    assert mismatch["resolved_at"] is None
    resolved = (await data.findings_page(pool, open_only=False, limit=1))[0][0]
    assert datetime.fromisoformat(resolved["resolved_at"]) >= datetime.fromisoformat(
        resolved["first_seen_at"])


@pytest.mark.parametrize(("filters", "where"), [
    ({"category": "value_mismatch"}, "category = 'value_mismatch'"),
    ({"severity": "info"}, "severity = 'info'"),
    ({"severity": "warning"}, "severity = 'warning'"),
    ({"open_only": True}, "resolved_at IS NULL"),
    ({"open_only": False}, "resolved_at IS NOT NULL"),
    ({"from_height": 10, "to_height": 20}, "height BETWEEN 10 AND 20"),
    ({"from_height": 30}, "height >= 30"),
    ({"to_height": 0}, "height <= 0"),
    ({"from_height": 21, "to_height": 20}, "false"),
    ({"category": "value_mismatch", "open_only": False, "from_height": 3, "to_height": 12},
     "category = 'value_mismatch' AND resolved_at IS NOT NULL AND height BETWEEN 3 AND 12"),
])
async def test_filters_keep_exactly_the_matching_findings_on_every_page(
        db: Connection, pool: asyncpg.Pool, filters: dict[str, Any], where: str) -> None:
    await two_runs(db)
    rows = await all_rows(pool, 4, **filters)
    assert [r["id"] for r in rows] == await expected_ids(db, where)
    # The combined filter, by hand: heights 3, 6, 9, 12 lost their value mismatch.
    if "category" in filters and "open_only" in filters:
        assert [r["height"] for r in rows] == [12, 9, 6, 3]


async def test_summary_counts_open_and_resolved_under_the_filters(
        db: Connection, pool: asyncpg.Pool) -> None:
    await two_runs(db)
    summary = await data.findings_summary(pool)
    assert summary == [
        {"category": "count_mismatch", "severity": "error", "open": 35, "resolved": 0},
        {"category": "value_mismatch", "severity": "error", "open": 20, "resolved": 10},
        {"category": "underclaim", "severity": "info", "open": 3, "resolved": 0},
    ]
    assert await data.findings_summary(pool, from_height=0, to_height=9) == [
        {"category": "count_mismatch", "severity": "error", "open": 10, "resolved": 0},
        {"category": "value_mismatch", "severity": "error", "open": 6, "resolved": 4},
        {"category": "underclaim", "severity": "info", "open": 1, "resolved": 0},
    ]
    assert await data.findings_summary(pool, severity="info", category="underclaim",
                                       from_height=10) == [
        {"category": "underclaim", "severity": "info", "open": 2, "resolved": 0}]
    assert await data.findings_summary(pool, category="stale_block") == []
    table = data.summary_table(summary)
    assert table["severities"] == ["error", "warning", "info"]
    assert [r["category"] for r in table["rows"]] == [
        "count_mismatch", "value_mismatch", "underclaim"]  # the contract's order
    assert table["rows"][1]["cells"] == {"error": {"open": 20, "resolved": 10}}
    assert table["totals"]["cells"] == {"error": {"open": 55, "resolved": 10},
                                        "warning": {"open": 0, "resolved": 0},
                                        "info": {"open": 3, "resolved": 0}}
    assert (table["totals"]["open"], table["totals"]["resolved"]) == (58, 10)


async def test_trend_per_run_oldest_first_with_the_findings_open_after_each(
        db: Connection, pool: asyncpg.Pool) -> None:
    await two_runs(db)
    trend = await data.findings_trend(pool)
    assert json.loads(json.dumps(trend)) == trend
    assert [(t["run_id"], t["status"], t["heights"], t["new"], t["seen"], t["resolved"],
             t["open"]) for t in trend] == [
        (RUN_A, "completed", 30, 63, 10, 0, 63),
        (RUN_B, "completed", 35, 5, 58, 10, 58),
        (RUN_C, "running", None, 0, 0, 0, 58),  # still going: open now
    ]
    assert trend[2]["finished_at"] is None
    assert [t["run_id"] for t in await data.findings_trend(pool, runs=2)] == [RUN_B, RUN_C]


async def test_the_latest_reconciliation_run(db: Connection, pool: asyncpg.Pool) -> None:
    assert await data.latest_reconcile_run(pool) is None
    await start_run(db, "ingest-0", workflow_id="btc-ingest-main")
    assert await data.latest_reconcile_run(pool) is None
    await two_runs(db)
    latest = await data.latest_reconcile_run(pool)
    assert latest is not None
    assert {k: latest[k] for k in ("workflow_id", "run_id", "status", "finished_at")} == {
        "workflow_id": WORKFLOW, "run_id": RUN_C, "status": "running", "finished_at": None}
    assert isinstance(datetime.fromisoformat(latest["started_at"]), datetime)
    # A newer run of another workflow or pipeline is not the reconciliation's.
    await start_run(db, "ingest-2", workflow_id="btc-ingest-main")
    await start_run(db, "sports-2", workflow_id="sports-sync-x-2", pipeline="sports_sync")
    latest = await data.latest_reconcile_run(pool)
    assert latest is not None and latest["run_id"] == RUN_C


def reconciling_progress(breaker: CircuitBreaker) -> dict[str, Any]:
    """A running reconciliation's progress document, its extra sections published as
    BtcReconcileWorkflow publishes them, after a round trip through JSON (the query's
    answer)."""
    now = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
    progress = RunProgress.new(WORKFLOW, "btc_reconcile", ["plan", "reconcile", "supply"],
                               now)
    progress.status = "running"
    progress.stage("plan").status, progress.stage("plan").total = "done", 1
    progress.stage("plan").done = 1
    stage = progress.stage("reconcile")
    stage.status, stage.total, stage.done = "running", 10_000, 2_000

    def rfc3339(moment: datetime | None) -> str | None:
        return None if moment is None else moment.isoformat().replace("+00:00", "Z")

    progress.publish("tip", 10_006)
    progress.publish("cursor_height", 1_999)
    progress.publish("batch_size", 250)
    progress.publish("breaker", {
        "state": breaker.state.value, "failure_rate": round(breaker.failure_rate, 4),
        "opened_at": rfc3339(breaker.since) if breaker.state.value != "closed" else None,
        "next_probe_at": rfc3339(breaker.open_until) if breaker.state.value == "open"
        else None,
        "times_opened": breaker.times_opened})
    progress.publish("findings", {"value_mismatch": 3, "underclaim": 12})
    document: dict[str, Any] = json.loads(json.dumps(progress.as_dict()))
    return document


def test_live_state_of_an_open_breaker() -> None:
    breaker = CircuitBreaker(BreakerPolicy(window=20, min_calls=5, failure_rate=0.5,
                                           first_open_seconds=30, max_open_seconds=900))
    opened = datetime(2025, 3, 1, 2, 10, tzinfo=UTC)
    for call in range(5):  # the fifth failure reaches min_calls and opens it
        assert breaker.record_failure(opened, breaker.allow(opened)) is (call == 4)
    live = data.live_state(reconciling_progress(breaker))
    assert live == {
        "status": "running", "percent": live["percent"], "cursor_height": 1_999,
        "batch_size": 250,
        "breaker": {"state": "open", "failure_rate": 1.0,
                    "opened_at": "2025-03-01T02:10:00Z",
                    "next_probe_at": (opened + timedelta(seconds=30)).isoformat().replace(
                        "+00:00", "Z"),
                    "times_opened": 1},
        "findings": {"value_mismatch": 3, "underclaim": 12},
    }
    assert live["percent"] is not None and 0 < live["percent"] < 100


def test_live_state_of_a_closed_breaker_and_of_odd_documents() -> None:
    live = data.live_state(reconciling_progress(CircuitBreaker()))
    assert live["breaker"] == {"state": "closed", "failure_rate": 0.0, "opened_at": None,
                               "next_probe_at": None, "times_opened": 0}
    assert live["batch_size"] == 250
    # A document without the sections (another pipeline, an older workflow) or with
    # odd values reads as unknown instead of failing the page.
    assert data.live_state({"status": "running"}) == {
        "status": "running", "percent": None, "cursor_height": None, "batch_size": None,
        "breaker": {"state": "unknown", "failure_rate": None, "opened_at": None,
                    "next_probe_at": None, "times_opened": None},
        "findings": {}}
    odd = data.live_state({"breaker": {"state": "melted", "opened_at": 5},
                           "batch_size": True, "findings": ["x"], "percent": "50"})
    assert odd["breaker"]["state"] == "unknown" and odd["breaker"]["opened_at"] is None
    assert (odd["batch_size"], odd["findings"], odd["percent"]) == (None, {}, None)
