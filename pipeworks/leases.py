"""Organisation leases: at most one run writes an organisation's rows at a time.

A lease names the holding workflow run. It is released by the run itself; a
holder that no longer runs (terminated, say) is detected by the acquirer and
its lease taken over.
"""

from __future__ import annotations

from pipeworks.db import Connection


async def try_acquire(conn: Connection, org_key: str, workflow_id: str, run_id: str
                      ) -> tuple[bool, str | None, str | None]:
    """(acquired, holder workflow id, holder run id)."""
    row = await conn.fetchrow(
        """
        INSERT INTO pipeline.org_leases (org_key, workflow_id, run_id) VALUES ($1, $2, $3)
        ON CONFLICT (org_key) DO UPDATE SET acquired_at = pipeline.org_leases.acquired_at
        RETURNING workflow_id, run_id
        """,
        org_key, workflow_id, run_id)
    assert row is not None
    return row["run_id"] == run_id, row["workflow_id"], row["run_id"]


async def take_over(conn: Connection, org_key: str, stale_run_id: str,
                    workflow_id: str, run_id: str) -> bool:
    status = await conn.execute(
        "UPDATE pipeline.org_leases SET workflow_id = $3, run_id = $4, acquired_at = now()"
        " WHERE org_key = $1 AND run_id = $2",
        org_key, stale_run_id, workflow_id, run_id)
    return status.endswith(" 1")


async def release(conn: Connection, org_key: str, run_id: str) -> None:
    await conn.execute(
        "DELETE FROM pipeline.org_leases WHERE org_key = $1 AND run_id = $2", org_key, run_id)
