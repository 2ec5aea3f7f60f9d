"""`pipeworks accounts`: the accounts whose organisations get synced."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from pipeworks.db import connect, migrate
from pipeworks.settings import Settings


async def add_account(settings: Settings, account_id: int, kind: str, org_id: str, name: str
                      ) -> bool:
    conn = await connect(settings.resolved_database_url())
    try:
        await migrate(conn)
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
    conn = await connect(settings.resolved_database_url())
    try:
        await migrate(conn)
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
