"""The F1 yardstick: a season's sessions fetched and upserted by hand, with no Temporal,
no landing, no change log and no pydantic. Plain asyncio + httpx + asyncpg.

It does what `F1SeasonSyncWorkflow` (mode full) does with the raw data:

1. GET `/v1/meetings?year=Y` and `/v1/sessions?year=Y` and upsert them;
2. for every session that started and is not cancelled (nor its meeting), in the order
   they ran, `--concurrency` sessions at once: GET each stream the pipeline pulls for
   the session's type (`f1_common.streams_for`), all at once, each as ONE request for
   the whole session (`?session_key=K`, no date windows), then upsert them in the
   pipeline's order, one transaction per stream: COPY into a temp table, then
   `INSERT ... ON CONFLICT DO UPDATE ... WHERE ... IS DISTINCT FROM`, and delete the
   session's rows it no longer lists (as a full sync does).

Items are deduplicated by key (the last occurrence wins) and validated minimally: a
JSON object of this session, with the key fields present (else skipped and counted).
Every request first takes a slot of one shared rate limit, `--rate-limit` requests per
second spaced evenly (no burst, like pipeworks' `SharedRateLimit`); 0 means none.

    python -m benchmarks.yardstick_f1 --dsn postgresql://... --url http://127.0.0.1:8766

prints one JSON object: wall time, requests, rows merged and where the time went.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import orjson

from benchmarks.f1_common import MEETINGS, SESSIONS, Item, Row, Stream, streams_for, ts


class RateLimit:
    """One request every 1/rate seconds, shared by every task of this process."""

    def __init__(self, per_second: float) -> None:
        self.spacing = 1.0 / per_second if per_second > 0 else 0.0
        self.next_slot = 0.0
        self.waited_s = 0.0

    async def acquire(self) -> None:
        if not self.spacing:
            return
        now = time.monotonic()
        slot = max(self.next_slot, now)
        self.next_slot = slot + self.spacing
        if slot > now:
            self.waited_s += slot - now
            await asyncio.sleep(slot - now)


@dataclass
class Timers:
    """Seconds summed over all tasks (they overlap: the sum can exceed the wall time)."""

    http_s: float = 0.0
    convert_s: float = 0.0
    merge_s: float = 0.0
    requests: int = 0
    sessions: int = 0
    invalid: int = 0
    duplicates: int = 0
    merged: dict[str, dict[str, int]] = field(default_factory=dict)

    def add_merge(self, table: str, inserted: int, updated: int, deleted: int) -> None:
        m = self.merged.setdefault(table, {"inserted": 0, "updated": 0, "deleted": 0})
        m["inserted"] += inserted
        m["updated"] += updated
        m["deleted"] += deleted


class Fetcher:
    def __init__(self, client: httpx.AsyncClient, limit: RateLimit, timers: Timers) -> None:
        self.client = client
        self.limit = limit
        self.timers = timers

    async def items(self, path: str, params: dict[str, str]) -> list[Any]:
        """The JSON array the upstream answers; its 404 "No results found." is empty."""
        await self.limit.acquire()
        started = time.perf_counter()
        response = await self.client.get(path, params=params)
        self.timers.requests += 1
        if response.status_code == 404:
            self.timers.http_s += time.perf_counter() - started
            return []
        response.raise_for_status()
        items = orjson.loads(response.content)
        self.timers.http_s += time.perf_counter() - started
        if not isinstance(items, list):
            raise ValueError(f"{path}: not a JSON array")
        return items


def convert(stream: Stream, items: list[Any], timers: Timers, session_key: int | None = None
            ) -> list[Row]:
    """Rows unique by key (the last occurrence wins); invalid items are skipped."""
    started = time.perf_counter()
    rows: dict[Row, Row] = {}
    for item in items:
        if not isinstance(item, dict) or (
                session_key is not None and item.get("session_key") != session_key):
            timers.invalid += 1
            continue
        try:
            row = stream.row(item)
        except (KeyError, TypeError, ValueError):
            timers.invalid += 1
            continue
        key = stream.key_of(row)
        if key in rows:
            timers.duplicates += 1
        rows[key] = row
    timers.convert_s += time.perf_counter() - started
    return list(rows.values())


async def merge(conn: asyncpg.Connection, stream: Stream, rows: Sequence[Row], timers: Timers,
                session_key: int | None = None) -> None:
    """COPY + upsert (+ delete the session's rows no longer listed), one transaction."""
    if not rows:
        return  # an empty answer is not final: it deletes nothing
    started = time.perf_counter()
    table, columns, keys = stream.table, stream.columns, stream.keys
    compared = [c for c in columns if c not in keys]
    cols = ", ".join(columns)
    key_list = ", ".join(keys)
    temp = "yardstick_incoming_" + table.replace(".", "_")
    assignments = ", ".join(f"{c} = EXCLUDED.{c}" for c in compared)
    old = "(" + ", ".join(f"t.{c}" for c in compared) + ")"
    new = "(" + ", ".join(f"EXCLUDED.{c}" for c in compared) + ")"
    async with conn.transaction():
        await conn.execute(
            f"CREATE TEMP TABLE {temp} ON COMMIT DROP AS SELECT {cols} FROM {table}"
            f" WITH NO DATA; ALTER TABLE {temp} ADD PRIMARY KEY ({key_list})")
        await conn.copy_records_to_table(temp, records=rows, columns=list(columns))
        written = await conn.fetchrow(
            f"WITH w AS (INSERT INTO {table} AS t ({cols}) SELECT {cols} FROM {temp}"
            f" ON CONFLICT ({key_list}) DO UPDATE SET {assignments}"
            f" WHERE {old} IS DISTINCT FROM {new} RETURNING (xmax = 0) AS inserted)"
            f" SELECT count(*) FILTER (WHERE inserted) AS ins,"
            f" count(*) FILTER (WHERE NOT inserted) AS upd FROM w")
        deleted = 0
        if session_key is not None:
            match = " AND ".join(f"i.{k} = t.{k}" for k in keys)
            status = await conn.execute(
                f"DELETE FROM {table} t WHERE t.session_key = $1"
                f" AND NOT EXISTS (SELECT 1 FROM {temp} i WHERE {match})", session_key)
            deleted = int(status.split()[-1])
    assert written is not None
    timers.add_merge(table, int(written["ins"]), int(written["upd"]), deleted)
    timers.merge_s += time.perf_counter() - started


def selected(sessions: list[Item], meetings: list[Item], now: datetime) -> list[Item]:
    """Sessions that started and are not cancelled (nor their meeting), as they ran."""
    cancelled = {m.get("meeting_key") for m in meetings if m.get("is_cancelled")}
    chosen = []
    for s in sessions:
        if not isinstance(s, dict) or s.get("is_cancelled"):
            continue
        start = ts(s.get("date_start"))
        if start is not None and start <= now and s.get("meeting_key") not in cancelled:
            chosen.append(s)
    return sorted(chosen, key=lambda s: (ts(s["date_start"]), s["session_key"]))


async def sync_session(pool: asyncpg.Pool, fetcher: Fetcher, session: Item,
                       timers: Timers) -> None:
    key = int(session["session_key"])
    streams = streams_for(str(session["session_type"]))
    params = {"session_key": str(key)}
    # Every stream at once, each merged when it and the ones before it are in.
    fetches = [asyncio.create_task(fetcher.items(s.path, params)) for s in streams]
    try:
        async with pool.acquire() as conn:
            for stream, fetching in zip(streams, fetches, strict=True):
                items = await fetching
                await merge(conn, stream, convert(stream, items, timers, key), timers, key)
    finally:
        for task in fetches:
            task.cancel()
        await asyncio.gather(*fetches, return_exceptions=True)
    timers.sessions += 1


async def sync_season(pool: asyncpg.Pool, fetcher: Fetcher, year: int, concurrency: int,
                      timers: Timers) -> None:
    params = {"year": str(year)}
    meetings, sessions = await asyncio.gather(fetcher.items(MEETINGS.path, params),
                                              fetcher.items(SESSIONS.path, params))
    async with pool.acquire() as conn:
        await merge(conn, MEETINGS, convert(MEETINGS, meetings, timers), timers)
        await merge(conn, SESSIONS, convert(SESSIONS, sessions, timers), timers)
    slots = asyncio.Semaphore(concurrency)

    async def one(session: Item) -> None:
        async with slots:
            await sync_session(pool, fetcher, session, timers)

    await asyncio.gather(*(one(s) for s in selected(sessions, meetings, datetime.now(UTC))))


async def main(args: argparse.Namespace) -> dict[str, Any]:
    pool = await asyncpg.create_pool(args.dsn, min_size=args.concurrency,
                                     max_size=args.concurrency)
    assert pool is not None
    streams = max(len(streams_for(t)) for t in ("Race", "Qualifying", "Practice"))
    connections = args.concurrency * streams
    client = httpx.AsyncClient(
        base_url=args.url, timeout=httpx.Timeout(60.0),
        limits=httpx.Limits(max_connections=connections,
                            max_keepalive_connections=connections))
    timers = Timers()
    limit = RateLimit(args.rate_limit)
    try:
        started = time.perf_counter()
        await sync_season(pool, Fetcher(client, limit, timers), args.year, args.concurrency,
                          timers)
        wall = time.perf_counter() - started
    finally:
        await client.aclose()
        await pool.close()
    return {"wall_s": wall, "rate_limit_per_s": args.rate_limit,
            "rate_limit_waited_s": limit.waited_s, **asdict(timers)}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.yardstick_f1",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--url", required=True, help="upstream base URL")
    parser.add_argument("--year", type=int, default=2024)
    parser.add_argument("--concurrency", type=int, default=4, help="sessions at once")
    parser.add_argument("--rate-limit", type=float, default=3.0,
                        help="requests per second, all tasks together (0: no limit)")
    parser.add_argument("--profile", metavar="FILE", help="write cProfile stats to FILE")
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.rate_limit < 0:
        parser.error("--concurrency must be at least 1, --rate-limit not negative")
    return args


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
