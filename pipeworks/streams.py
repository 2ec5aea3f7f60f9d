"""Fetch one paginated stream and land every page: the body of a fetch activity.

A retried attempt resumes after the last landed page (the database is the
record; heartbeats carry the cursor and the error tally across attempts).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import asyncpg

from pipeworks.activity_errors import as_pipeline_error
from pipeworks.errors import DataError, ErrorCategory, as_application_error
from pipeworks.heartbeat import Heartbeater, carried_errors
from pipeworks.http import ErrorTally, UpstreamClient
from pipeworks.landing import begin_load, finish_load, land_page
from pipeworks.metrics import PipelineMetrics


@dataclass
class StreamRequest:
    run_id: str
    load_id: str
    entity: str
    path: str
    scope: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    page_size: int = 100


@dataclass
class LandedStream:
    load_id: str
    entity: str
    pages: int
    items: int
    errors: dict[str, int]


@dataclass
class FetchCheckpoint:
    """Heartbeat details: where the stream stands and what went wrong so far."""

    next_page_no: int = 0
    cursor: str | None = None
    errors: dict[str, int] = field(default_factory=dict)
    failed_attempts: int = 0


async def land_stream(
    pool: asyncpg.Pool, client: UpstreamClient, request: StreamRequest,
    metrics: PipelineMetrics | None = None,
) -> LandedStream:
    """The body of a fetch activity: one stream, its own heartbeat and error tally."""
    errors, failed_attempts = carried_errors()
    checkpoint = FetchCheckpoint(errors=errors, failed_attempts=failed_attempts)
    tally = ErrorTally(dict(errors))
    async with Heartbeater(checkpoint) as heartbeater:
        with failures_recorded(tally, checkpoint, heartbeater):
            return await land_pages(pool, client, request, checkpoint, tally, heartbeater,
                                    metrics or PipelineMetrics.disabled())


@contextmanager
def failures_recorded(tally: ErrorTally, checkpoint: FetchCheckpoint,
                      heartbeater: Heartbeater) -> Iterator[None]:
    """An activity attempt that fails heartbeats its error tally first (the next attempt
    and the workflow read it back), and fails with its category."""
    try:
        yield
    except Exception as raised:
        err = as_pipeline_error(raised)
        if err is None:
            raise
        # The HTTP client tallied what it retried (transient) or gave up on (data).
        if err.category in (ErrorCategory.PERMANENT, ErrorCategory.SYSTEM):
            tally.add(err.category)
        checkpoint.errors = tally.counts
        checkpoint.failed_attempts += 1
        heartbeater.record(checkpoint)
        raise as_application_error(err, tally.counts) from None


async def land_pages(
    pool: asyncpg.Pool, client: UpstreamClient, request: StreamRequest,
    checkpoint: FetchCheckpoint, tally: ErrorTally, heartbeater: Heartbeater,
    metrics: PipelineMetrics,
) -> LandedStream:
    """Fetches the stream's pages after the last one landed, landing each one."""
    async with pool.acquire() as conn:
        state = await begin_load(
            conn, load_id=request.load_id, run_id=request.run_id, entity=request.entity,
            scope=request.scope, source_path=request.path)
    if state.status != "fetching":
        return LandedStream(request.load_id, request.entity, state.pages, state.items,
                            tally.counts)
    page_no, cursor, seen = state.next_page_no, state.next_cursor, set(state.seen_cursors)
    if page_no > 0 and cursor is None:
        # The earlier attempt landed the last page but died before finishing.
        items = await _finish(pool, request.load_id, page_no)
        return LandedStream(request.load_id, request.entity, page_no, items, tally.counts)
    while True:
        params: dict[str, str | int] = {**request.params, "limit": request.page_size}
        if cursor is not None:
            params["cursor"] = cursor
        page = await client.get_page(request.path, params, tally)
        async with pool.acquire() as conn:
            await land_page(conn, load_id=request.load_id, page_no=page_no, body=page.body,
                            item_count=len(page.items), next_cursor=page.next_cursor)
        metrics.records_fetched(request.entity, len(page.items))
        page_no += 1
        checkpoint.next_page_no, checkpoint.cursor = page_no, page.next_cursor
        checkpoint.errors = tally.counts
        heartbeater.record(checkpoint)
        if page.next_cursor is None:
            break
        if page.next_cursor in seen:
            tally.add(ErrorCategory.DATA)
            raise DataError(
                f"GET {request.path}: next_cursor repeats after page {page_no}: the upstream "
                "pagination loops")
        seen.add(page.next_cursor)
        cursor = page.next_cursor
    items = await _finish(pool, request.load_id, page_no)
    return LandedStream(request.load_id, request.entity, page_no, items, tally.counts)


async def _finish(pool: asyncpg.Pool, load_id: str, pages: int) -> int:
    async with pool.acquire() as conn:
        return await finish_load(conn, load_id=load_id, pages=pages)
