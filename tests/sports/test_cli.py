"""The `pipeworks` command as a user runs it: a subprocess against the real stack.

Every command runs as an asyncio subprocess so that the in-process worker, which
shares the test's event loop, keeps working while the command waits for a run.
The `temporal` CLI is driven the same way with the contract's JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.sports.settings import SportsSettings
from devstack.sports.server import UpstreamServer
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.commands import Commands, Ran, finish
from tests.conftest import temporal_address
from tests.sports.helpers import SPORTS_TABLES, assert_tables_equal, expected_association

SECRET = "hunter2-s3cret"
# Workflow ids the contract fixes; a test that fails midway may leave one running.
FIXED_IDS = ("sports-sync-association-A1", "sports-sync-association-A2",
             "sports-sync-account-1", "sports-sync-account-2", "sports-sync-account-7",
             "sports-sync-batch-association")
PROGRESS_KEYS = {"workflow_id", "pipeline", "status", "rolled_back", "percent", "stages",
                 "records", "errors", "started_at", "updated_at", "message"}
STAGE_KEYS = {"name", "status", "total", "done", "failed", "percent", "records"}
# Upstream latency that makes a run with page size 3, one competition at a time, last
# several seconds: long enough to attach to or cancel it from another command.
SLOW_MS = 120
FINAL = {"completed", "completed_with_errors", "failed", "cancelled"}


def pipeworks_env(settings: Settings) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("PIPEWORKS_", "TEMPORAL_"))}
    sports_api_url = settings.of(SportsSettings).sports_api_url
    assert settings.database_url is not None and sports_api_url is not None
    return {**base, "COLUMNS": "160", "NO_COLOR": "1",
            "PIPEWORKS_DATABASE_URL": settings.database_url.get_secret_value(),
            "PIPEWORKS_SPORTS_API_URL": sports_api_url,
            "PIPEWORKS_PIPELINES": "sports_sync",
            "PIPEWORKS_TEMPORAL_ADDRESS": settings.temporal_address,
            "PIPEWORKS_TASK_QUEUE": settings.task_queue,
            "PIPEWORKS_HOME": str(settings.home)}


async def terminate_leftovers(client: Client, task_queue: str) -> None:
    for workflow_id in FIXED_IDS:
        handle = client.get_workflow_handle(workflow_id)
        try:
            described = await handle.describe()
        except RPCError:
            continue
        if (described.status == WorkflowExecutionStatus.RUNNING
                and described.task_queue == task_queue):
            await handle.terminate("test ended")


@pytest_asyncio.fixture(loop_scope="session")
async def offline_cli(settings: Settings, tmp_path: Path) -> AsyncIterator[Commands]:
    """Commands for cases that must stop before any run starts (no worker needed)."""
    commands = Commands(pipeworks_env(settings), tmp_path, settings.temporal_address,
                        settings.task_queue)
    yield commands
    await commands.close()


@pytest_asyncio.fixture(loop_scope="session")
async def cli(settings: Settings, worker: Worker, temporal_env: WorkflowEnvironment,
              tmp_path: Path) -> AsyncIterator[Commands]:
    """Commands with a worker polling the task queue; torn down before the worker."""
    commands = Commands(pipeworks_env(settings), tmp_path, temporal_address(temporal_env),
                        settings.task_queue)
    yield commands
    await commands.close()
    await terminate_leftovers(temporal_env.client, settings.task_queue)


def assert_one_clean_line(ran: Ran, code: int = 2) -> str:
    assert ran.code == code, ran
    lines = ran.err.strip().splitlines()
    assert len(lines) == 1, ran
    assert "Traceback" not in ran.err and "Error:" not in ran.err, ran
    return lines[0]


def assert_progress_document(document: dict[str, Any], workflow_id: str) -> None:
    assert set(document) == PROGRESS_KEYS, document
    assert document["workflow_id"] == workflow_id
    assert 0 <= document["percent"] <= 100
    for stage in document["stages"]:
        assert set(stage) == STAGE_KEYS, stage
        assert set(stage["records"]) == {"fetched", "staged", "invalid"}
    assert set(document["records"]) == {"fetched", "staged", "invalid"}
    assert set(document["errors"]) == {"transient", "permanent", "data", "system"}
    assert document["started_at"].endswith("Z") and document["updated_at"].endswith("Z")


async def poll_status(cli: Commands, workflow_id: str,
                      predicate: Callable[[dict[str, Any]], bool],
                      timeout: float = 30.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        ran = await cli("status", workflow_id, "--json")
        assert ran.code == 0, ran
        document: dict[str, Any] = ran.json()
        if predicate(document):
            return document
        assert asyncio.get_running_loop().time() < deadline, document
        await asyncio.sleep(0.2)


async def wait_for_progress(client: Client, workflow_id: str,
                            predicate: Callable[[dict[str, Any]], bool],
                            timeout: float = 30.0) -> dict[str, Any]:
    handle = client.get_workflow_handle(workflow_id)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        document: dict[str, Any] = await handle.query("progress")
        if predicate(document):
            return document
        assert asyncio.get_running_loop().time() < deadline, document
        await asyncio.sleep(0.05)


def competition_ids(upstream: UpstreamServer, association_id: str) -> list[str]:
    return [c["id"] for c in upstream.dataset.expected_competitions(association_id)]


# -- 1. bad usage ---------------------------------------------------------------

@pytest.mark.parametrize(("args", "words"), [
    (["frobnicate"], "frobnicate"),
    (["sync"], "--account"),
    (["sync", "--org-kind", "team", "--org-id", "A1"], "--org-kind"),
    (["sync", "--account", "abc"], "--account"),
    (["sync", "--org-kind", "club", "--org-id", "K1", "--since", "yesterday"], "--since"),
    (["sync", "--account", "7", "--org-kind", "club", "--org-id", "K1"], "not both"),
    (["sync", "--account", "7", "--since", "2024-05-01T00:00:00"], "--since"),
    (["sync", "--account", "7", "--on-failure", "ignore"], "--on-failure"),
    (["sync-all", "--kind", "everything"], "--kind"),
    (["sync-all", "--kind", "club", "--max-concurrent", "-1"], "--max-concurrent"),
    (["accounts", "add", "--id", "1", "--kind", "planet", "--org-id", "P1", "--name", "P"],
     "--kind"),
    (["accounts", "add", "--id", "1", "--kind", "club"], "--org-id"),
    (["status", "sports-sync-no-such-run"], "sports-sync-no-such-run"),
    (["cancel", "sports-sync-no-such-run"], "sports-sync-no-such-run"),
])
async def test_bad_usage_exits_2_with_one_line(
    offline_cli: Commands, args: list[str], words: str,
) -> None:
    line = assert_one_clean_line(await offline_cli(*args))
    assert words in line, line
    assert line.startswith("pipeworks: "), line


async def test_commands_that_use_temporal_exit_cleanly_every_time(offline_cli: Commands) -> None:
    """Regression: ending the interpreter with the Temporal client's Rust threads alive
    aborted about one command in ten (SIGABRT/SIGSEGV instead of the exit status)."""
    for _ in range(4):
        batch = await asyncio.gather(*(offline_cli("status", "sports-sync-no-such-run")
                                       for _ in range(4)))
        for ran in batch:
            assert_one_clean_line(ran)


async def test_no_command_prints_the_help_and_exits_2(offline_cli: Commands) -> None:
    ran = await offline_cli()
    assert ran.code == 2 and "Traceback" not in ran.err, ran
    assert "Usage: " in ran.err and "sync-all" in ran.err, ran
    helped = await offline_cli("sync", "--help")
    assert helped.code == 0 and "--org-kind" in helped.out, helped
    # The installed console script (entry point starters.cli:main) behaves the same.
    script = [str(Path(sys.executable).parent / "pipeworks"), "sync-all", "--kind", "x"]
    assert "--kind" in assert_one_clean_line(await finish(await offline_cli.start(script),
                                                          script))


# -- 2. bad settings ------------------------------------------------------------

@pytest.mark.parametrize(("variable", "value"), [
    ("PIPEWORKS_DATABASE_URL", "notaurl"),
    ("PIPEWORKS_DATABASE_URL", f"postgresql://pipe:{SECRET}@localhost:99999/pipe"),
    ("PIPEWORKS_DATABASE_URL", f"mysql://pipe:{SECRET}@localhost/pipe"),
    ("PIPEWORKS_TEMPORAL_ADDRESS", "nohostport"),
    ("PIPEWORKS_PAGE_SIZE", "-5"),
    ("PIPEWORKS_LOG_FORMAT", "xml"),
    ("PIPEWORKS_SPORTS_API_URL", "ftp://x"),
])
@pytest.mark.parametrize("args", [
    ["sync", "--org-kind", "association", "--org-id", "A1"], ["accounts", "list"],
])
async def test_bad_setting_exits_2_naming_the_variable(
    offline_cli: Commands, variable: str, value: str, args: list[str],
) -> None:
    ran = await offline_cli(*args, env={variable: value, "PIPEWORKS_SPORTS_API_TOKEN": SECRET})
    line = assert_one_clean_line(ran)
    assert line.startswith(f"pipeworks: {variable}: "), line
    assert SECRET not in ran.out + ran.err, ran


async def test_unreachable_database_is_one_line_without_the_password(
    offline_cli: Commands,
) -> None:
    ran = await offline_cli(
        "accounts", "list", env={"PIPEWORKS_DATABASE_URL": f"postgresql://pipe:{SECRET}@127.0.0.1:1/x"})
    line = assert_one_clean_line(ran)
    assert "PIPEWORKS_DATABASE_URL" in line and "127.0.0.1:1" in line, line
    assert SECRET not in ran.out + ran.err, ran


async def test_unreachable_temporal_is_one_line(offline_cli: Commands) -> None:
    ran = await offline_cli("status", "x", env={"PIPEWORKS_TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert "PIPEWORKS_TEMPORAL_ADDRESS" in assert_one_clean_line(ran)


# -- 3. accounts ----------------------------------------------------------------

async def test_accounts_add_list_and_update(cli: Commands, db: Connection) -> None:
    added = await cli("accounts", "add", "--id", "7", "--kind", "association", "--org-id", "A1",
                      "--name", "Ässociation One")
    assert added.code == 0 and "added" in added.out, added
    listed = await cli("accounts", "list", "--json")
    assert listed.code == 0, listed
    assert listed.json() == [{"id": 7, "kind": "association", "org_id": "A1",
                              "name": "Ässociation One"}]

    again = await cli("accounts", "add", "--id", "7", "--kind", "club", "--org-id", "K2",
                      "--name", "Klub Zwei")
    assert again.code == 0 and "updated" in again.out, again
    listed = await cli("accounts", "list", "--json")
    assert listed.json() == [{"id": 7, "kind": "club", "org_id": "K2", "name": "Klub Zwei"}]
    assert await db.fetchval("SELECT count(*) FROM sports.accounts") == 1
    table = await cli("accounts", "list")
    assert table.code == 0 and "Klub Zwei" in table.out, table


# -- 4. sync --------------------------------------------------------------------

async def test_sync_wait_json_prints_the_final_document(
    cli: Commands, db: Connection, upstream: UpstreamServer, temporal_env: WorkflowEnvironment,
) -> None:
    ran = await cli("sync", "--org-kind", "association", "--org-id", "A1", "--wait", "--json",
                    env={"PIPEWORKS_SPORTS_API_TOKEN": SECRET})
    assert ran.code == 0, ran
    assert SECRET not in ran.out + ran.err
    history = await temporal_env.client.get_workflow_handle(
        "sports-sync-association-A1").fetch_history()
    assert SECRET not in history.to_json()
    document = ran.json()
    assert_progress_document(document, "sports-sync-association-A1")
    assert document["status"] == "completed" and document["percent"] == 100.0, document
    assert [s["name"] for s in document["stages"]] == ["competitions", "teams", "games"]
    expected = expected_association(upstream.dataset, "A1")
    await assert_tables_equal(db, expected)
    assert document["records"]["staged"] == sum(len(rows) for rows in expected.values())

    since = upstream.dataset.clock.isoformat()
    again = await cli("sync", "--org-kind", "association", "--org-id", "A1", "--since", since,
                      "--wait", "--json")
    assert again.code == 0, again
    incremental = again.json()
    assert incremental["status"] == "completed", incremental
    assert incremental["stages"][2]["records"]["fetched"] == 0, incremental
    await assert_tables_equal(db, expected)


async def test_sync_account_with_live_progress(
    cli: Commands, db: Connection, upstream: UpstreamServer,
) -> None:
    added = await cli("accounts", "add", "--id", "7", "--kind", "association", "--org-id", "A2",
                      "--name", "Association Two")
    assert added.code == 0, added
    ran = await cli("sync", "--account", "7", "--wait")
    assert ran.code == 0, ran
    assert "sports-sync-account-7" in ran.out and "completed" in ran.out, ran
    await assert_tables_equal(db, expected_association(upstream.dataset, "A2"))


async def test_failed_sync_exits_1(
    cli: Commands, db: Connection, upstream: UpstreamServer,
) -> None:
    last = competition_ids(upstream, "A1")[-1]
    upstream.faults.set(path_status={f"/v1/competitions/{last}/games": 404})
    ran = await cli("sync", "--org-kind", "association", "--org-id", "A1", "--wait", "--json")
    assert ran.code == 1, ran
    document = ran.json()
    assert document["status"] == "failed" and document["rolled_back"] is True, document
    assert document["errors"]["permanent"] >= 1
    for table in SPORTS_TABLES:
        assert await db.fetchval(f"SELECT count(*) FROM {table}") == 0, table


# -- 5. attaching ---------------------------------------------------------------

async def test_second_sync_attaches_to_the_running_one(
    cli: Commands, settings: Settings, temporal_env: WorkflowEnvironment,
    upstream: UpstreamServer, db: Connection,
) -> None:
    upstream.faults.set(latency_ms=SLOW_MS)
    slow = {"PIPEWORKS_PAGE_SIZE": "3", "PIPEWORKS_COMPETITION_CONCURRENCY": "1"}
    args = ("sync", "--org-kind", "association", "--org-id", "A2", "--json")
    first = await cli(*args, env=slow)
    assert first.code == 0, first
    started = first.json()
    assert started["attached"] is False and started["run_id"], started
    assert started["workflow_id"] == "sports-sync-association-A2"

    second, third = await asyncio.gather(cli(*args, env=slow), cli(*args))
    for ran in (second, third):
        assert ran.code == 0, ran
        assert ran.json()["run_id"] == started["run_id"], (started, ran)
        assert ran.json()["attached"] is True, ran

    handle = temporal_env.client.get_workflow_handle("sports-sync-association-A2",
                                                     run_id=started["run_id"])
    result = await handle.result()
    assert result["status"] == "completed", result
    runs = [w async for w in temporal_env.client.list_workflows(
        f"WorkflowId = 'sports-sync-association-A2' AND TaskQueue = '{settings.task_queue}'")]
    assert [w.run_id for w in runs] == [started["run_id"]], runs
    await assert_tables_equal(db, expected_association(upstream.dataset, "A2"))


# -- 6. status, cancel, watch ---------------------------------------------------

async def test_cancel_rolls_back_and_watch_exits_1(
    cli: Commands, temporal_env: WorkflowEnvironment, db: Connection,
    upstream: UpstreamServer,
) -> None:
    workflow_id = "sports-sync-association-A1"
    upstream.faults.set(latency_ms=SLOW_MS)
    started = await cli("sync", "--org-kind", "association", "--org-id", "A1", "--json",
                        env={"PIPEWORKS_PAGE_SIZE": "3",
                             "PIPEWORKS_COMPETITION_CONCURRENCY": "1"})
    assert started.code == 0, started
    watch_argv = cli.pipeworks_argv("watch", workflow_id)
    watching = await cli.start(watch_argv)

    await wait_for_progress(temporal_env.client, workflow_id,
                            lambda p: p["stages"][1]["done"] >= 1)
    status = await cli("status", workflow_id, "--json")
    assert status.code == 0, status
    assert_progress_document(status.json(), workflow_id)
    assert status.json()["status"] == "running", status

    cancelled = await cli("cancel", workflow_id, "--reason", "the test says stop")
    assert cancelled.code == 0, cancelled
    final = await poll_status(cli, workflow_id, lambda d: d["status"] in FINAL)
    assert final["status"] == "cancelled" and final["rolled_back"] is True, final
    assert "the test says stop" in (final["message"] or ""), final
    for table in SPORTS_TABLES:
        assert await db.fetchval(f"SELECT count(*) FROM {table}") == 0, table

    watched = await finish(watching, watch_argv)
    assert watched.code == 1, watched
    assert "cancelled" in watched.out, watched
    again = await cli("watch", workflow_id)
    assert again.code == 1, again
    shown = await cli("status", workflow_id)
    assert shown.code == 0 and "cancelled" in shown.out, shown
    late = await cli("cancel", workflow_id)
    assert "no running workflow" in assert_one_clean_line(late)


# -- 7. the temporal CLI with the contract's JSON -------------------------------

async def test_temporal_cli_start_query_signal_and_bad_input(
    cli: Commands, temporal_env: WorkflowEnvironment, upstream: UpstreamServer,
) -> None:
    queue = cli.task_queue
    workflow_id = "sports-sync-association-A1"
    started = await cli.temporal(
        "start", "--type", "AccountSyncWorkflow", "--task-queue", queue,
        "--workflow-id", workflow_id, "--input", '{"org_kind": "association", "org_id": "A1"}')
    assert started.code == 0, started
    result = await cli.temporal("result", "--workflow-id", workflow_id, "-o", "json")
    assert result.code == 0, result
    queried = await cli.temporal("query", "--workflow-id", workflow_id, "--name", "progress",
                                 "-o", "json")
    assert queried.code == 0, queried
    document = json.loads(queried.out)["queryResult"][0]
    assert_progress_document(document, workflow_id)
    assert document["status"] == "completed", document

    # A slow run, stopped by the `cancel` signal.
    upstream.faults.set(latency_ms=SLOW_MS)
    slow_id = "sports-sync-association-A2"
    started = await cli.temporal(
        "start", "--type", "AccountSyncWorkflow", "--task-queue", queue,
        "--workflow-id", slow_id, "--input",
        '{"org_kind": "association", "org_id": "A2", "page_size": 3,'
        ' "competition_concurrency": 1}')
    assert started.code == 0, started
    await wait_for_progress(temporal_env.client, slow_id, lambda p: p["stages"][1]["done"] >= 1)
    signalled = await cli.temporal("signal", "--workflow-id", slow_id, "--name", "cancel",
                                   "--input", '{"reason": "x"}')
    assert signalled.code == 0, signalled
    with pytest.raises(WorkflowFailureError) as failed:
        await temporal_env.client.get_workflow_handle(slow_id).result()
    assert isinstance(failed.value.cause, ApplicationError)
    assert failed.value.cause.type == "Cancelled"
    queried = await cli.temporal("query", "--workflow-id", slow_id, "--name", "progress",
                                 "-o", "json")
    document = json.loads(queried.out)["queryResult"][0]
    assert document["status"] == "cancelled" and document["rolled_back"] is True, document
    assert "x" in (document["message"] or "")

    # Wrong JSON types fail the run at once with InvalidInput.
    bad_id = f"sports-sync-bad-input-{uuid.uuid4().hex[:6]}"
    started = await cli.temporal(
        "start", "--type", "AccountSyncWorkflow", "--task-queue", queue,
        "--workflow-id", bad_id, "--input", '{"account_id": "x"}')
    assert started.code == 0, started
    result = await cli.temporal("result", "--workflow-id", bad_id)
    assert result.code != 0 and "account_id" in result.out + result.err, result
    with pytest.raises(WorkflowFailureError) as failed:
        await temporal_env.client.get_workflow_handle(bad_id).result()
    assert isinstance(failed.value.cause, ApplicationError)
    assert failed.value.cause.type == "InvalidInput"
    assert "account_id" in failed.value.cause.message
    described = await cli.temporal("describe", "--workflow-id", bad_id, "-o", "json")
    assert described.code == 0, described
    assert "FAILED" in described.out.upper(), described
    status = await cli("status", bad_id, "--json")
    assert status.code == 0, status
    assert status.json()["status"] == "failed" and "account_id" in status.json()["message"]
    watched = await cli("watch", bad_id)
    assert watched.code == 1, watched


# -- 8. sync-all ----------------------------------------------------------------

async def test_sync_all_runs_one_child_per_account(
    cli: Commands, db: Connection, upstream: UpstreamServer,
) -> None:
    for account_id, org_id in (("1", "A1"), ("2", "A2")):
        added = await cli("accounts", "add", "--id", account_id, "--kind", "association",
                          "--org-id", org_id, "--name", f"Association {org_id}")
        assert added.code == 0, added
    ran = await cli("sync-all", "--kind", "association", "--wait", "--json")
    assert ran.code == 0, ran
    document = ran.json()
    assert_progress_document(document, "sports-sync-batch-association")
    assert document["status"] == "completed", document
    [stage] = document["stages"]
    assert stage["name"] == "accounts" and stage["total"] == stage["done"] == 2, stage
    one, two = (expected_association(upstream.dataset, a) for a in ("A1", "A2"))
    await assert_tables_equal(db, {t: one[t] | two[t] for t in SPORTS_TABLES})
