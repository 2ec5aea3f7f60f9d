"""What the benchmark and both yardsticks share: the target tables, turning upstream
items into rows, and reading Postgres (row counts, checksums, write statistics).

The yardsticks deliberately do not import pipeworks: they are what someone would
write by hand with asyncio + httpx + asyncpg.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import asyncpg

SPORTS_TABLES = ("sports.competitions", "sports.teams", "sports.games")
COLUMNS: dict[str, tuple[str, ...]] = {
    "sports.competitions": ("id", "name", "season", "starts_on", "ends_on", "status"),
    "sports.teams": ("id", "competition_id", "name", "club_id"),
    "sports.games": ("id", "competition_id", "round", "scheduled_at", "home_team_id",
                     "away_team_id", "venue", "status", "home_score", "away_score",
                     "source_updated_at"),
}


def _day(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else None


def _ts(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def competition_row(item: dict[str, Any]) -> tuple[Any, ...]:
    return (item["id"], item["name"], item.get("season"), _day(item.get("starts_on")),
            _day(item.get("ends_on")), item.get("status"))


def team_row(item: dict[str, Any], competition_id: str) -> tuple[Any, ...]:
    return (item["id"], competition_id, item["name"], item.get("club_id"))


def game_row(item: dict[str, Any], competition_id: str) -> tuple[Any, ...]:
    return (item["id"], competition_id, item.get("round"), _ts(item["scheduled_at"]),
            item["home_team_id"], item["away_team_id"], item.get("venue"), item["status"],
            item.get("home_score"), item.get("away_score"), _ts(item.get("updated_at")))


async def row_counts(conn: asyncpg.Connection) -> dict[str, int]:
    return {t: int(await conn.fetchval(f"SELECT count(*) FROM {t}")) for t in SPORTS_TABLES}


async def checksums(conn: asyncpg.Connection) -> dict[str, str]:
    """md5 over every row of each table, in a fixed order: equal tables, equal sums."""
    return {t: str(await conn.fetchval(
        f"SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM {t} t"))
        for t in SPORTS_TABLES}


async def truncate_sports(conn: asyncpg.Connection) -> None:
    await conn.execute("TRUNCATE " + ", ".join(SPORTS_TABLES))


async def next_xid(conn: asyncpg.Connection) -> int:
    """A transaction id taken now: every row written later has a larger xmin."""
    return int(await conn.fetchval("SELECT txid_current()"))


async def rows_written_since(conn: asyncpg.Connection, xid: int) -> dict[str, int]:
    """Rows whose xmin is newer than `xid`: a row that was rewritten (even to the same
    values) gets a new one. Compares 32-bit xmins with a 64-bit txid, which holds in the
    benchmark's fresh cluster (epoch 0, far from wraparound)."""
    return {t: int(await conn.fetchval(
        f"SELECT count(*) FROM {t} WHERE xmin::text::bigint > $1", xid))
        for t in SPORTS_TABLES}


async def _write_counters(conn: asyncpg.Connection, schema: str) -> dict[str, int]:
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    rows = await conn.fetch(
        "SELECT schemaname || '.' || relname AS name,"
        " n_tup_ins + n_tup_upd + n_tup_del AS written"
        " FROM pg_stat_user_tables WHERE schemaname = $1 ORDER BY 1", schema)
    return {r["name"]: int(r["written"]) for r in rows}


async def stable_write_counters(
    conn: asyncpg.Connection, schema: str = "sports", *, settle_s: float = 0.5,
    timeout_s: float = 15.0,
) -> dict[str, int]:
    """`pg_stat_user_tables` n_tup_ins + n_tup_upd + n_tup_del per table of `schema`.

    Backends flush their counters asynchronously (PG 15+: at most once a second, and an
    idle backend only after its idle-stats timeout), so callers first end the backends
    that wrote (a backend flushes when it exits) and this then waits until two reads
    `settle_s` apart agree."""
    deadline = time.monotonic() + timeout_s
    previous = await _write_counters(conn, schema)
    while True:
        await asyncio.sleep(settle_s)
        current = await _write_counters(conn, schema)
        if current == previous or time.monotonic() > deadline:
            return current
        previous = current


async def end_other_backends(conn: asyncpg.Connection, timeout_s: float = 10.0) -> int:
    """Terminate every other client backend of this database and wait until they are
    gone: each flushes its statistics on exit. Pools reconnect on next use."""
    pids: Sequence[int] = [r["pid"] for r in await conn.fetch(
        "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend'"
        " AND datname = current_database() AND pid <> pg_backend_pid()")]
    for pid in pids:
        await conn.execute("SELECT pg_terminate_backend($1)", pid)
    deadline = time.monotonic() + timeout_s
    while pids and time.monotonic() < deadline:
        left = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])", list(pids))
        if not left:
            break
        await asyncio.sleep(0.05)
    return len(pids)


def yardstick_parser(description: str, *, concurrency: bool = True) -> argparse.ArgumentParser:
    """The options every yardstick takes (`run.py` starts them all alike)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--url", required=True, help="upstream base URL")
    parser.add_argument("--org", default="A1", help="association id")
    if concurrency:
        parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--page-size", type=int, default=100)
    return parser


async def stop_process(process: asyncio.subprocess.Process, timeout_s: float) -> None:
    """SIGTERM (a worker drains), then SIGKILL after `timeout_s`; a process that already
    ended is left as it is."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), timeout_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
