"""Yardstick (a): the same fetch and merge as pipeworks' sports sync, by hand, with no
Temporal, no landing and no change log. Plain asyncio + httpx + asyncpg.

For one association: GET the association, page through its competitions and merge them;
then, `--concurrency` competitions at a time, page through a competition's teams and
merge them, then its games and merge them. A merge is one transaction: COPY into a temp
table, INSERT ... ON CONFLICT DO UPDATE ... WHERE ... IS DISTINCT FROM, and delete the
competition's rows the upstream no longer lists (teams and games, as a full sync does).
Items are converted to rows (timestamps and dates parsed) but not otherwise validated.

    python -m benchmarks.yardstick_plain --dsn postgresql://... --url http://127.0.0.1:8765

prints one JSON object: wall time, requests, merge counts and where the time went.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import quote

import asyncpg
import httpx

from benchmarks.common import COLUMNS, competition_row, game_row, team_row, yardstick_parser

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Conn: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]
else:
    Conn: TypeAlias = Any


@dataclass
class Timers:
    """Seconds summed over all tasks (they overlap: the sum can exceed the wall time)."""

    http_s: float = 0.0
    convert_s: float = 0.0
    merge_s: float = 0.0
    requests: int = 0
    merged: dict[str, dict[str, int]] = field(default_factory=dict)

    def add_merge(self, table: str, inserted: int, updated: int, deleted: int) -> None:
        m = self.merged.setdefault(table, {"inserted": 0, "updated": 0, "deleted": 0})
        m["inserted"] += inserted
        m["updated"] += updated
        m["deleted"] += deleted


async def fetch_all(client: httpx.AsyncClient, path: str, page_size: int,
                    timers: Timers) -> list[Any]:
    items: list[Any] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": page_size}
        if cursor:
            params["cursor"] = cursor
        started = time.perf_counter()
        response = await client.get(path, params=params)
        response.raise_for_status()
        page = response.json()
        timers.http_s += time.perf_counter() - started
        timers.requests += 1
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return items


async def merge(conn: Conn, table: str, rows: Sequence[tuple[Any, ...]],
                timers: Timers, competition_id: str | None = None) -> None:
    """COPY + upsert (+ delete what is no longer listed in the competition)."""
    started = time.perf_counter()
    columns = COLUMNS[table]
    compared = [c for c in columns if c != "id"]
    cols = ", ".join(columns)
    temp = "plain_incoming_" + table.replace(".", "_")  # not pipeworks' own, kept per connection
    # Dedup by id, the last occurrence wins (as pipeworks does).
    unique = list({row[0]: row for row in rows}.values())
    async with conn.transaction():
        await conn.execute(
            f"CREATE TEMP TABLE {temp} ON COMMIT DROP AS SELECT {cols} FROM {table}"
            f" WITH NO DATA; ALTER TABLE {temp} ADD PRIMARY KEY (id)")
        await conn.copy_records_to_table(temp, records=unique, columns=list(columns))
        assignments = ", ".join(f"{c} = EXCLUDED.{c}" for c in compared)
        old = "(" + ", ".join(f"t.{c}" for c in compared) + ")"
        new = "(" + ", ".join(f"EXCLUDED.{c}" for c in compared) + ")"
        written = await conn.fetchrow(
            f"WITH w AS (INSERT INTO {table} AS t ({cols}) SELECT {cols} FROM {temp}"
            f" ON CONFLICT (id) DO UPDATE SET {assignments} WHERE {old} IS DISTINCT FROM {new}"
            f" RETURNING (xmax = 0) AS inserted)"
            f" SELECT count(*) FILTER (WHERE inserted) AS ins,"
            f" count(*) FILTER (WHERE NOT inserted) AS upd FROM w")
        deleted = 0
        if competition_id is not None:
            status = await conn.execute(
                f"DELETE FROM {table} t WHERE t.competition_id = $1"
                f" AND NOT EXISTS (SELECT 1 FROM {temp} i WHERE i.id = t.id)", competition_id)
            deleted = int(status.split()[-1])
    assert written is not None
    timers.add_merge(table, int(written["ins"]), int(written["upd"]), deleted)
    timers.merge_s += time.perf_counter() - started


def convert(items: list[Any], make: Callable[[dict[str, Any]], tuple[Any, ...]],
            timers: Timers) -> list[tuple[Any, ...]]:
    started = time.perf_counter()
    rows = [make(item) for item in items]
    timers.convert_s += time.perf_counter() - started
    return rows


async def sync(pool: asyncpg.Pool, client: httpx.AsyncClient, org_id: str, concurrency: int,
               page_size: int, timers: Timers) -> None:
    org = quote(org_id, safe="")
    started = time.perf_counter()
    (await client.get(f"/v1/associations/{org}")).raise_for_status()  # it exists
    timers.http_s += time.perf_counter() - started
    timers.requests += 1
    competitions = await fetch_all(client, f"/v1/associations/{org}/competitions", page_size,
                                   timers)
    async with pool.acquire() as conn:
        await merge(conn, "sports.competitions", convert(competitions, competition_row, timers),
                    timers)
    slots = asyncio.Semaphore(concurrency)

    async def one(competition_id: str) -> None:
        cid = quote(competition_id, safe="")
        async with slots:
            teams = await fetch_all(client, f"/v1/competitions/{cid}/teams", page_size, timers)
            rows = convert(teams, lambda t: team_row(t, competition_id), timers)
            async with pool.acquire() as conn:
                await merge(conn, "sports.teams", rows, timers, competition_id)
            games = await fetch_all(client, f"/v1/competitions/{cid}/games", page_size, timers)
            rows = convert(games, lambda g: game_row(g, competition_id), timers)
            async with pool.acquire() as conn:
                await merge(conn, "sports.games", rows, timers, competition_id)

    await asyncio.gather(*(one(c["id"]) for c in competitions))


async def main(args: argparse.Namespace) -> dict[str, Any]:
    pool = await asyncpg.create_pool(args.dsn, min_size=args.concurrency,
                                     max_size=args.concurrency)
    assert pool is not None
    client = httpx.AsyncClient(
        base_url=args.url, timeout=httpx.Timeout(30.0),
        limits=httpx.Limits(max_connections=args.concurrency * 2,
                            max_keepalive_connections=args.concurrency * 2))
    timers = Timers()
    try:
        started = time.perf_counter()
        await sync(pool, client, args.org, args.concurrency, args.page_size, timers)
        wall = time.perf_counter() - started
    finally:
        await client.aclose()
        await pool.close()
    return {"wall_s": wall, **asdict(timers)}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = yardstick_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--profile", metavar="FILE", help="write cProfile stats to FILE")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.profile:
        import cProfile

        profiler = cProfile.Profile()
        result = profiler.runcall(asyncio.run, main(arguments))
        profiler.dump_stats(arguments.profile)
    else:
        result = asyncio.run(main(arguments))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
