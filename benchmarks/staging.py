"""Staging alone: pipeworks' own `stage_load` with `GameStager` over games pages already
landed in `pipeline.landed_pages`, one competition (one load) at a time on one
connection, the way a stage activity runs it. No HTTP, no Temporal.

Measured four ways on the same pages:
- `fresh`: into an empty `sports.games` (every row inserted, every insert change-logged);
- `unchanged`: the same pages again (every row compared, none written);
- `judge_only`: just `json.loads` + `GameStager.judge` (pydantic) over every item;
- `plain_merge`: yardstick (a)'s merge (COPY + upsert, no landing, no validation, no
  change log) of the same pages into an empty table.

A proxy around the connection times every statement `stage_load` sends, so the result
also says where a stage spends its time.
"""

from __future__ import annotations

import cProfile
import json
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote, urlencode

from activities.sports.stagers import GameStager
from benchmarks.common import game_row
from benchmarks.yardstick_plain import Timers, merge
from devstack.sports import api
from devstack.sports.dataset import Dataset
from pipeworks.db import Connection, connect
from pipeworks.http import parse_page
from pipeworks.landing import begin_load, finish_load, land_page
from pipeworks.staging import stage_load

# What each statement of a stage is, by the start of its SQL (first match wins).
LABELS: list[tuple[str, str]] = [
    (r"SELECT pg_advisory_xact_lock", "lock scope"),
    (r"SELECT l\.status, l\.stage_result", "load row + landed pages"),
    (r"SELECT attname, format_type", "column types (once per connection's process)"),
    (r"SELECT id, club_id FROM sports\.teams", "read the competition's teams"),
    (r"INSERT INTO pipeline\.dead_letters", "dead letters"),
    (r"\s*WITH incoming AS", "merge: upsert + change log + delete unlisted (1 statement)"),
    (r"WITH dropped AS|UPDATE pipeline\.loads SET status = 'staged'",
     "mark load staged (+ drop its pages)"),
    (r"BEGIN", "begin"),
    (r"COMMIT", "commit"),
]


def _label(sql: str) -> str:
    for pattern, label in LABELS:
        if re.match(pattern, sql.lstrip()):
            return label
    return "other: " + " ".join(sql.split())[:40]


