"""PIPEWORKS_UPSTREAM_RATE_LIMIT holds across workers: two workers, each with its own
pool and HTTP client, together send no more than the limit (from the upstream's log)."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.sports.settings import SportsSettings
from devstack.sports.server import UpstreamServer
from pipeworks.db import Connection, create_pool
from pipeworks.errors import TransientError
from pipeworks.rate_limit import SharedRateLimit
from pipeworks.settings import Settings
from pipeworks.temporal_client import connect_temporal
from tests.sports.helpers import (
    assert_tables_equal,
    expected_association,
    start_sync,
)
from tests.worker import running_worker

RATE = 25.0


def busiest_window(arrivals: list[float], seconds: float) -> int:
    """The most requests that arrived within any window of `seconds`."""
    arrivals = sorted(arrivals)
    most, start = 0, 0
    for end, t in enumerate(arrivals):
        while t - arrivals[start] >= seconds:
            start += 1
        most = max(most, end - start + 1)
    return most


async def test_the_limiter_spaces_callers_of_separate_pools(settings: Settings,
                                                            db: Connection) -> None:
    assert settings.database_url is not None
    dsn = settings.database_url.get_secret_value()
    async with AsyncExitStack() as stack:
        limits = []
        for _ in range(2):  # as two worker processes would: a pool each
            pool = await create_pool(dsn, max_size=4)
            stack.push_async_callback(pool.close)
            limits.append(SharedRateLimit(pool, "test:spacing", per_second=50))
        stamps: list[float] = []
        loop = asyncio.get_running_loop()

        async def caller(limit: SharedRateLimit) -> None:
            for _ in range(15):
                await limit.acquire()
                stamps.append(loop.time())

        await asyncio.gather(*(caller(limit) for limit in limits for _ in range(2)))
    stamps.sort()
    # 60 slots 20 ms apart: a loaded machine can only make it slower, never denser.
    assert stamps[-1] - stamps[0] >= 59 * 0.02 * 0.95


async def test_a_caller_too_far_back_gives_up_as_transient_without_a_slot(
    settings: Settings, db: Connection,
) -> None:
    assert settings.database_url is not None
    pool = await create_pool(settings.database_url.get_secret_value(), max_size=2)
    try:
        limit = SharedRateLimit(pool, "test:backlog", per_second=1, horizon_seconds=2,
                                max_wait_seconds=3)
        await db.execute(
            "INSERT INTO pipeline.rate_limits VALUES ('test:backlog', now() + interval '60 s')"
            " ON CONFLICT (name) DO UPDATE SET next_slot = excluded.next_slot")
        before = await db.fetchval(
            "SELECT next_slot FROM pipeline.rate_limits WHERE name = 'test:backlog'")
        with pytest.raises(TransientError, match="no request slot within 3 s"):
            await limit.acquire()
        after = await db.fetchval(
            "SELECT next_slot FROM pipeline.rate_limits WHERE name = 'test:backlog'")
        assert after == before  # nothing reserved by a caller that gave up
    finally:
        await pool.close()


@pytest.mark.slow
async def test_two_workers_together_keep_to_the_rate(
    temporal_env: WorkflowEnvironment, settings: Settings, db: Connection,
    upstream: UpstreamServer,
) -> None:
    limited = settings.with_pipeline(settings.of(SportsSettings).model_copy(
        update={"upstream_rate_limit": RATE}))
    upstream.stats.clear()
    async with AsyncExitStack() as stack:
        for _ in range(2):  # a client each, as two processes would have
            client = await connect_temporal(limited)
            await stack.enter_async_context(running_worker(limited, client))
        handle = await start_sync(temporal_env.client, settings, org_kind="association",
                                  org_id="A1", page_size=2, competition_concurrency=4)
        result = await asyncio.wait_for(handle.result(), 120)
    assert result["status"] == "completed"
    await assert_tables_equal(db, expected_association(upstream.dataset, "A1"))
    arrivals = [r["t"] for r in upstream.stats.log()]
    assert len(arrivals) > 2 * RATE, "the run should take more than two seconds of requests"
    # Slots are 1/RATE apart: any second holds at most RATE of them (+1 for the edges).
    # (+10% and one for requests that left their slot late and arrive bunched).
    assert busiest_window(arrivals, 1.0) <= RATE * 1.1 + 1
    elapsed = max(arrivals) - min(arrivals)
    assert len(arrivals) / elapsed <= RATE * 1.05


