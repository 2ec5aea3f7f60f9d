from __future__ import annotations

import asyncio
import http.client
import os
from collections.abc import Callable
from datetime import timedelta

import pytest
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionStatus

from devstack.processes import PortInUseError
from devstack.temporal import TemporalDevServer, temporal_cli_path, test_server_path
from tests.devstack.helpers import wait_gone

TemporalFactory = Callable[..., TemporalDevServer]
WORKFLOW_ID = "devstack-persistence-check"


async def _start_unserved_workflow(address: str) -> str:
    client = await Client.connect(address)
    # Nobody polls this task queue, so the workflow just sits there: enough to prove that
    # the server stored it.
    handle = await client.start_workflow(
        "NoSuchWorkflow",
        id=WORKFLOW_ID,
        task_queue="devstack-nobody-polls",
        execution_timeout=timedelta(hours=1),
    )
    # Visibility (what list_workflows reads) is updated asynchronously after the start.
    for _ in range(100):
        ids = [wf.id async for wf in client.list_workflows()]
        if WORKFLOW_ID in ids:
            break
        await asyncio.sleep(0.05)
    assert WORKFLOW_ID in ids
    assert handle.result_run_id is not None
    return handle.result_run_id


async def _describe(address: str) -> tuple[str | None, WorkflowExecutionStatus | None]:
    client = await Client.connect(address)
    desc = await client.get_workflow_handle(WORKFLOW_ID).describe()
    return desc.run_id, desc.status


def _ui_status(url: str) -> int:
    host_port = url.removeprefix("http://")
    host, port = host_port.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request("GET", "/")
        return conn.getresponse().status
    finally:
        conn.close()


def test_workflow_survives_server_restart(make_temporal: TemporalFactory) -> None:
    server = make_temporal(search_attributes={"PipeworksSport": "Keyword"})
    assert server.running_pid() is None

    address = server.start()
    assert address == server.address == f"127.0.0.1:{server.port}"
    assert server.ui_url == f"http://127.0.0.1:{server.ui_port}"
    assert _ui_status(server.ui_url) == 200
    pid = server.running_pid()
    assert pid is not None
    assert server.start() == address, "start is idempotent"
    assert server.running_pid() == pid

    run_id = asyncio.run(_start_unserved_workflow(address))

    # A later `dev down` only knows the state dir.
    again = TemporalDevServer(server.state_dir, port=server.port, ui_port=server.ui_port)
    assert again.running_pid() == pid
    assert again.stop() is True
    assert wait_gone(pid)
    assert server.running_pid() is None
    assert (server.state_dir / "temporal.db").exists()

    server.start()
    assert asyncio.run(_describe(address)) == (run_id, WorkflowExecutionStatus.RUNNING)
    assert server.stop() is True
    assert server.stop() is False


def test_custom_namespace_and_late_search_attribute(make_temporal: TemporalFactory) -> None:
    first = make_temporal(namespace="pipeworks-test")
    first.start()
    first.stop()
    # start-dev ignores --search-attribute for an existing database; start() must add it.
    second = make_temporal(
        namespace="pipeworks-test",
        port=first.port,
        ui_port=first.ui_port,
        search_attributes={"PipeworksLeague": "KeywordList"},
    )
    second.start()

    async def attributes() -> set[str]:
        client = await Client.connect(second.address, namespace="pipeworks-test")
        resp = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace="pipeworks-test")
        )
        return set(resp.custom_attributes)

    assert "PipeworksLeague" in asyncio.run(attributes())


def test_port_taken_by_foreign_process(make_temporal: TemporalFactory, busy_port: int) -> None:
    server = make_temporal(port=busy_port)
    with pytest.raises(PortInUseError, match=str(busy_port)):
        server.start()
    assert server.running_pid() is None

    ui_clash = make_temporal(ui_port=busy_port)
    with pytest.raises(PortInUseError, match=str(busy_port)):
        ui_clash.start()
    assert ui_clash.running_pid() is None


def test_binaries_are_found() -> None:
    for path in (temporal_cli_path(), test_server_path()):
        assert os.access(path, os.X_OK)