class TimedConnection:
    """Delegates to an asyncpg connection, timing each statement by label."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    @contextmanager
    def _clock(self, sql: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            label = _label(sql)
            self.seconds[label] += time.perf_counter() - started
            self.calls[label] += 1

    async def execute(self, query: str, *args: Any, **kwargs: Any) -> Any:
        with self._clock(query):
            return await self._conn.execute(query, *args, **kwargs)

    async def executemany(self, query: str, *args: Any, **kwargs: Any) -> Any:
        with self._clock(query):
            return await self._conn.executemany(query, *args, **kwargs)

    async def fetch(self, query: str, *args: Any, **kwargs: Any) -> Any:
        with self._clock(query):
            return await self._conn.fetch(query, *args, **kwargs)

    async def fetchrow(self, query: str, *args: Any, **kwargs: Any) -> Any:
        with self._clock(query):
            return await self._conn.fetchrow(query, *args, **kwargs)

    async def fetchval(self, query: str, *args: Any, **kwargs: Any) -> Any:
        with self._clock(query):
            return await self._conn.fetchval(query, *args, **kwargs)

    async def copy_records_to_table(self, table: str, **kwargs: Any) -> Any:
        with self._clock("COPY"):
            return await self._conn.copy_records_to_table(table, **kwargs)

    def transaction(self, **kwargs: Any) -> Any:
        return _TimedTransaction(self, self._conn.transaction(**kwargs))


class _TimedTransaction:
    def __init__(self, owner: TimedConnection, transaction: Any) -> None:
        self._owner, self._tx = owner, transaction

    async def __aenter__(self) -> Any:
        with self._owner._clock("BEGIN"):
            return await self._tx.__aenter__()

    async def __aexit__(self, *exc: Any) -> Any:
        with self._owner._clock("COMMIT"):
            return await self._tx.__aexit__(*exc)


def games_path(competition_id: str) -> str:
    return f"/v1/competitions/{quote(competition_id, safe='')}/games"


def upstream_pages(dataset: Dataset, path: str, page_size: int) -> list[bytes]:
    """The page bodies the upstream serves for `path`, straight from its dataset."""
    bodies: list[bytes] = []
    cursor: str | None = None
    while True:
        query = {"limit": page_size, **({"cursor": cursor} if cursor else {})}
        response = api.handle(dataset, path, urlencode(query))
        if response.status != 200:
            raise RuntimeError(f"{path}: HTTP {response.status} {response.body[:200]!r}")
        bodies.append(response.body)
        cursor = json.loads(response.body)["next_cursor"]
        if not cursor:
            return bodies


def games_pages(dataset: Dataset, page_size: int, competitions: list[str] | None = None
                ) -> dict[str, list[bytes]]:
    """The competitions' games pages, by default every competition's (this also warms
    the upstream's game cache)."""
    return {cid: upstream_pages(dataset, games_path(cid), page_size)
            for cid in (dataset.competitions if competitions is None else competitions)}


async def land_all(conn: Connection, run_id: str, pages: dict[str, list[bytes]]
                   ) -> dict[str, Any]:
    started = time.perf_counter()
    count = 0
    for cid, bodies in pages.items():
        load_id = f"{run_id}/games/{cid}"
        await begin_load(conn, load_id=load_id, run_id=run_id, entity="games", scope=cid,
                         source_path=games_path(cid))
        for page_no, body in enumerate(bodies):
            page = parse_page(body)
            await land_page(conn, load_id=load_id, page_no=page_no, body=body,
                            item_count=len(page.items), next_cursor=page.next_cursor)
            count += 1
        await finish_load(conn, load_id=load_id, pages=len(bodies))
    seconds = time.perf_counter() - started
    return {"pages": count, "seconds": seconds, "pages_per_s": count / seconds,
            "ms_per_page": 1000 * seconds / count}


async def stage_all(conn: Connection, run_id: str, pages: dict[str, list[bytes]]
                    ) -> dict[str, Any]:
    timed = TimedConnection(conn)
    seconds = 0.0
    totals: Counter[str] = Counter()
    for cid in pages:
        started = time.perf_counter()
        outcome = await stage_load(
            cast(Connection, timed), GameStager(cid, None), load_id=f"{run_id}/games/{cid}",
            run_id=run_id, scope=cid, lock_key=f"sports:{cid}", full_sync=True)
        seconds += time.perf_counter() - started
        totals.update(staged=outcome.staged, invalid=outcome.invalid, **outcome.merge)
    in_db = sum(timed.seconds.values())
    breakdown = {label: {"seconds": s, "share": s / seconds, "calls": timed.calls[label]}
                 for label, s in sorted(timed.seconds.items(), key=lambda kv: -kv[1])}
    breakdown["python (json, pydantic, dedup), outside statements"] = {
        "seconds": seconds - in_db, "share": (seconds - in_db) / seconds, "calls": 0}
    return {"loads": len(pages), "rows": totals["staged"], "seconds": seconds,
            "rows_per_s": totals["staged"] / seconds, "counts": dict(totals),
            "breakdown": breakdown}


async def judge_all(conn: Connection, pages: dict[str, list[bytes]]) -> dict[str, Any]:
    seconds = 0.0
    items = 0
    for cid, bodies in pages.items():
        stager = GameStager(cid, None)
        await stager.prepare(conn)
        started = time.perf_counter()
        for body in bodies:
            for item in json.loads(body)["items"]:
                stager.judge(item)
                items += 1
        seconds += time.perf_counter() - started
    return {"rows": items, "seconds": seconds, "rows_per_s": items / seconds}


async def plain_all(conn: Connection, pages: dict[str, list[bytes]]) -> dict[str, Any]:
    timers = Timers()
    started = time.perf_counter()
    rows = 0
    for cid, bodies in pages.items():
        batch = [game_row(item, cid) for body in bodies for item in json.loads(body)["items"]]
        await merge(cast(Any, conn), "sports.games", batch, timers, cid)
        rows += len(batch)
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds,
            "merge_seconds": timers.merge_s}


async def staging_benchmark(dsn: str, pages: dict[str, list[bytes]],
                            bulk: dict[str, list[bytes]] | None = None,
                            profile: Path | None = None) -> dict[str, Any]:
    """Needs the competitions' teams in `sports.teams` (games referring to unknown
    teams are dead-lettered). `bulk`: one competition's pages holding as many games as
    all of `pages`, staged as one load (what the per-row cost alone allows)."""
    conn = await connect(dsn)
    try:
        await conn.execute("TRUNCATE sports.games")
        landing = await land_all(conn, "bench-staging-1", pages)
        profiler = cProfile.Profile() if profile else None
        if profiler:
            profiler.enable()
        fresh = await stage_all(conn, "bench-staging-1", pages)
        if profiler and profile:
            profiler.disable()
            profiler.dump_stats(str(profile))
        await land_all(conn, "bench-staging-2", pages)
        unchanged = await stage_all(conn, "bench-staging-2", pages)
        judge = await judge_all(conn, pages)
        await conn.execute("TRUNCATE sports.games")
        plain = await plain_all(conn, pages)
        one_load = None
        if bulk:
            await conn.execute("TRUNCATE sports.games")
            await land_all(conn, "bench-staging-bulk", bulk)
            one_load = await stage_all(conn, "bench-staging-bulk", bulk)
    finally:
        await conn.close()
    return {"landing": landing, "fresh": fresh, "unchanged": unchanged, "judge_only": judge,
            "plain_merge": plain, "one_load": one_load}
