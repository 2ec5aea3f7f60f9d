"""Upstream faults the contract warns about: each ends in exact data or a clean,
categorised failure with everything rolled back."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

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
from tests.worker import running_worker


async def run_to_end(env: WorkflowEnvironment, settings: Settings, **options: Any
                     ) -> tuple[Any, dict[str, Any]]:
    handle = await start_sync(env.client, settings, org_kind="association", org_id="A1",
                              **options)
    with contextlib.suppress(Exception):  # the progress document says how it ended
        await handle.result()
    return handle, await handle.query("progress")


async def test_a_looping_cursor_fails_as_a_data_error_and_rolls_back(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    before = await checksums(db)
    looping = upstream.dataset.expected_competitions("A1")[1]["id"]
    upstream.faults.set(cursor_loop_paths=(f"/v1/competitions/{looping}/games",))
    handle, progress = await run_to_end(temporal_env, settings, page_size=5)
    cause = await failure_of(handle)
    assert isinstance(cause, ApplicationError) and cause.type == "DataError"
    assert "next_cursor repeats" in cause.message
    assert progress["status"] == "failed" and progress["rolled_back"] is True
    assert progress["errors"]["data"] == 1
    assert await checksums(db) == before


async def test_malformed_bodies_are_retried_then_fail_as_data(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    before = await checksums(db)
    upstream.faults.set(malformed_rate=1.0, seed=2)
    handle, progress = await run_to_end(temporal_env, settings)
    cause = await failure_of(handle)
    assert isinstance(cause, ApplicationError) and cause.type == "DataError", cause
    assert "malformed" in cause.message or "JSON" in cause.message
    assert progress["status"] == "failed"
    assert progress["errors"]["data"] >= 1
    assert await checksums(db) == before


async def test_rate_limit_storm_never_retries_before_retry_after(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    first_seq = upstream.stats.total
    upstream.faults.set(rate_limit_rate=0.3, retry_after_s=1, seed=9)
    _, progress = await run_to_end(temporal_env, settings, page_size=10)
    assert progress["status"] == "completed", progress
    await assert_tables_equal(db, expected_association(upstream.dataset, "A1"))
    log = [e for e in upstream.stats.log() if e["seq"] > first_seq]
    limited = [e for e in log if e["status"] == 429]
    assert len(limited) >= 3, "the storm should have limited several requests"
    assert progress["errors"]["transient"] >= len(limited)
    for entry in limited:
        answered = entry["t"] + entry["duration_ms"] / 1000
        retry = next(e for e in log if e["seq"] > entry["seq"]
                     and (e["path"], e["query"]) == (entry["path"], entry["query"]))
        assert retry["t"] >= answered + 1.0 - 0.01, (entry, retry)


async def test_items_repeated_across_pages_are_staged_once(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    competition = upstream.dataset.expected_competitions("A1")[0]["id"]
    games = upstream.dataset.expected_games(competition)
    upstream.dataset.duplicate_item(competition, games[0]["id"])  # last page, too
    upstream.dataset.duplicate_item(competition, games[-1]["id"], position=0)
    _, progress = await run_to_end(temporal_env, settings, page_size=4)
    assert progress["status"] == "completed", progress
    assert progress["records"]["invalid"] == 0
    assert progress["stages"][2]["records"]["fetched"] == (
        progress["stages"][2]["records"]["staged"] + 2)
    await assert_tables_equal(db, expected_association(upstream.dataset, "A1"))


@pytest_asyncio.fixture(loop_scope="session")
async def impatient_worker(settings: Settings, temporal_env: WorkflowEnvironment,
                           db: Connection) -> AsyncIterator[Settings]:
    """A worker whose HTTP client gives up on a response after 0.5 s."""
    impatient = settings.model_copy(update={"http_timeout_seconds": 0.5})
    async with running_worker(impatient, temporal_env.client):
        yield impatient


async def test_responses_slower_than_the_client_timeout_are_retried(
    temporal_env: WorkflowEnvironment, impatient_worker: Settings, db: Connection,
    upstream: UpstreamServer,
) -> None:
    upstream.faults.set(slow_rate=0.25, slow_ms=800, seed=4)
    _, progress = await run_to_end(temporal_env, impatient_worker, page_size=10)
    assert progress["status"] == "completed", progress
    assert progress["errors"]["transient"] >= 1
    await assert_tables_equal(db, expected_association(upstream.dataset, "A1"))
