"""Long waits on the time-skipping test server: retry backoff, Retry-After and the
run deadline pass in virtual time, so these tests wait for logic, not the clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from pydantic import SecretStr
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from devstack.sports.server import UpstreamServer
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.sports.helpers import (
    assert_tables_equal,
    checksums,
    expected_association,
    failure_of,
    start_sync,
)
from tests.sports.test_alerts import Receiver
from tests.worker import running_worker


@pytest_asyncio.fixture(loop_scope="session")
async def skipping_worker(skipping_env: WorkflowEnvironment, settings: Settings, db: Connection
                          ) -> AsyncIterator[Settings]:
    async with running_worker(settings, skipping_env.client):
        yield settings


async def test_retry_after_longer_than_an_activity_waits_is_honoured_by_temporal(
    skipping_env: WorkflowEnvironment, skipping_worker: Settings, db: Connection,
    upstream: UpstreamServer,
) -> None:
    # Three 429s asking for 90 s each: too long to sleep inside an activity, so the
    # activity fails as transient and Temporal retries it after the delay.
    upstream.faults.set(fail_next=3, fail_next_status=429, retry_after_s=90)
    handle = await start_sync(skipping_env.client, skipping_worker, org_kind="association",
                              org_id="A1")
    result = await handle.result()
    assert result["status"] == "completed", result
    assert result["errors"]["transient"] >= 3
    await assert_tables_equal(db, expected_association(upstream.dataset, "A1"))


async def test_run_deadline_during_retry_backoff_fails_and_rolls_back(
    skipping_env: WorkflowEnvironment, skipping_worker: Settings, db: Connection,
    upstream: UpstreamServer,
) -> None:
    first = upstream.dataset.expected_competitions("A1")[0]["id"]
    upstream.faults.set(path_status={f"/v1/competitions/{first}/games": 503})
    before = await checksums(db)
    handle = await start_sync(skipping_env.client, skipping_worker, org_kind="association",
                              org_id="A1", deadline_seconds=45)
    cause = await failure_of(handle)
    assert isinstance(cause, ApplicationError)
    assert "deadline" in cause.message, cause.message
    progress = await handle.query("progress")
    assert progress["status"] == "failed" and progress["rolled_back"] is True
    assert progress["errors"]["system"] >= 1  # the deadline itself
    assert await checksums(db) == before


async def test_an_outage_longer_than_the_retry_budget_pauses_and_resumes(
    skipping_env: WorkflowEnvironment, settings: Settings, db: Connection,
    upstream: UpstreamServer,
) -> None:
    # 30 failures: more than one fetch activity's whole budget (8 attempts x 3 requests).
    first = upstream.dataset.expected_competitions("A1")[0]["id"]
    upstream.faults.set(path_status={f"/v1/competitions/{first}/games": 503},
                        path_fail_count=30)
    receiver = Receiver()
    alerting = settings.model_copy(update={"alert_webhook_url": SecretStr(receiver.url)})
    try:
        async with running_worker(alerting, skipping_env.client):
            handle = await start_sync(skipping_env.client, alerting, org_kind="association",
                                      org_id="A1")
            result = await handle.result()
    finally:
        receiver.close()
    # The circuit breaker opened once (an alert says so), then closed after one probe.
    assert result["breakers"]["sports_api"]["opened"] == 1, result
    assert result["breakers"]["sports_api"]["state"] == "closed", result
    [alert] = receiver.received
    assert alert["pipeworks"]["status"] == "breaker_open"
    assert alert["pipeworks"]["category"] == "transient"
    assert "circuit sports_api open" in alert["pipeworks"]["message"]
    assert result["status"] == "completed", result
    assert result["errors"]["transient"] >= 30
    await assert_tables_equal(db, expected_association(upstream.dataset, "A1"))
    history = await handle.fetch_history()
    pauses = [e for e in history.events if e.HasField("timer_started_event_attributes")]
    assert len(pauses) == 1, "the run should have paused once for the outage"


async def test_an_outage_beyond_the_outage_budget_fails_the_run(
    skipping_env: WorkflowEnvironment, skipping_worker: Settings, db: Connection,
    upstream: UpstreamServer,
) -> None:
    before = await checksums(db)
    first = upstream.dataset.expected_competitions("A1")[0]["id"]
    upstream.faults.set(path_status={f"/v1/competitions/{first}/games": 503})
    handle = await start_sync(skipping_env.client, skipping_worker, org_kind="association",
                              org_id="A1", outage_budget_seconds=200)
    cause = await failure_of(handle)
    assert isinstance(cause, ApplicationError) and cause.type == "TransientError"
    progress = await handle.query("progress")
    assert progress["status"] == "failed" and progress["rolled_back"] is True
    history = await handle.fetch_history()
    pauses = [e for e in history.events if e.HasField("timer_started_event_attributes")]
    assert len(pauses) == 2  # 60 s + 120 s fit the 200 s budget, 240 s more would not
    assert await checksums(db) == before
