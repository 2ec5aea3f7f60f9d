"""Snapshots of a pipeline's tables, for tests that a run restored them (checksums)
or did not write them at all (xmins)."""

from __future__ import annotations

from collections.abc import Sequence

from pipeworks.db import Connection


async def checksums(db: Connection, tables: Sequence[str]) -> dict[str, str]:
    sums = {}
    for table in tables:
        # Table names from the tests' constants, not from data.
        sums[table] = await db.fetchval(
            f"SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '')"
            f" FROM {table} t")
    return sums


async def xmins(db: Connection, tables: Sequence[str]) -> dict[str, list[str]]:
    """Every row's xmin per table: unchanged means not written at all."""
    found = {}
    for table in tables:
        rows = await db.fetch(f"SELECT xmin::text AS x FROM {table} ORDER BY ctid")
        found[table] = [r["x"] for r in rows]
    return found
