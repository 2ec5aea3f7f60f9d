"""`pipeworks schedule` as a user runs it: subprocesses against the session's Temporal dev
server. Schedules are namespace-wide, so every test names its own and deletes what it
created; a run a schedule starts goes to the test's own task queue."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleDescription,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    ScheduleSpec,
    WorkflowExecutionStatus,
)
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from devstack.sports.server import UpstreamServer
from pipeworks import priorities, search_attributes
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.commands import COMMAND_TIMEOUT, Commands, Ran
from tests.conftest import temporal_address
from tests.sports.helpers import assert_tables_equal, expected_association
from tests.sports.test_cli import assert_one_clean_line, pipeworks_env

SCHEDULED_BY = SearchAttributeKey.for_keyword("TemporalScheduledById")  # set by Temporal
NIGHTLY = ("--cron", "0 3 * * *", "--jitter", "10m")
BATCH = ("--", "sync-all", "--kind", "association")


def a_name(prefix: str = "nightly") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class ScheduleCommands(Commands):
    """Commands that remember the schedules they were asked to create (Temporal's list
    may not show one created a moment ago, so the cleanup does not rely on it)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.names: set[str] = set()

    async def __call__(self, *args: str, env: Mapping[str, str] | None = None,
                       timeout: float = COMMAND_TIMEOUT) -> Ran:
        if args[:2] == ("schedule", "create") and len(args) > 2:
            self.names.add(args[2])
        return await super().__call__(*args, env=env, timeout=timeout)


async def remove_schedules(client: Client, task_queue: str, names: set[str]) -> None:
    """Deletes the schedules that start runs on `task_queue`, and ends their runs."""
    listed = {s.id async for s in await client.list_schedules()}
    for name in sorted(names | listed):
        handle = client.get_schedule_handle(name)
        try:
            described = await handle.describe()
        except RPCError:
            continue
        action = described.schedule.action
        if not (isinstance(action, ScheduleActionStartWorkflow)
                and action.task_queue == task_queue):
            continue
        await handle.delete()
        # Recent actions too: under allow-all Temporal tracks no running actions.
        started = [*described.info.running_actions,
                   *(recent.action for recent in described.info.recent_actions)]
        for workflow_id in {getattr(a, "workflow_id", "") for a in started} - {""}:
            await _terminate(client, workflow_id)


async def _terminate(client: Client, workflow_id: str) -> None:
    handle = client.get_workflow_handle(workflow_id)
    try:
        if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            await handle.terminate("test ended")
    except RPCError:
        pass


async def _commands(settings: Settings, temporal_env: WorkflowEnvironment, tmp_path: Path
                    ) -> AsyncIterator[Commands]:
    commands = ScheduleCommands(pipeworks_env(settings), tmp_path,
                                temporal_address(temporal_env), settings.task_queue)
    yield commands
    await commands.close()
    await remove_schedules(temporal_env.client, settings.task_queue, commands.names)


@pytest_asyncio.fixture(loop_scope="session")
async def cli(settings: Settings, temporal_env: WorkflowEnvironment, tmp_path: Path
              ) -> AsyncIterator[Commands]:
    """Commands with no worker on the task queue: a started run stays running."""
    async for commands in _commands(settings, temporal_env, tmp_path):
        yield commands


@pytest_asyncio.fixture(loop_scope="session")
async def worker_cli(settings: Settings, worker: Worker, temporal_env: WorkflowEnvironment,
                     tmp_path: Path) -> AsyncIterator[Commands]:
    """Commands with a worker polling the task queue; torn down before the worker."""
    async for commands in _commands(settings, temporal_env, tmp_path):
        yield commands


async def describe(client: Client, name: str) -> ScheduleDescription:
    return await client.get_schedule_handle(name).describe()


async def assert_no_schedule(client: Client, name: str) -> None:
    with pytest.raises(RPCError) as missing:
        await describe(client, name)
    assert missing.value.status == RPCStatusCode.NOT_FOUND, missing.value


