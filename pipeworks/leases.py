"""Leases: at most one run writes what a lease key covers at a time.

A pipeline picks the key (whatever its runs must not write concurrently). A lease
names the holding workflow run. It is released by the run itself; a holder that no
longer runs (terminated, say) is detected by the acquirer and its lease taken over.
"""

from __future__ import annotations

from pipeworks.db import Connection


async def try_acquire(conn: Connection, key: str, workflow_id: str, run_id: str
                      ) -> tuple[bool, str | None, str | None]:
    """(acquired, holder workflow id, holder run id)."""
    row = await conn.fetchrow(
        """
        INSERT INTO pipeline.leases (lease_key, workflow_id, run_id) VALUES ($1, $2, $3)
        ON CONFLICT (lease_key) DO UPDATE SET acquired_at = pipeline.leases.acquired_at
        RETURNING workflow_id, run_id
        """,
        key, workflow_id, run_id)
    assert row is not None
    return row["run_id"] == run_id, row["workflow_id"], row["run_id"]


async def take_over(conn: Connection, key: str, stale_run_id: str,
                    workflow_id: str, run_id: str) -> bool:
    status = await conn.execute(
        "UPDATE pipeline.leases SET workflow_id = $3, run_id = $4, acquired_at = now()"
        " WHERE lease_key = $1 AND run_id = $2",
        key, stale_run_id, workflow_id, run_id)
    return status.endswith(" 1")


async def release(conn: Connection, key: str, run_id: str) -> None:
    await conn.execute(
        "DELETE FROM pipeline.leases WHERE lease_key = $1 AND run_id = $2", key, run_id)
