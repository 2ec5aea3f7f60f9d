"""What the reconciliation's API and page read: findings (filtered, keyset-paginated),
their summary by category and severity, their trend per run, and the latest
reconciliation run with the live state of its `progress` document.

Every value returned is JSON-able as it is: whole numerics as ints (satoshi amounts stay
exact), other numerics as floats, datetimes as ISO 8601 text."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, TypeAlias, get_args

import asyncpg

from activities.btc import PIPELINE
from starters.btc.report import TREND, TREND_RUNS

# Spelled out (not taken from activities.btc.findings) so that type checkers and the
# OpenAPI document know the values; tests/btc/test_web_data.py keeps the two in step.
Category = Literal["missing_block", "duplicate_block", "stale_block", "partial_block",
                   "count_mismatch", "value_mismatch", "invariant_violation",
                   "supply_mismatch", "underclaim", "unverifiable"]
Severity = Literal["error", "warning", "info"]
CATEGORIES: tuple[str, ...] = get_args(Category)
SEVERITIES: tuple[str, ...] = get_args(Severity)
BREAKER_STATES = ("closed", "half_open", "open")
# The findings' sort key, newest height first: what a page's cursor carries.
FindingsKey: TypeAlias = tuple[int, int]  # (height, id)
_Counts: TypeAlias = dict[str, dict[str, int]]  # severity -> {"open": n, "resolved": n}

# Every filter is optional: a null parameter lets every row through, so one statement
# (prepared once per connection) serves every combination. `$3` is the `open` filter:
# true keeps the open findings, false the resolved ones.
_PAGE = """
    SELECT id, height, "check", field, ours, theirs, category, severity, detail,
           first_run_id, last_run_id, first_seen_at, last_seen_at, resolved_at
    FROM btc.discrepancies
    WHERE ($1::text IS NULL OR category = $1)
      AND ($2::text IS NULL OR severity = $2)
      AND ($3::bool IS NULL OR (resolved_at IS NULL) = $3)
      AND ($4::int IS NULL OR height >= $4)
      AND ($5::int IS NULL OR height <= $5)
      AND ($6::int IS NULL OR (height, id) < ($6, $7::bigint))
    ORDER BY height DESC, id DESC
    LIMIT $8
"""
_SUMMARY = """
    SELECT category, severity,
           count(*) FILTER (WHERE resolved_at IS NULL)::int AS open,
           count(*) FILTER (WHERE resolved_at IS NOT NULL)::int AS resolved
    FROM btc.discrepancies
    WHERE ($1::text IS NULL OR category = $1)
      AND ($2::text IS NULL OR severity = $2)
      AND ($3::int IS NULL OR height >= $3)
      AND ($4::int IS NULL OR height <= $4)
    GROUP BY category, severity
    ORDER BY array_position(ARRAY['error', 'warning', 'info'], severity), category
"""
# Findings open at each moment: found by then and not yet resolved. A null moment (a
# run still going) means now.
_OPEN_AT = """
    SELECT (SELECT count(*) FROM btc.discrepancies d
            WHERE d.first_seen_at <= coalesce(t.at, now())
              AND (d.resolved_at IS NULL OR d.resolved_at > coalesce(t.at, now())))::int
    FROM unnest($1::timestamptz[]) WITH ORDINALITY AS t(at, i)
    ORDER BY t.i
"""
_LATEST_RUN = """
    SELECT workflow_id, run_id, status, started_at, finished_at
    FROM pipeline.runs
    WHERE pipeline = $1 AND workflow_id LIKE 'btc-reconcile-%'
    ORDER BY started_at DESC NULLS LAST, run_id DESC
    LIMIT 1
"""


def jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)  # 'NaN' has no JSON number
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _row(record: asyncpg.Record) -> dict[str, Any]:
    row = {key: jsonable(value) for key, value in record.items()}
    if isinstance(row.get("detail"), str):
        # A pool without the kernel's jsonb codec hands jsonb over as text.
        row["detail"] = json.loads(row["detail"])
    return row


async def findings_page(
    pool: asyncpg.Pool, *, category: str | None = None, severity: str | None = None,
    open_only: bool | None = None, from_height: int | None = None,
    to_height: int | None = None, limit: int = 100, after: FindingsKey | None = None,
) -> tuple[list[dict[str, Any]], FindingsKey | None]:
    """One page of findings, highest height first (then newest id), after the sort key
    `after`; and the key to pass for the next page, None on the last one."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    after_height, after_id = after if after is not None else (None, None)
    # One row more than asked says whether there is a next page.
    records = await pool.fetch(_PAGE, category, severity, open_only, from_height, to_height,
                               after_height, after_id, limit + 1)
    items = [_row(r) for r in records[:limit]]
    more = len(records) > limit
    return items, (items[-1]["height"], items[-1]["id"]) if more else None


