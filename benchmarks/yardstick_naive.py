"""Yardstick (b): the naive way. One request at a time, and one INSERT ... ON CONFLICT
per row, each awaited (and committed) on its own: no batching, no concurrency.

    python -m benchmarks.yardstick_naive --dsn postgresql://... --url http://127.0.0.1:8765

prints one JSON object: wall time, requests, rows written, where the time went.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx

from benchmarks.common import COLUMNS, competition_row, game_row, team_row, yardstick_parser


def upsert_sql(table: str) -> str:
    columns = COLUMNS[table]
    compared = [c for c in columns if c != "id"]
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    assignments = ", ".join(f"{c} = EXCLUDED.{c}" for c in compared)
    old = "(" + ", ".join(f"t.{c}" for c in compared) + ")"
    new = "(" + ", ".join(f"EXCLUDED.{c}" for c in compared) + ")"
    return (f"INSERT INTO {table} AS t ({', '.join(columns)}) VALUES ({placeholders})"
            f" ON CONFLICT (id) DO UPDATE SET {assignments} WHERE {old} IS DISTINCT FROM {new}")


class Naive:
    def __init__(self, conn: asyncpg.Connection, client: httpx.AsyncClient, page_size: int):
        self.conn, self.client, self.page_size = conn, client, page_size
        self.requests = 0
        self.rows = 0
        self.http_s = 0.0
        self.insert_s = 0.0

    async def get(self, path: str, params: dict[str, str | int] | None = None) -> Any:
        started = time.perf_counter()
        response = await self.client.get(path, params=params)
        response.raise_for_status()
        self.http_s += time.perf_counter() - started
        self.requests += 1
        return response.json()

    async def each_item(self, path: str) -> Any:
        cursor: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": self.page_size}
            if cursor:
                params["cursor"] = cursor
            page = await self.get(path, params)
            for item in page["items"]:
                yield item
            cursor = page.get("next_cursor")
            if not cursor:
                return

    async def insert(self, table: str, row: tuple[Any, ...]) -> None:
        started = time.perf_counter()
        await self.conn.execute(upsert_sql(table), *row)
        self.insert_s += time.perf_counter() - started
        self.rows += 1

    async def sync(self, org_id: str) -> None:
        org = quote(org_id, safe="")
        await self.get(f"/v1/associations/{org}")
        competition_ids = []
        async for item in self.each_item(f"/v1/associations/{org}/competitions"):
            await self.insert("sports.competitions", competition_row(item))
            competition_ids.append(item["id"])
        for competition_id in competition_ids:
            cid = quote(competition_id, safe="")
            async for item in self.each_item(f"/v1/competitions/{cid}/teams"):
                await self.insert("sports.teams", team_row(item, competition_id))
            async for item in self.each_item(f"/v1/competitions/{cid}/games"):
                await self.insert("sports.games", game_row(item, competition_id))


async def main(args: argparse.Namespace) -> dict[str, Any]:
    conn = await asyncpg.connect(args.dsn)
    client = httpx.AsyncClient(base_url=args.url, timeout=httpx.Timeout(30.0))
    naive = Naive(conn, client, args.page_size)
    try:
        started = time.perf_counter()
        await naive.sync(args.org)
        wall = time.perf_counter() - started
    finally:
        await client.aclose()
        await conn.close()
    return {"wall_s": wall, "requests": naive.requests, "rows": naive.rows,
            "http_s": naive.http_s, "insert_s": naive.insert_s}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = yardstick_parser(__doc__.split("\n\n")[0], concurrency=False)
    return parser.parse_args(argv)


if __name__ == "__main__":
    json.dump(asyncio.run(main(parse_args())), sys.stdout)
    sys.stdout.write("\n")
