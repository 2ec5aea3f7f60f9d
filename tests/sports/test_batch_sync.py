"""BatchSyncWorkflow: one AccountSyncWorkflow child per account, bounded."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from devstack.sports.server import UpstreamServer
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.sports.helpers import (
    SPORTS_TABLES,
    a_club_of,
    assert_tables_equal,
    checksums,
    expected_association,
    failure_of,
    run_options,
)


async def add_accounts(db: Connection, upstream: UpstreamServer) -> str:
    club = a_club_of(upstream.dataset, "A2")
    await db.executemany(
        "INSERT INTO sports.accounts (id, kind, org_id, name) VALUES ($1, $2, $3, $4)",
        [(1, "association", "A1", "Åssociation One"), (2, "association", "A2", "Two"),
         (10, "club", club, "A club")])
    return club


async def start_batch(env: WorkflowEnvironment, settings: Settings, **fields: Any) -> Any:
    return await env.client.start_workflow(
        "BatchSyncWorkflow", {**run_options(settings), **fields},
        id=f"sports-sync-batch-{fields.get('kind')}-{uuid.uuid4().hex[:6]}",
        task_queue=settings.task_queue)


async def test_batch_syncs_every_matching_account(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    await add_accounts(db, upstream)
    handle = await start_batch(temporal_env, settings, kind="association", max_concurrent=2)
    result = await handle.result()
    assert result["status"] == "completed", result
    [stage] = result["stages"]
    assert stage["name"] == "accounts" and stage["total"] == stage["done"] == 2
    expected = expected_association(upstream.dataset, "A1")
    for table, rows in expected_association(upstream.dataset, "A2").items():
        expected[table] |= rows
    await assert_tables_equal(db, expected)
    assert result["records"]["staged"] == sum(len(r) for r in expected.values())
    children = await db.fetch(
        "SELECT workflow_id, status FROM pipeline.runs WHERE pipeline = 'sports_sync'")
    assert sorted(r["workflow_id"] for r in children) == [
        "sports-sync-account-1", "sports-sync-account-2"]


async def test_batch_counts_a_failed_account_and_goes_on(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    await add_accounts(db, upstream)
    upstream.faults.set(path_status={"/v1/associations/A2": 404})
    result = await (await start_batch(temporal_env, settings, kind="all")).result()
    assert result["status"] == "completed_with_errors", result
    stage = result["stages"][0]
    assert (stage["total"], stage["done"], stage["failed"]) == (3, 2, 1)
    assert result["errors"]["permanent"] >= 1


async def test_cancelled_batch_undoes_finished_and_running_children(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    await add_accounts(db, upstream)
    before = await checksums(db)
    upstream.faults.set(latency_ms=30)
    handle = await start_batch(temporal_env, settings, kind="all", max_concurrent=1,
                               page_size=4)
    deadline = asyncio.get_running_loop().time() + 60
    while (await handle.query("progress"))["stages"][0]["done"] < 1:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    await handle.signal("cancel", {"reason": "batch stop"})
    cause = await failure_of(handle)
    assert isinstance(cause, ApplicationError) and cause.type == "Cancelled"
    progress = await handle.query("progress")
    assert progress["status"] == "cancelled" and progress["rolled_back"] is True
    after = await checksums(db)
    for table in SPORTS_TABLES:
        assert after[table] == before[table], table


async def test_batch_attaches_to_an_on_demand_sync_already_running(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    await add_accounts(db, upstream)
    upstream.faults.set(latency_ms=30)
    on_demand = await temporal_env.client.start_workflow(
        "AccountSyncWorkflow", {**run_options(settings), "account_id": 1, "page_size": 4},
        id="sports-sync-account-1", task_queue=settings.task_queue)
    batch = await start_batch(temporal_env, settings, kind="association")
    result = await batch.result()
    assert result["status"] == "completed", result
    assert result["stages"][0]["done"] == 2
    assert (await on_demand.result())["status"] == "completed"
    query = f"WorkflowId = 'sports-sync-account-1' AND TaskQueue = '{settings.task_queue}'"
    for _ in range(50):  # visibility lags behind a little
        executions = [e async for e in temporal_env.client.list_workflows(query)]
        if executions:
            break
        await asyncio.sleep(0.1)
    assert len(executions) == 1  # attached, not started twice


async def test_a_failing_attached_sync_counts_as_one_failed_account(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    await add_accounts(db, upstream)
    broken = upstream.dataset.expected_competitions("A1")[-1]["id"]
    upstream.faults.set(latency_ms=30, path_status={f"/v1/competitions/{broken}/games": 404})
    on_demand = await temporal_env.client.start_workflow(
        "AccountSyncWorkflow", {**run_options(settings), "account_id": 1, "page_size": 4,
                                "competition_concurrency": 1},
        id="sports-sync-account-1", task_queue=settings.task_queue)
    batch = await start_batch(temporal_env, settings, kind="association")
    result = await batch.result()
    assert result["status"] == "completed_with_errors", result
    stage = result["stages"][0]
    assert (stage["done"], stage["failed"]) == (1, 1)
    assert isinstance(await failure_of(on_demand), ApplicationError)
    # Account 2's sync stays: one failed account does not roll back the others.
    await assert_tables_equal(db, expected_association(upstream.dataset, "A2"))


async def test_a_child_cancelled_from_outside_is_one_failed_account(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    await add_accounts(db, upstream)
    upstream.faults.set(latency_ms=30)
    batch = await start_batch(temporal_env, settings, kind="association", max_concurrent=2,
                              page_size=4)
    deadline = asyncio.get_running_loop().time() + 60
    while True:  # this batch's child, not an earlier test's run of the same id
        try:
            described = await temporal_env.client.get_workflow_handle(
                "sports-sync-account-2").describe()
        except RPCError as err:  # not started yet
            assert err.status == RPCStatusCode.NOT_FOUND
        else:
            if (described.status == WorkflowExecutionStatus.RUNNING
                    and described.task_queue == settings.task_queue):
                break
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    await temporal_env.client.get_workflow_handle(
        "sports-sync-account-2", run_id=described.run_id).cancel()
    result = await batch.result()
    assert result["status"] == "completed_with_errors", result
    stage = result["stages"][0]
    assert (stage["done"], stage["failed"]) == (1, 1)
    await assert_tables_equal(db, expected_association(upstream.dataset, "A1"))