async def listed(cli: Commands, predicate: Callable[[list[dict[str, Any]]], bool],
                 timeout: float = 15.0) -> list[dict[str, Any]]:
    """`schedule list --json` once it satisfies `predicate` (Temporal's list of schedules
    is eventually consistent)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        ran = await cli("schedule", "list", "--json")
        assert ran.code == 0, ran
        documents: list[dict[str, Any]] = ran.json()
        if predicate(documents):
            return documents
        assert asyncio.get_running_loop().time() < deadline, documents
        await asyncio.sleep(0.3)


def entry(documents: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((d for d in documents if d["name"] == name), None)


def moment(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


async def ok(ran: Ran) -> Ran:
    assert ran.code == 0, ran
    return ran


# -- 1. the life of a schedule --------------------------------------------------------

async def test_create_list_pause_unpause_delete(
    cli: Commands, settings: Settings, temporal_env: WorkflowEnvironment,
) -> None:
    client, name = temporal_env.client, a_name()
    created = await ok(await cli("schedule", "create", name, *NIGHTLY, "--note", "off-peak",
                                 *BATCH))
    assert name in created.out and "sync-all --kind association" in created.out, created

    # What Temporal holds: the cron at 03:00 UTC, jitter 10 min, overlap skip by default,
    # and the action `sync-all` would start, on the test's task queue.
    held = await describe(client, name)
    assert held.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
    assert held.schedule.spec.jitter == timedelta(minutes=10)
    assert held.schedule.spec.time_zone_name == "UTC"
    [calendar] = held.schedule.spec.calendars  # the server keeps the cron as a calendar
    assert [(r.start, r.end) for r in calendar.hour] == [(3, 3)]
    assert [(r.start, r.end) for r in calendar.minute] == [(0, 0)]
    action = held.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.workflow == "BatchSyncWorkflow" and action.task_queue == settings.task_queue
    assert action.id == f"sports-sync-batch-association-schedule-{name}"
    # Background work: behind on-demand syncs, and found by its search attributes.
    assert action.priority.priority_key == priorities.BATCH.priority_key
    assert action.typed_search_attributes.get(search_attributes.PIPELINE) == "sports_sync_batch"
    [payload] = await client.data_converter.decode(action.args)
    assert payload["kind"] == "association" and payload["max_concurrent"] == 4, payload
    assert payload["page_size"] == settings.page_size, payload  # tuning from the settings

    described = (await ok(await cli("schedule", "describe", name, "--json"))).json()
    assert described["overlap"] == "skip" and described["jitter_seconds"] == 600, described
    assert described["spec"] == "cron 0 3 * * *" and described["timezone"] == "UTC"
    # Each of the next runs falls between 03:00 and 03:10 UTC, and the jitter spreads them.
    next_runs = [moment(t) for t in described["next_runs"]]
    assert len(next_runs) == 5, described
    assert all(t.hour == 3 and t.minute < 10 for t in next_runs), next_runs
    assert len({(t.minute, t.second) for t in next_runs}) > 1, next_runs
    assert next_runs[0] - datetime.now(UTC) < timedelta(days=1, minutes=10)

    documents = await listed(cli, lambda ds: entry(ds, name) is not None)
    shown = entry(documents, name)
    assert shown is not None
    assert shown["next_run"] == described["next_runs"][0], shown
    assert shown["paused"] is False and shown["note"] == "off-peak", shown
    assert shown["last_run"] is None and shown["action"] == "sync-all --kind association"
    table = await ok(await cli("schedule", "list"))
    assert name in table.out and "0 3 * * * UTC, jitter 10m" in table.out, table

    await ok(await cli("schedule", "pause", name, "--note", "upstream maintenance"))
    assert (await describe(client, name)).schedule.state.paused is True
    shown = entry(await listed(cli, lambda ds: entry(ds, name) is not None), name)
    assert shown is not None
    assert shown["paused"] is True and shown["note"] == "upstream maintenance", shown
    assert shown["next_run"] is None, shown

    await ok(await cli("schedule", "unpause", name))
    shown = entry(await listed(cli, lambda ds: entry(ds, name) is not None), name)
    assert shown is not None and shown["paused"] is False and shown["next_run"], shown

    deleted = await ok(await cli("schedule", "delete", name))
    assert name in deleted.out, deleted
    await assert_no_schedule(client, name)
    await listed(cli, lambda ds: entry(ds, name) is None)
    gone = assert_one_clean_line(await cli("schedule", "describe", name))
    assert f"no schedule named '{name}'" in gone, gone


async def test_interval_offset_paused_and_another_overlap_policy(
    cli: Commands, temporal_env: WorkflowEnvironment,
) -> None:
    name = a_name("daily-account")
    await ok(await cli("schedule", "create", name, "--every", "24h", "--offset", "3h",
                       "--overlap", "buffer-one", "--paused", "--", "sync", "--account", "3",
                       "--on-failure", "isolate", env={"PIPEWORKS_PAGE_SIZE": "7"}))
    held = await describe(temporal_env.client, name)
    assert held.schedule.spec.intervals == [
        ScheduleIntervalSpec(every=timedelta(hours=24), offset=timedelta(hours=3))]
    assert held.schedule.spec.jitter is None
    assert held.schedule.policy.overlap == ScheduleOverlapPolicy.BUFFER_ONE
    assert held.schedule.state.paused is True

    described = (await ok(await cli("schedule", "describe", name, "--json"))).json()
    assert described["spec"] == "every 1d offset 3h" and described["overlap"] == "buffer-one"
    assert described["workflow"] == "AccountSyncWorkflow", described
    assert described["workflow_id_prefix"] == f"sports-sync-account-3-schedule-{name}"
    assert described["input"]["account_id"] == 3 and described["input"]["page_size"] == 7
    assert described["action"] == "sync --account 3 --on-failure isolate", described
    assert described["paused"] is True and described["next_run"] is None, described
    assert all(moment(t).time().isoformat() == "03:00:00" for t in described["next_runs"])


async def test_list_shows_only_schedules_of_this_task_queue(
    cli: Commands, temporal_env: WorkflowEnvironment,
) -> None:
    mine, foreign = a_name("mine"), a_name("foreign")
    await ok(await cli("schedule", "create", mine, *NIGHTLY, *BATCH))
    handle = await temporal_env.client.create_schedule(foreign, Schedule(
        action=ScheduleActionStartWorkflow("BatchSyncWorkflow", {"kind": "club"},
                                           id=f"x-{foreign}", task_queue="someone-else"),
        spec=ScheduleSpec(cron_expressions=["0 4 * * *"])))
    try:
        names = [d["name"] for d in await listed(
            cli, lambda ds: entry(ds, mine) is not None)]
        assert mine in names and foreign not in names, names
    finally:
        await handle.delete()


# -- 2. runs from a schedule ----------------------------------------------------------

async def test_trigger_starts_a_batch_sync_that_completes(
    worker_cli: Commands, settings: Settings, temporal_env: WorkflowEnvironment,
    db: Connection, upstream: UpstreamServer,
) -> None:
    cli, client, name = worker_cli, temporal_env.client, a_name()
    await ok(await cli("accounts", "add", "--id", "1", "--kind", "association", "--org-id",
                       "A1", "--name", "Association One"))
    await ok(await cli("schedule", "create", name, *NIGHTLY, *BATCH))

    triggered = (await ok(await cli("schedule", "trigger", name, "--json"))).json()
    assert triggered["outcome"] == "started", triggered
    workflow_id = triggered["workflow_id"]
    # Temporal appends the scheduled time to the schedule's workflow id prefix.
    assert workflow_id.startswith(f"sports-sync-batch-association-schedule-{name}-20"), (
        triggered)
    handle = client.get_workflow_handle(workflow_id, run_id=triggered["run_id"])
    result = await asyncio.wait_for(handle.result(), 60)
    assert result["status"] == "completed", result
    [stage] = result["stages"]
    assert stage["name"] == "accounts" and stage["done"] == 1, result

    run = await handle.describe()
    assert run.task_queue == settings.task_queue and run.workflow_type == "BatchSyncWorkflow"
    assert run.typed_search_attributes.get(SCHEDULED_BY) == name, run.typed_search_attributes
    row = await db.fetchrow("SELECT status, pipeline FROM pipeline.runs WHERE workflow_id = $1",
                            workflow_id)
    assert row is not None and row["status"] == "completed", row
    await assert_tables_equal(db, expected_association(upstream.dataset, "A1"))

    shown = entry(await listed(cli, lambda ds: entry(ds, name) is not None), name)
    assert shown is not None and shown["last_run"] is not None, shown
    assert shown["last_run"]["workflow_id"] == workflow_id, shown
    assert shown["last_run"]["status"] == "completed", shown
    table = await ok(await cli("schedule", "list"))
    assert "completed" in table.out, table


async def test_trigger_honours_the_overlap_policy(
    cli: Commands, temporal_env: WorkflowEnvironment,
) -> None:
    """No worker polls the test's task queue, so a started run stays running."""
    skip, allow = a_name("skip"), a_name("allow")
    await ok(await cli("schedule", "create", skip, *NIGHTLY, "--", "sync", "--account", "1"))
    await ok(await cli("schedule", "create", allow, *NIGHTLY, "--overlap", "allow-all",
                       "--", "sync", "--account", "2"))

    first = (await ok(await cli("schedule", "trigger", skip, "--json"))).json()
    assert first["outcome"] == "started", first
    second = (await ok(await cli("schedule", "trigger", skip, "--json"))).json()
    assert second["outcome"] == "skipped" and second["running"] == [first["workflow_id"]]
    said = await ok(await cli("schedule", "trigger", skip))
    assert "skipped" in said.out and first["workflow_id"] in said.out, said
    info = (await describe(temporal_env.client, skip)).info
    assert info.num_actions == 1 and info.num_actions_skipped_overlap == 2, info

    started = []
    for _ in range(2):
        # A scheduled run's id ends in its time to the second: two triggers within one
        # second would ask for the same id, and Temporal starts that run once.
        await asyncio.sleep(1.1)
        started.append((await ok(await cli("schedule", "trigger", allow, "--json"))).json())
    assert [s["outcome"] for s in started] == ["started", "started"], started
    assert started[0]["workflow_id"] != started[1]["workflow_id"], started
    for one in started:  # allow-all: both run (Temporal then tracks no running actions)
        run = await temporal_env.client.get_workflow_handle(one["workflow_id"]).describe()
        assert run.status == WorkflowExecutionStatus.RUNNING, one


