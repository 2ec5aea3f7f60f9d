"""The reconciliation's routes: `GET /btc/findings` on the API (mounted under /api/v1)
and the page `/btc` on the dashboard. Both read through data.py; the page adds the
live breaker state and batch size of a running reconciliation, from its `progress`."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel
from temporalio.client import Client
from temporalio.service import RPCError

from pipeworks.logging import get_logger
from starters.btc.web import data
from starters.btc.web.data import CATEGORIES, SEVERITIES, Category, Severity
from starters.client import StarterError, query_progress
from starters.web.deps import (
    PageViewer,
    Pool,
    Temporal,
    Viewer,
    decode_cursor,
    encode_cursor,
    problem,
    render,
)

log = get_logger("pipeworks.web.btc")

MAX_LIMIT = 500
# btc.discrepancies.height is an int, its id a bigint.
MAX_HEIGHT = 2**31 - 1
MAX_ID = 2**63 - 1
PAGE_ROWS = 50
# The page waits this long for a running reconciliation's progress: a worker that is
# down leaves a query hanging, and the page shows "unknown" rather than wait with it.
PROGRESS_TIMEOUT_SECONDS = 2.0

api_router = APIRouter()
pages_router = APIRouter()


class Finding(BaseModel):
    id: int
    height: int
    check: str
    field: str
    ours: int | float | str | None
    theirs: int | float | str | None
    category: str
    severity: str
    detail: dict[str, Any]
    first_run_id: str
    last_run_id: str
    first_seen_at: str
    last_seen_at: str
    resolved_at: str | None


class FindingsPage(BaseModel):
    items: list[Finding]
    next_cursor: str | None


def _check_heights(lo: int | None, hi: int | None, names: tuple[str, str]) -> None:
    for name, value in zip(names, (lo, hi), strict=True):
        if value is not None and not 0 <= value <= MAX_HEIGHT:
            problem(400, "Invalid height",
                    f"{name}: a height is 0 to {MAX_HEIGHT}, not {value}")
    if lo is not None and hi is not None and lo > hi:
        problem(400, "Invalid height range",
                f"{names[0]} ({lo}) is above {names[1]} ({hi})")


def _after(cursor: str | None) -> data.FindingsKey | None:
    if not cursor:
        return None
    height, finding_id = decode_cursor(cursor, (int, int))
    # Only keys of real rows: Postgres would refuse others (a 500) rather than find none.
    if not (0 <= height <= MAX_HEIGHT and 0 < finding_id <= MAX_ID):
        problem(400, "Invalid cursor", "cursor: not one this API returned; start again "
                                       "without it")
    return int(height), int(finding_id)


@api_router.get(
    "/btc/findings", response_model=FindingsPage, tags=["btc_reconcile"],
    summary="Reconciliation findings, highest height first",
    description="Findings of the Bitcoin reconciliation (`btc.discrepancies`), ordered by "
                "height then id, both descending; every filter is optional and the "
                "height range inclusive. Pass `next_cursor` as `cursor` for the next page.")
async def list_findings(
    viewer: Viewer, pool: Pool,
    category: Annotated[Category | None, Query(description="Only this category")] = None,
    severity: Annotated[Severity | None, Query(description="Only this severity")] = None,
    open_: Annotated[bool | None, Query(
        alias="open", description="true: open findings only; false: resolved only")] = None,
    # The bounds are documented, not enforced by FastAPI: a height out of them is a 400
    # problem here, like a reversed range.
    from_height: Annotated[int | None, Query(
        description="Lowest height, inclusive",
        json_schema_extra={"minimum": 0, "maximum": MAX_HEIGHT})] = None,
    to_height: Annotated[int | None, Query(
        description="Highest height, inclusive",
        json_schema_extra={"minimum": 0, "maximum": MAX_HEIGHT})] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Findings per page")] = 100,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the page before")
                      ] = None,
) -> dict[str, Any]:
    _check_heights(from_height, to_height, ("from_height", "to_height"))
    items, next_key = await data.findings_page(
        pool, category=category, severity=severity, open_only=open_,
        from_height=from_height, to_height=to_height, limit=limit, after=_after(cursor))
    return {"items": items,
            "next_cursor": encode_cursor(list(next_key)) if next_key is not None else None}


# -- the page ---------------------------------------------------------------------------

def _choice(name: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    """A form's select: empty means any."""
    if not value:
        return None
    if value not in allowed:
        problem(400, "Invalid filter", f"{name}: one of {', '.join(allowed)}, not {value!r}")
    return value


def _height(name: str, value: str | None) -> int | None:
    value = (value or "").strip()
    if not value:
        return None
    # ASCII digits only: int() would take "-1", "1_000" and other scripts' digits.
    if not (value.isascii() and value.isdigit()):
        problem(400, "Invalid filter", f"{name}: a height (a whole number, 0 or more), "
                                       f"not {value!r}")
    return int(value)


def _open_filter(value: str | None) -> bool | None:
    choice = _choice("open", value, ("true", "false"))
    return None if choice is None else choice == "true"


async def _live(temporal: Client, run: dict[str, Any] | None) -> dict[str, Any] | None:
    """The running reconciliation's live state; None when it cannot be had (the page
    shows "unknown")."""
    if run is None or run["status"] != "running":
        return None
    try:
        progress = await asyncio.wait_for(query_progress(temporal, run["workflow_id"]),
                                          PROGRESS_TIMEOUT_SECONDS)
    except (StarterError, RPCError, TimeoutError) as err:
        log.info("no progress for the reconciliation page", workflow_id=run["workflow_id"],
                 error=str(err) or type(err).__name__)
        return None
    return data.live_state(progress)


@pages_router.get("/btc", response_class=HTMLResponse, include_in_schema=False)
async def findings_view(
    request: Request, viewer: PageViewer, pool: Pool, temporal: Temporal,
    category: str | None = None, severity: str | None = None,
    open_: Annotated[str | None, Query(alias="open")] = None,
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None, cursor: str | None = None,
) -> HTMLResponse:
    chosen_category = _choice("category", category, CATEGORIES)
    chosen_severity = _choice("severity", severity, SEVERITIES)
    open_only = _open_filter(open_)
    lo, hi = _height("from", from_), _height("to", to)
    _check_heights(lo, hi, ("from", "to"))
    after = _after(cursor)
    summary = await data.findings_summary(pool, category=chosen_category,
                                          severity=chosen_severity, from_height=lo,
                                          to_height=hi)
    items, next_key = await data.findings_page(
        pool, category=chosen_category, severity=chosen_severity, open_only=open_only,
        from_height=lo, to_height=hi, limit=PAGE_ROWS, after=after)
    trend = await data.findings_trend(pool)
    run = await data.latest_reconcile_run(pool)
    live = await _live(temporal, run)
    # The filters as they stand, without empty ones: the base of every link on the page.
    query = {key: value for key, value in (
        ("category", chosen_category), ("severity", chosen_severity), ("open", open_),
        ("from", lo), ("to", hi)) if value not in (None, "")}
    next_url = (f"?{urlencode({**query, 'cursor': encode_cursor(list(next_key))})}"
                if next_key is not None else None)
    return render(request, "btc/findings.html", {
        "filters": {"category": chosen_category or "", "severity": chosen_severity or "",
                    "open": open_ or "", "from": "" if lo is None else lo,
                    "to": "" if hi is None else hi},
        "query": query, "categories": CATEGORIES, "severities": SEVERITIES,
        "summary": data.summary_table(summary), "findings": items,
        "next_url": next_url, "first_url": f"?{urlencode(query)}" if after else None,
        "trend": trend, "run": run, "live": live,
    })
