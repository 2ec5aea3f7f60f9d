"""Landing: raw upstream pages stored in Postgres, keyed by (load id, page number).

A fetch writes each page as it arrives, so a retried attempt resumes after the
last landed page and the workflow only ever sees the load id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from pipeworks.db import Connection
from pipeworks.errors import SystemFailure


@dataclass(frozen=True)
class LoadState:
    status: str
    next_page_no: int
    next_cursor: str | None
    seen_cursors: frozenset[str]
    pages: int
    items: int


async def begin_load(
    conn: Connection, *, load_id: str, run_id: str, entity: str, scope: str | None,
    source_path: str,
) -> LoadState:
    """Register the load (idempotent) and tell where an earlier attempt stopped."""
    row = await conn.fetchrow(
        """
        INSERT INTO pipeline.loads (load_id, run_id, entity, scope, source_path, status)
        VALUES ($1, $2, $3, $4, $5, 'fetching')
        ON CONFLICT (load_id) DO UPDATE SET source_path = EXCLUDED.source_path
        RETURNING status, pages, items, (xmax = 0) AS created
        """,
        load_id, run_id, entity, scope, source_path,
    )
    assert row is not None
    if row["status"] != "fetching":
        return LoadState(row["status"], row["pages"], None, frozenset(), row["pages"], row["items"])
    if row["created"]:  # a new load has no pages yet
        return LoadState("fetching", 0, None, frozenset(), 0, 0)
    landed = await conn.fetch(
        "SELECT page_no, next_cursor, item_count FROM pipeline.landed_pages"
        " WHERE load_id = $1 ORDER BY page_no",
        load_id,
    )
    if not landed:
        return LoadState("fetching", 0, None, frozenset(), 0, 0)
    last = landed[-1]
    cursors = frozenset(r["next_cursor"] for r in landed if r["next_cursor"])
    return LoadState("fetching", last["page_no"] + 1, last["next_cursor"], cursors,
                     len(landed), sum(r["item_count"] for r in landed))


async def land_page(
    conn: Connection, *, load_id: str, page_no: int, body: bytes, item_count: int,
    next_cursor: str | None,
) -> None:
    # Committed without waiting for the WAL flush (synchronous_commit off, for this
    # statement's own transaction only: call it outside an explicit transaction). A page
    # is written only after the one before it was committed, and only if that one is
    # still there: a crash of Postgres can lose the last pages of a load, and a page
    # landing after the crash (on a new connection) must not leave a gap behind it.
    # Then this raises, and a retried fetch resumes after the last page it finds. A load
    # counts as landed only after `finish_load`, or the stage that marks it landed and
    # staged in one transaction (`mark_staged(landed=...)`): their ordinary commit
    # flushes the WAL of every page.
    status = await conn.execute(
        """
        INSERT INTO pipeline.landed_pages (load_id, page_no, body, item_count, next_cursor)
        SELECT $1, $2, $3, $4, $5
        FROM (SELECT set_config('synchronous_commit', 'off', true)) AS unflushed
        WHERE $2 = 0 OR EXISTS (SELECT 1 FROM pipeline.landed_pages
                                WHERE load_id = $1 AND page_no = $2 - 1)
        ON CONFLICT (load_id, page_no) DO UPDATE
        SET body = EXCLUDED.body, item_count = EXCLUDED.item_count,
            next_cursor = EXCLUDED.next_cursor, fetched_at = now()
        """,
        load_id, page_no, body, item_count, next_cursor,
    )
    if status.split()[-1] == "0":
        raise SystemFailure(f"load {load_id}: page {page_no - 1} is gone (Postgres lost"
                            " pages not yet flushed); fetching again after the last one")


async def finish_load(conn: Connection, *, load_id: str, pages: int) -> int:
    """Mark the load landed; drops pages a longer earlier attempt left behind. One
    statement, so one round trip; its commit also flushes the WAL of the pages."""
    items = await conn.fetchval(
        """
        WITH extra AS (
            DELETE FROM pipeline.landed_pages WHERE load_id = $1 AND page_no >= $2
        )
        UPDATE pipeline.loads SET status = 'landed', landed_at = now(), pages = $2,
               items = (SELECT coalesce(sum(item_count), 0) FROM pipeline.landed_pages
                        WHERE load_id = $1 AND page_no < $2)
        WHERE load_id = $1 AND status = 'fetching'
        RETURNING items
        """,
        load_id, pages)
    if items is None:
        items = await conn.fetchval(
            "SELECT items FROM pipeline.loads WHERE load_id = $1", load_id)
    return int(items or 0)


async def landed_load(conn: Connection, load_id: str) -> Sequence[asyncpg.Record]:
    """The load row, locked, with its pages in order: one record per page with `status`,
    `stage_result`, `page_no` and `body` (one record with no page when it has none). Empty
    when the load is unknown. Call inside a transaction."""
    return await conn.fetch(
        "SELECT l.status, l.stage_result, p.page_no, p.body FROM pipeline.loads l"
        " LEFT JOIN pipeline.landed_pages p ON p.load_id = l.load_id"
        " WHERE l.load_id = $1 ORDER BY p.page_no FOR UPDATE OF l",
        load_id)


async def mark_staged(conn: Connection, load_id: str, result: dict[str, Any], *,
                      drop_pages: bool, landed: tuple[int, int] | None = None) -> None:
    """The load is staged with `result`; its pages go unless they are to be kept. With
    `landed` (pages, items), a load still `fetching` is marked landed too (what
    `finish_load` does): pages beyond the last one go even when pages are kept."""
    pages, items = landed if landed is not None else (None, None)
    # Kept pages lose only those a longer earlier attempt left behind (none unless
    # `landed`: `finish_load` dropped them otherwise).
    await conn.execute(
        "WITH dropped AS (DELETE FROM pipeline.landed_pages WHERE load_id = $1"
        "                 AND ($5 OR page_no >= coalesce($3::int, 2147483647)))"
        " UPDATE pipeline.loads SET status = 'staged', staged_at = now(), stage_result = $2,"
        " landed_at = coalesce(landed_at, now()), pages = coalesce($3::int, pages),"
        " items = coalesce($4::int, items)"
        " WHERE load_id = $1",
        load_id, result, pages, items, drop_pages)


async def landed_bodies(conn: Connection, load_id: str) -> Sequence[asyncpg.Record]:
    return await conn.fetch(
        "SELECT page_no, body FROM pipeline.landed_pages WHERE load_id = $1 ORDER BY page_no",
        load_id)


async def drop_landed_pages(conn: Connection, load_id: str) -> None:
    await conn.execute("DELETE FROM pipeline.landed_pages WHERE load_id = $1", load_id)


async def mark_compensated(conn: Connection, run_id: str, scope: str | None) -> None:
    """Blocks until a stage holding one of these loads commits; later ones refuse."""
    if scope is None:
        await conn.execute(
            "UPDATE pipeline.loads SET status = 'compensated' WHERE run_id = $1", run_id)
    else:
        await conn.execute(
            "UPDATE pipeline.loads SET status = 'compensated' WHERE run_id = $1 AND scope = $2",
            run_id, scope)