# -- 3. bad input -----------------------------------------------------------------------

@pytest.mark.parametrize(("args", "words"), [
    (["--", "sync-all", "--kind", "association"], "--cron"),
    (["--cron", "0 3 * * *", "--every", "1h", *BATCH], "not both"),
    (["--every", "0s", *BATCH], "--every"),
    (["--every", "banana", *BATCH], "--every"),
    (["--every", "1h", "--offset", "2h", *BATCH], "--offset"),
    (["--cron", "0 3 * * *", "--offset", "1h", *BATCH], "--offset"),
    (["--cron", "0 3 * * *", "--jitter", "-10m", *BATCH], "--jitter: must not be negative"),
    (["--cron", "0 3 * * *", "--jitter", "10x", *BATCH], "--jitter"),
    (["--cron", "0 3 * * *", "--overlap", "sometimes", *BATCH], "--overlap"),
    (["--cron", "61 3 * * *", *BATCH], "--cron"),
    (["--cron", "every night", *BATCH], "--cron"),
    (["--cron", "0 3 * * *", "--timezone", "Mars/Olympus", *BATCH], "--timezone"),
    (["--every", "1h", "--timezone", "Europe/Zurich", *BATCH], "--timezone"),
    (["--cron", "0 3 * * *"], "sync-all"),
    (["--cron", "0 3 * * *", "--", "frobnicate"], "frobnicate"),
    (["--cron", "0 3 * * *", "--", "sync-all", "--kind", "everything"], "--kind"),
    (["--cron", "0 3 * * *", "--", "sync-all"], "--kind"),
    (["--cron", "0 3 * * *", "--", "sync-all", "--kind", "club", "--max-concurrent", "0"],
     "--max-concurrent"),
    (["--cron", "0 3 * * *", "--", "sync", "--account", "1", "--org-kind", "club",
      "--org-id", "K1"], "not both"),
    (["--cron", "0 3 * * *", "--", "sync"], "--account"),
    (["--cron", "0 3 * * *", "--", "sync", "--org-kind", "team", "--org-id", "T1"],
     "--org-kind"),
    (["--cron", "0 3 * * *", "--", "sync", "--account", "1", "--since",
      "2025-01-01T00:00:00Z"], "--since"),
])
async def test_bad_create_exits_2_and_creates_nothing(
    cli: Commands, temporal_env: WorkflowEnvironment, args: list[str], words: str,
) -> None:
    name = a_name("bad")
    line = assert_one_clean_line(await cli("schedule", "create", name, *args))
    assert line.startswith("pipeworks: ") and words in line, line
    await assert_no_schedule(temporal_env.client, name)


