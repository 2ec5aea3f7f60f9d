"""`pipeworks worker --processes N`: N real worker processes under one supervisor share a
run, a dead one is started again, and SIGTERM drains them all and leaves none behind."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import psutil
import pytest
from temporalio.api.enums.v1 import EventType, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from devstack.sports.server import UpstreamServer
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.sports.helpers import assert_tables_equal, expected_association, start_sync
from tests.sports.test_worker_process import worker_env
from workers.supervisor import child_environment, shifted

pytestmark = pytest.mark.slow


def test_each_child_gets_its_own_ports(settings: Settings) -> None:
    assert shifted("127.0.0.1:9464", 2) == "127.0.0.1:9466"
    assert shifted("[::1]:9465", 4) == "[::1]:9469"
    assert shifted("", 2) == ""
    assert shifted("127.0.0.1:0", 2) == "127.0.0.1:0"  # any free port, for each child
    config = settings.model_copy(update={"metrics_address": "127.0.0.1:9464",
                                         "health_address": "127.0.0.1:9465"})
    ports = [(child_environment(config, i)["PIPEWORKS_METRICS_ADDRESS"],
              child_environment(config, i)["PIPEWORKS_HEALTH_ADDRESS"]) for i in range(3)]
    assert ports == [("127.0.0.1:9464", "127.0.0.1:9465"), ("127.0.0.1:9466", "127.0.0.1:9467"),
                     ("127.0.0.1:9468", "127.0.0.1:9469")]
    assert child_environment(config, 1)["PIPEWORKS_WORKER_PROCESSES"] == "1"


async def polling_pids(client: Client, task_queue: str) -> set[int]:
    request = DescribeTaskQueueRequest(
        namespace=client.namespace, task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)
    pollers = (await client.workflow_service.describe_task_queue(request)).pollers
    return {int(p.identity.split("@")[0]) for p in pollers}


async def wait_for_children(client: Client, settings: Settings, supervisor: int, count: int,
                            not_in: set[int] = frozenset(), timeout: float = 60.0) -> set[int]:
    """The supervisor's live children, once `count` of them (none of `not_in`) poll."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        children = {c.pid for c in psutil.Process(supervisor).children()} - set(not_in)
        if len(children & await polling_pids(client, settings.task_queue)) >= count:
            return children
        assert asyncio.get_running_loop().time() < deadline, f"children {children} not polling"
        await asyncio.sleep(0.2)


async def test_processes_share_a_run_restart_when_killed_and_drain_on_sigterm(
    temporal_env: WorkflowEnvironment, settings: Settings, db: Connection,
    upstream: UpstreamServer, tmp_path: Path,
) -> None:
    upstream.faults.set(latency_ms=40)
    log = tmp_path / "workers.log"
    # Metrics and health off: each child would otherwise take the ports + 2i. Two
    # activity slots each: a run of 4 competitions at once needs both children.
    env = {**worker_env(settings), "PIPEWORKS_METRICS_ADDRESS": "",
           "PIPEWORKS_HEALTH_ADDRESS": "", "PIPEWORKS_MAX_CONCURRENT_ACTIVITIES": "2"}
    supervisor = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "starters.cli", "worker", "--processes", "2", env=env,
        stdout=log.open("ab"), stderr=asyncio.subprocess.STDOUT)
    children: set[int] = set()
    try:
        first = await wait_for_children(temporal_env.client, settings, supervisor.pid, 2)
        children |= first
        handle = await start_sync(temporal_env.client, settings, org_kind="association",
                                  org_id="A1", page_size=3, competition_concurrency=4)
        result = await asyncio.wait_for(handle.result(), timeout=120)
        assert result["status"] == "completed", result
        await assert_tables_equal(db, expected_association(upstream.dataset, "A1"))
        history = await handle.fetch_history()
        identities = {e.activity_task_started_event_attributes.identity
                      for e in history.events
                      if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED}
        workers = {int(identity.split("@")[0]) for identity in identities}
        assert workers == first, f"activities ran on {workers}, children are {first}"

        # A child that dies is started again.
        killed = min(first)
        psutil.Process(killed).kill()
        again = await wait_for_children(temporal_env.client, settings, supervisor.pid, 2,
                                        not_in={killed})
        children |= again
        assert len(again) == 2 and killed not in again

        supervisor.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(supervisor.wait(), timeout=60) == 0
    finally:
        if supervisor.returncode is None:
            supervisor.kill()
            await supervisor.wait()
        for pid in children:  # whatever happened above, no worker outlives the test
            if psutil.pid_exists(pid):
                psutil.Process(pid).kill()
    text = log.read_text()
    assert "worker processes started" in text and "a worker process died" in text
    assert text.count("worker stopped") >= 2 and "worker processes stopped" in text
    assert not [pid for pid in children if psutil.pid_exists(pid)
                and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]


async def test_workers_drain_and_exit_when_the_supervisor_is_killed(
    temporal_env: WorkflowEnvironment, settings: Settings, tmp_path: Path,
) -> None:
    env = {**worker_env(settings), "PIPEWORKS_METRICS_ADDRESS": "",
           "PIPEWORKS_HEALTH_ADDRESS": ""}
    log = tmp_path / "workers.log"
    supervisor = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "starters.cli", "worker", "--processes", "2", env=env,
        stdout=log.open("ab"), stderr=asyncio.subprocess.STDOUT)
    children: set[int] = set()
    try:
        children = await wait_for_children(temporal_env.client, settings, supervisor.pid, 2)
        supervisor.kill()  # SIGKILL: no chance to stop its children itself
        await supervisor.wait()
        deadline = asyncio.get_running_loop().time() + 30
        while any(psutil.pid_exists(pid) and psutil.Process(pid).status()
                  != psutil.STATUS_ZOMBIE for pid in children):
            assert asyncio.get_running_loop().time() < deadline, "workers outlived it"
            await asyncio.sleep(0.1)
    finally:
        if supervisor.returncode is None:
            supervisor.kill()
            await supervisor.wait()
        for pid in children:
            if psutil.pid_exists(pid):
                psutil.Process(pid).kill()
    assert log.read_text().count("worker stopped") == 2  # each drained, not killed
