"""`pipeworks btc report`: the reconciliation's findings by category and severity, open
and resolved, for every run or one (`--run`), with the trend over the latest runs and
the open findings themselves; as rich tables or one JSON document."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from pipeworks.db import connect

TREND_RUNS = 10
OPEN_SHOWN = 50

_SUMMARY = """
    SELECT category, severity,
           count(*) FILTER (WHERE resolved_at IS NULL)::int AS open,
           count(*) FILTER (WHERE resolved_at IS NOT NULL)::int AS resolved
    FROM btc.discrepancies
    WHERE $1::text IS NULL OR first_run_id = $1 OR last_run_id = $1 OR resolved_run_id = $1
    GROUP BY category, severity ORDER BY severity, category
"""
# The trend of findings per run, newest first; the dashboard (starters/btc/web/data.py)
# reads the same rows.
TREND = """
    SELECT r.run_id, r.status, r.started_at, r.finished_at,
           (r.stats->>'heights')::int AS heights,
           (SELECT count(*) FROM btc.discrepancies d WHERE d.first_run_id = r.run_id)::int
               AS new,
           (SELECT count(*) FROM btc.discrepancies d WHERE d.last_run_id = r.run_id)::int
               AS seen,
           (SELECT count(*) FROM btc.discrepancies d
            WHERE d.resolved_run_id = r.run_id)::int AS resolved
    FROM pipeline.runs r
    WHERE r.pipeline = 'btc_reconcile' AND r.workflow_id LIKE 'btc-reconcile-%'
      AND ($1::text IS NULL OR r.run_id = $1)
    ORDER BY r.started_at DESC LIMIT $2
"""
_OPEN = """
    SELECT height, "check", field, ours, theirs, category, severity, detail,
           first_run_id, last_run_id, first_seen_at, last_seen_at
    FROM btc.discrepancies
    WHERE resolved_at IS NULL
      AND ($1::text IS NULL OR first_run_id = $1 OR last_run_id = $1)
    ORDER BY severity, height, "check", field LIMIT $2
"""


async def findings_report(dsn: str, run_id: str | None) -> dict[str, Any]:
    conn = await connect(dsn)
    try:
        summary = [dict(r) for r in await conn.fetch(_SUMMARY, run_id)]
        trend = [dict(r) for r in await conn.fetch(TREND, run_id, TREND_RUNS)]
        shown = [dict(r) for r in await conn.fetch(_OPEN, run_id, OPEN_SHOWN)]
        open_total = await conn.fetchval(
            "SELECT count(*) FROM btc.discrepancies WHERE resolved_at IS NULL"
            " AND ($1::text IS NULL OR first_run_id = $1 OR last_run_id = $1)", run_id)
    finally:
        await conn.close()
    for row in shown:
        for key in ("ours", "theirs"):
            value = row[key]
            row[key] = int(value) if value is not None and value == int(value) else value
    return {"run_id": run_id, "summary": summary, "trend": trend, "open": shown,
            "open_total": open_total,
            "errors_open": sum(r["open"] for r in summary if r["severity"] == "error")}


def render(console: Console, document: dict[str, Any]) -> None:
    title = f"findings of run {document['run_id']}" if document["run_id"] else "findings"
    table = Table(title=title)
    for column in ("category", "severity", "open", "resolved"):
        table.add_column(column, justify="right" if column in ("open", "resolved") else "left")
    for row in document["summary"]:
        table.add_row(row["category"], row["severity"], str(row["open"]), str(row["resolved"]))
    if not document["summary"]:
        table.add_row("(none)", "", "0", "0")
    console.print(table)
    trend = Table(title="trend (latest runs first)")
    for column in ("run", "status", "started", "heights", "new", "seen", "resolved"):
        trend.add_column(column)
    for row in document["trend"]:
        started = row["started_at"].strftime("%Y-%m-%d %H:%M") if row["started_at"] else ""
        trend.add_row(row["run_id"][:12], row["status"] or "", started,
                      str(row["heights"] or ""), str(row["new"]), str(row["seen"]),
                      str(row["resolved"]))
    console.print(trend)
    if document["open"]:
        shown = Table(title=f"open findings ({len(document['open'])} of "
                            f"{document['open_total']})")
        for column in ("height", "check", "field", "ours", "theirs", "category", "severity"):
            shown.add_column(column)
        for row in document["open"]:
            shown.add_row(str(row["height"]), row["check"], row["field"],
                          "" if row["ours"] is None else str(row["ours"]),
                          "" if row["theirs"] is None else str(row["theirs"]),
                          row["category"], row["severity"])
        console.print(shown)
