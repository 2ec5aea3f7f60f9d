"""A stream's fetch resumes after the last landed page: an attempt that dies mid-stream
leaves its pages in Postgres, and the next attempt asks the upstream only for the rest."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import pytest_asyncio

from devstack.postgres import EmbeddedPostgres
from pipeworks.db import create_pool, migrate
from pipeworks.errors import SystemFailure, TransientError
from pipeworks.http import ErrorTally
from pipeworks.landing import land_page
from pipeworks.metrics import PipelineMetrics
from pipeworks.pagination import CursorEnvelope
from pipeworks.streams import land_pages
from tests.kernel.http_fakes import Recorder, json_reply, make_client

PAGES = {None: ("c1", [1, 2]), "c1": ("c2", [3, 4]), "c2": ("c3", [5, 6]), "c3": (None, [7])}


@pytest_asyncio.fixture(loop_scope="session")
async def pool(postgres: EmbeddedPostgres) -> AsyncIterator[asyncpg.Pool]:
    created = await create_pool(postgres.dsn, max_size=2)
    async with created.acquire() as conn:
        await migrate(conn)
    yield created
    await created.close()


def upstream(fail_at: str | None) -> Recorder:
    def answer(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        if cursor is not None and cursor == fail_at:
            return httpx.Response(503, text="<html>down</html>")
        next_cursor, items = PAGES[cursor]
        return json_reply({"items": [{"id": i} for i in items], "next_cursor": next_cursor})
    return Recorder(handler=answer)


async def land(pool: asyncpg.Pool, recorder: Recorder, load_id: str) -> int:
    client = make_client(recorder, max_attempts=1)
    try:
        landed = await land_pages(
            pool, client, lambda seen: CursorEnvelope(2, seen_cursors=seen), run_id="run",
            load_id=load_id, entity="things", scope="s", path="/things", params={},
            tally=ErrorTally(), metrics=PipelineMetrics.disabled())
    finally:
        await client.aclose()
    return landed.items


async def test_a_retried_fetch_asks_only_for_the_pages_not_landed(pool: asyncpg.Pool) -> None:
    load_id = f"run/things/{uuid.uuid4().hex}"
    first = upstream(fail_at="c2")
    with pytest.raises(TransientError):
        await land(pool, first, load_id)
    assert [q.query for q in first.seen] == ["limit=2", "limit=2&cursor=c1",
                                              "limit=2&cursor=c2"]
    landed = await pool.fetchval(
        "SELECT count(*) FROM pipeline.landed_pages WHERE load_id = $1", load_id)
    assert landed == 2

    second = upstream(fail_at=None)
    assert await land(pool, second, load_id) == 7
    assert [q.query for q in second.seen] == ["limit=2&cursor=c2", "limit=2&cursor=c3"]
    pages = await pool.fetch(
        "SELECT page_no, item_count FROM pipeline.landed_pages WHERE load_id = $1"
        " ORDER BY page_no", load_id)
    assert [tuple(p) for p in pages] == [(0, 2), (1, 2), (2, 2), (3, 1)]
    # A third attempt (the worker died after landing it all) fetches nothing.
    third = upstream(fail_at=None)
    assert await land(pool, third, load_id) == 7 and third.seen == []


async def test_pages_postgres_lost_leave_no_gap(pool: asyncpg.Pool) -> None:
    """Pages land without waiting for the WAL flush, so a crash of Postgres can lose the
    last ones. A page landing after that (a fetch still running on a new connection)
    is refused rather than leave a gap that a full sync would read as deleted rows, and
    the retried fetch lands the lost pages again."""
    load_id = f"run/things/{uuid.uuid4().hex}"
    first = upstream(fail_at="c3")
    with pytest.raises(TransientError):
        await land(pool, first, load_id)  # pages 0, 1 and 2 landed
    # The crash lost the unflushed pages 1 and 2.
    await pool.execute("DELETE FROM pipeline.landed_pages WHERE load_id = $1 AND page_no >= 1",
                       load_id)
    async with pool.acquire() as conn:
        with pytest.raises(SystemFailure, match="page 2 is gone"):
            await land_page(conn, load_id=load_id, page_no=3, body=b'{"items": [7]}',
                            item_count=1, next_cursor=None)
    again = upstream(fail_at=None)
    assert await land(pool, again, load_id) == 7
    assert [q.query for q in again.seen] == ["limit=2&cursor=c1", "limit=2&cursor=c2",
                                             "limit=2&cursor=c3"]
    pages = await pool.fetch("SELECT page_no FROM pipeline.landed_pages WHERE load_id = $1"
                             " ORDER BY page_no", load_id)
    assert [p["page_no"] for p in pages] == [0, 1, 2, 3]