async def findings_summary(
    pool: asyncpg.Pool, *, category: str | None = None, severity: str | None = None,
    from_height: int | None = None, to_height: int | None = None,
) -> list[dict[str, Any]]:
    """`{category, severity, open, resolved}` per pair that has findings, errors first."""
    records = await pool.fetch(_SUMMARY, category, severity, from_height, to_height)
    return [dict(r) for r in records]


def summary_table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The summary as a category-by-severity grid for the page: `rows` of `{category,
    cells: {severity: {open, resolved}}, open, resolved}` (categories in the contract's
    order) and `totals` of the same shape (`category` None)."""
    cells: dict[str, _Counts] = {}
    totals: _Counts = {s: {"open": 0, "resolved": 0} for s in SEVERITIES}
    for row in rows:
        counts = {"open": int(row["open"]), "resolved": int(row["resolved"])}
        cells.setdefault(row["category"], {})[row["severity"]] = counts
        total = totals.setdefault(row["severity"], {"open": 0, "resolved": 0})
        total["open"] += counts["open"]
        total["resolved"] += counts["resolved"]

    def line(category: str | None, counts: _Counts) -> dict[str, Any]:
        return {"category": category, "cells": counts,
                "open": sum(c["open"] for c in counts.values()),
                "resolved": sum(c["resolved"] for c in counts.values())}

    # Categories this code does not know yet still show, after the known ones.
    order = [c for c in CATEGORIES if c in cells] + sorted(set(cells) - set(CATEGORIES))
    return {"severities": list(SEVERITIES), "rows": [line(c, cells[c]) for c in order],
            "totals": line(None, totals)}


async def findings_trend(pool: asyncpg.Pool, runs: int = TREND_RUNS) -> list[dict[str, Any]]:
    """The newest `runs` reconciliation runs, oldest first (a chart's time axis), each
    with `run_id, status, started_at, finished_at, heights, new, seen, resolved` (as
    `pipeworks btc report`) and `open`: the findings open when the run ended (now for a
    run still going)."""
    records = await pool.fetch(TREND, None, runs)
    rows = [dict(r) for r in reversed(records)]
    open_counts = await pool.fetch(_OPEN_AT, [r["finished_at"] for r in rows])
    for row, counted in zip(rows, open_counts, strict=True):
        row["open"] = counted[0]
    return [{key: jsonable(value) for key, value in row.items()} for row in rows]


async def latest_reconcile_run(pool: asyncpg.Pool) -> dict[str, Any] | None:
    """`{workflow_id, run_id, status, started_at, finished_at}` of the newest
    reconciliation run in `pipeline.runs` (the first run of its continue-as-new chain),
    or None before the first."""
    record = await pool.fetchrow(_LATEST_RUN, PIPELINE)
    return None if record is None else _row(record)


def live_state(progress: Mapping[str, Any]) -> dict[str, Any]:
    """What the page shows of a reconciliation's `progress` document (interfaces.md:
    `cursor_height`, `batch_size`, `breaker`, `findings` beside the contract's keys):
    `{status, percent, cursor_height, batch_size, breaker: {state, failure_rate,
    opened_at, next_probe_at, times_opened}, findings: {category: count}}`.

    A document from another version of the workflow may lack a section or carry
    something unexpected: that part reads as unknown (None, breaker state "unknown")
    rather than failing the page."""
    breaker = progress.get("breaker")
    breaker = breaker if isinstance(breaker, Mapping) else {}
    state = breaker.get("state")
    findings = progress.get("findings")
    return {
        "status": _text(progress.get("status")),
        "percent": _number(progress.get("percent")),
        "cursor_height": _whole(progress.get("cursor_height")),
        "batch_size": _whole(progress.get("batch_size")),
        "breaker": {
            "state": state if state in BREAKER_STATES else "unknown",
            "failure_rate": _number(breaker.get("failure_rate")),
            "opened_at": _text(breaker.get("opened_at")),
            "next_probe_at": _text(breaker.get("next_probe_at")),
            "times_opened": _whole(breaker.get("times_opened")),
        },
        "findings": ({str(k): n for k, n in findings.items() if _whole(n) is not None}
                     if isinstance(findings, Mapping) else {}),
    }


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _whole(value: Any) -> int | None:
    # bool is an int to Python, never a count here.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
