"""One run, its worker process SIGKILLed several times at points a seeded RNG picks, and
restarted after each kill. Two kinds of point:

- mid-fetch: the upstream holds every request after the next N (N random), so the kill
  hits a fetch with pages landed and a request in flight;
- between landing and merging: the test holds the advisory lock a competition's stage
  takes first, so the kill hits a stage whose load is landed and whose transaction is
  open and not committed.

The run must finish with exactly the upstream's rows, every dead letter exactly once,
every load staged once, and one change-log entry per row. PIPEWORKS_CHAOS_SEED picks
other points (the seed is in every failure message)."""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import pytest_asyncio
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.sports.activities import LOCK_NAMESPACE
from devstack.postgres import EmbeddedPostgres
from devstack.sports.faults import FaultConfig
from devstack.sports.server import UpstreamServer
from pipeworks.db import Connection, connect
from pipeworks.settings import Settings
from tests.sports.helpers import (
    assert_tables_equal_counted,
    chaos_tally,
    compare_counted,
    expected_association,
    requests_of_a_run,
    start_sync,
    write_chaos_tallies,
)
from tests.sports.test_worker_process import WorkerProcesses, worker_processes

pytestmark = pytest.mark.slow

# Two runs, each with its own kill points; PIPEWORKS_CHAOS_SEED=n runs seed n alone.
PAGE_SIZE = 3
SEEDS = ([int(os.environ["PIPEWORKS_CHAOS_SEED"])] if os.environ.get("PIPEWORKS_CHAOS_SEED")
         else [7, 8])
FAULT = "worker SIGKILLed at random points and restarted, 4 times per run"
MID_FETCH, BEFORE_MERGE = "mid-fetch", "between landing and merging"


@pytest_asyncio.fixture(scope="module", loop_scope="session", autouse=True)
async def _report_counts() -> AsyncIterator[None]:
    yield
    write_chaos_tallies()