async def test_bad_name_and_bad_settings_exit_2(
    cli: Commands, temporal_env: WorkflowEnvironment,
) -> None:
    line = assert_one_clean_line(await cli("schedule", "create", "two words", *NIGHTLY, *BATCH))
    assert "NAME" in line, line
    name = a_name("settings")
    line = assert_one_clean_line(await cli("schedule", "create", name, *NIGHTLY, *BATCH,
                                           env={"PIPEWORKS_PAGE_SIZE": "0"}))
    assert line.startswith("pipeworks: PIPEWORKS_PAGE_SIZE: "), line
    line = assert_one_clean_line(await cli(
        "schedule", "create", name, *NIGHTLY, *BATCH,
        env={"PIPEWORKS_TEMPORAL_ADDRESS": "127.0.0.1:1"}))
    assert "PIPEWORKS_TEMPORAL_ADDRESS" in line, line
    await assert_no_schedule(temporal_env.client, name)


async def test_duplicate_name_exits_2_and_keeps_the_first(
    cli: Commands, temporal_env: WorkflowEnvironment,
) -> None:
    name = a_name()
    await ok(await cli("schedule", "create", name, *NIGHTLY, *BATCH))
    line = assert_one_clean_line(await cli("schedule", "create", name, "--every", "1h",
                                           "--", "sync", "--account", "1"))
    assert "already exists" in line and name in line, line
    held = await describe(temporal_env.client, name)
    assert held.schedule.spec.intervals == [] and held.schedule.spec.jitter == timedelta(
        minutes=10), held.schedule.spec


@pytest.mark.parametrize("command", ["describe", "pause", "unpause", "trigger", "delete"])
async def test_unknown_schedule_exits_2(cli: Commands, command: str) -> None:
    name = a_name("missing")
    line = assert_one_clean_line(await cli("schedule", command, name))
    assert line == f"pipeworks: no schedule named '{name}'", line


async def test_help_for_the_action_creates_nothing(
    cli: Commands, temporal_env: WorkflowEnvironment,
) -> None:
    name = a_name("help")
    helped = await ok(await cli("schedule", "create", name, *NIGHTLY, "--", "sync-all",
                                "--help"))
    assert "--max-concurrent" in helped.out, helped
    await assert_no_schedule(temporal_env.client, name)
    group = await cli("schedule")
    assert group.code == 2 and "trigger" in group.err and "Traceback" not in group.err, group
