"""What the Bitcoin pipeline's tests share: starting runs, reading findings, snapshots."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client, WorkflowHandle

from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.run_results import failure_of as failure_of  # re-exported
from tests.table_snapshots import checksums as table_checksums
from tests.table_snapshots import xmins as table_xmins

BTC_TABLES = ("btc.blocks", "btc.transactions", "btc.block_calcs")


async def start(client: Client, settings: Settings, workflow: str, params: dict[str, Any],
                network: str = "main") -> WorkflowHandle[Any, Any]:
    kind = "ingest" if workflow == "BtcIngestWorkflow" else "reconcile"
    return await client.start_workflow(workflow, {"network": network, **params},
                                       id=f"btc-{kind}-{network}",
                                       task_queue=settings.task_queue)


async def ingest(client: Client, settings: Settings, **params: Any) -> dict[str, Any]:
    handle = await start(client, settings, "BtcIngestWorkflow", params)
    result: dict[str, Any] = await handle.result()
    assert result["status"] == "completed", result
    return result


async def reconcile(client: Client, settings: Settings, **params: Any) -> dict[str, Any]:
    handle = await start(client, settings, "BtcReconcileWorkflow",
                         {"from_height": 0, **params})
    result: dict[str, Any] = await handle.result()
    assert result["status"] == "completed", result
    return result


async def open_findings(db: Connection) -> set[tuple[int, str, str]]:
    """(height, category, field) of every open finding."""
    rows = await db.fetch("SELECT height, category, field FROM btc.discrepancies"
                          " WHERE resolved_at IS NULL")
    return {(r["height"], r["category"], r["field"]) for r in rows}


async def checksums(db: Connection) -> dict[str, str]:
    return await table_checksums(db, BTC_TABLES)


async def xmins(db: Connection) -> dict[str, list[str]]:
    """Every row's xmin per table: unchanged means not written at all."""
    return await table_xmins(db, BTC_TABLES)
