"""`pipeworks accounts`: the accounts whose organisations get synced."""

from __future__ import annotations

import asyncio
from typing import Any

from rich.table import Table

from pipeworks.db import CONNECT_ERRORS, Connection, connect, migrate, unreachable
from starters.client import StarterError

CONNECT_TIMEOUT_SECONDS = 15.0


async def _connect(database_url: str) -> Connection:
    """A migrated connection, or one line saying which database cannot be used."""
    try:
        conn = await asyncio.wait_for(connect(database_url), CONNECT_TIMEOUT_SECONDS)
    except CONNECT_ERRORS as err:
        raise StarterError(unreachable(database_url, err)) from None
    try:
        await migrate(conn)
    except BaseException:
        await conn.close()
        raise
    return conn


async def add_account(database_url: str, account_id: int, kind: str, org_id: str, name: str
                      ) -> bool:
    conn = await _connect(database_url)
    try:
        inserted = await conn.fetchval(
            """
            INSERT INTO sports.accounts (id, kind, org_id, name) VALUES ($1, $2, $3, $4)
            ON CONFLICT (id) DO UPDATE SET kind = EXCLUDED.kind, org_id = EXCLUDED.org_id,
                                           name = EXCLUDED.name
            RETURNING (xmax = 0)
            """,
            account_id, kind, org_id, name)
        return bool(inserted)
    finally:
        await conn.close()


async def list_accounts(database_url: str) -> list[dict[str, Any]]:
    conn = await _connect(database_url)
    try:
        rows = await conn.fetch("SELECT id, kind, org_id, name FROM sports.accounts ORDER BY id")
        return [dict(r.items()) for r in rows]
    finally:
        await conn.close()


def accounts_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title=f"{len(rows)} accounts")
    for column in ("id", "kind", "org_id", "name"):
        table.add_column(column)
    for row in rows:
        table.add_row(str(row["id"]), row["kind"], row["org_id"], row["name"])
    return table