async def until(check: Any, what: str, handle: WorkflowHandle[Any, Any], workers: WorkerProcesses,
                timeout: float = 60.0) -> Any:
    """Polls `check()` until it returns something truthy; fails if the run ends or the
    worker dies first."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await check()
        if found:
            return found
        assert workers.current.returncode is None, f"the worker died by itself before {what}"
        assert (await handle.describe()).close_time is None, f"the run ended before {what}"
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def requests_left(upstream: UpstreamServer, competitions: list[str]) -> int:
    """At least how many upstream requests the run still makes (a fault-free run's total
    less what was served; kills only add requests)."""
    return (requests_of_a_run(upstream.dataset, competitions, PAGE_SIZE)
            - upstream.stats.total)


async def kill_mid_fetch(rng: random.Random, workers: WorkerProcesses, upstream: UpstreamServer,
                         handle: WorkflowHandle[Any, Any], db: Connection,
                         competitions: list[str]) -> str:
    # Within the requests still to come: a stage held back by a kill before merging
    # lets the same competition's other stream fetch on meanwhile.
    after = rng.randint(1, max(1, min(6, requests_left(upstream, competitions) - 2)))

    async def released() -> bool:
        return upstream.faults.held == 0

    # The previous kill's held request is answered (to no one) only after `clear()`:
    # until its thread counts it out, a fresh hold would look held already.
    await until(released, "the previous held request to be let go", handle, workers)
    upstream.faults.set(FaultConfig(hold_after=after))

    async def held() -> bool:
        return upstream.faults.held > 0

    try:
        await until(held, f"a request after the next {after}", handle, workers)
        fetching = await db.fetch("SELECT entity, scope FROM pipeline.loads"
                                  " WHERE status = 'fetching'")
        assert fetching, "a request is held, so a fetch must be in flight"
        await workers.kill_current()
    finally:
        upstream.faults.clear()  # the dead worker's held request is answered to no one
    return f"{MID_FETCH} after {after} more requests ({len(fetching)} fetches in flight)"


async def kill_before_merge(rng: random.Random, workers: WorkerProcesses, dsn: str,
                            handle: WorkflowHandle[Any, Any], db: Connection,
                            competitions: list[str]) -> str:
    staged = {r["scope"] for r in await db.fetch(
        "SELECT scope FROM pipeline.loads WHERE entity = 'games' AND status = 'staged'")}
    open_ = [c for c in competitions if c not in staged]
    assert open_, "every competition was staged before this kill: the plan is too long"
    competition = rng.choice(open_)
    blocker = await connect(dsn)
    try:
        # The stage activity takes this lock first thing in its transaction.
        await blocker.execute("SELECT pg_advisory_lock(hashtext($1))",
                              f"{LOCK_NAMESPACE}:{competition}")

        async def landed_and_waiting() -> str | None:
            """The live worker's stage of this competition, its load landed, waits on the
            lock (not a dead worker's backend, nor another competition's stage)."""
            try:
                worker_ports = {c.laddr.port for c in
                                psutil.Process(workers.current.pid).net_connections("tcp")}
            except psutil.NoSuchProcess:
                return None  # `until` says the worker died
            waiting = await db.fetch(
                "SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                " WHERE l.locktype = 'advisory' AND NOT l.granted AND l.objsubid = 1"
                " AND l.objid::bigint = (hashtext($1)::bigint & 4294967295)",
                f"{LOCK_NAMESPACE}:{competition}")
            if not {r["client_port"] for r in waiting} & worker_ports:
                return None
            # The stream being staged: the first of the competition's not staged yet
            # (its load is `fetching` until the stage marks it landed and staged).
            entity: str | None = await db.fetchval(
                "SELECT entity FROM pipeline.loads WHERE scope = $1 AND status <> 'staged'"
                " ORDER BY entity <> 'teams' LIMIT 1", competition)
            return entity

        entity = await until(landed_and_waiting, f"a stage of {competition} to wait", handle,
                             workers)
        await workers.kill_current()
    finally:
        await blocker.close()  # unlocks: the dead worker's transaction then aborts
    return f"{BEFORE_MERGE}: {entity} of {competition}"


def invalid_items(upstream: UpstreamServer, competitions: list[str]) -> list[Any]:
    """Items every sync must dead-letter, on several pages and in both resources."""
    dataset = upstream.dataset
    return [
        dataset.inject_invalid(competitions[0], "bad_timestamp", position=2),
        dataset.inject_invalid(competitions[0], "foreign_team", position=17),
        dataset.inject_invalid(competitions[1], "missing_field", resource="teams", position=4),
        dataset.inject_invalid(competitions[2], "not_an_object", position=25),
    ]


def canonical(payload: Any) -> str:
    """The db connection decodes jsonb, so both sides are Python values."""
    return json.dumps(payload, sort_keys=True)


@pytest.mark.parametrize("seed", SEEDS)
async def test_a_worker_killed_four_times_in_one_run_leaves_exact_data(
    temporal_env: WorkflowEnvironment, settings: Settings, db: Connection,
    upstream: UpstreamServer, postgres: EmbeddedPostgres, tmp_path: Path, seed: int,
) -> None:
    rng = random.Random(seed)
    competitions = [c["id"] for c in upstream.dataset.expected_competitions("A1")]
    letters = invalid_items(upstream, competitions)
    # Mid-fetch kills first: a stage held back before merging lets its competition's
    # other stream (fetched in the same activity) land meanwhile, and a late plan could
    # find nothing left to fetch. Where each kill lands is still drawn from `rng`.
    plan = [MID_FETCH, MID_FETCH, BEFORE_MERGE, BEFORE_MERGE]
    done: list[str] = []
    async with worker_processes(settings, tmp_path / "worker.log") as running:
        await running.spawn()
        handle = await start_sync(temporal_env.client, settings, org_kind="association",
                                  org_id="A1", page_size=PAGE_SIZE, competition_concurrency=2,
                                  heartbeat_timeout_seconds=2)
        try:
            for kind in plan:
                if kind == MID_FETCH:
                    done.append(await kill_mid_fetch(rng, running, upstream, handle, db,
                                                     competitions))
                else:
                    done.append(await kill_before_merge(rng, running, postgres.dsn, handle, db,
                                                        competitions))
                await running.spawn()
            result = await asyncio.wait_for(handle.result(), timeout=120)
        except BaseException as err:
            err.add_note(f"seed {seed}; kills so far: {done}\n{running.log_tail()}")
            raise
    tally = chaos_tally(FAULT)
    tally.faults += len(done)
    tally.runs += 1
    context = f"seed {seed}, kills: {done}"
    assert len(done) == len(plan), context
    assert result["status"] == "completed", (context, result)
    # Every kill lost at least one activity attempt; each is counted as a system error.
    assert result["errors"]["system"] >= len(plan), (context, result["errors"])
    expected = expected_association(upstream.dataset, "A1")
    await assert_tables_equal_counted(db, expected, fault=FAULT)

    # Dead letters: each invalid item exactly once, none lost, none twice.
    stored = await db.fetch("SELECT payload, run_id FROM pipeline.dead_letters")
    problem = compare_counted(
        FAULT, "pipeline.dead_letters",
        {(p, n) for p, n in Counter(canonical(p) for p in letters).items()},
        {(p, n) for p, n in Counter(canonical(r["payload"]) for r in stored).items()})
    assert problem is None, (context, problem)
    run_id = (await handle.describe()).run_id
    assert {r["run_id"] for r in stored} == {run_id}
    assert result["records"]["invalid"] == len(letters)

    # Every load staged, nothing left landed, one change per row (a fresh database:
    # every row is one insert, however many attempts it took).
    loads = await db.fetch("SELECT entity, status FROM pipeline.loads")
    assert {r["status"] for r in loads} == {"staged"}, context
    assert len(loads) == 1 + 2 * len(competitions)
    assert await db.fetchval("SELECT count(*) FROM pipeline.landed_pages") == 0
    changes = await db.fetch("SELECT table_name, op, count(*) AS n FROM pipeline.changed_rows"
                             " GROUP BY table_name, op")
    assert {(r["table_name"], r["op"]): r["n"] for r in changes} == {
        (table, "insert"): len(rows) for table, rows in expected.items()}, context
    runs = await db.fetch("SELECT run_id, status FROM pipeline.runs")
    assert [(r["run_id"], r["status"]) for r in runs] == [(run_id, "completed")]
