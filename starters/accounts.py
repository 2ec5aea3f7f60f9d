"""`pipeworks accounts`: the accounts whose organisations get synced."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from rich.table import Table

from pipeworks.db import connect, migrate
from pipeworks.logging import redact
from pipeworks.settings import Settings
from starters.client import StarterError

CONNECT_TIMEOUT_SECONDS = 15.0


async def _connect(settings: Settings) -> asyncpg.Connection:
    """A migrated connection, or one line saying which database cannot be reached
    (host and port only: the DSN may hold a password)."""
    dsn = settings.resolved_database_url()
    try:
        conn = await asyncio.wait_for(connect(dsn), CONNECT_TIMEOUT_SECONDS)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
        parts = urlsplit(dsn)
        where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
        reason = redact(str(err)) or type(err).__name__
        raise StarterError(f"cannot use Postgres at {where} (PIPEWORKS_DATABASE_URL): "
                           f"{reason}") from None
    try:
        await migrate(conn)
    except BaseException:
        await conn.close()
        raise
    return conn


async def add_account(settings: Settings, account_id: int, kind: str, org_id: str, name: str
                      ) -> bool:
    conn = await _connect(settings)
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


async def list_accounts(settings: Settings) -> list[dict[str, Any]]:
    conn = await _connect(settings)
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
