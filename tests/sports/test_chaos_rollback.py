"""Rollback is exact wherever a run stops. Hypothesis picks the point: which stream
(competitions, or a competition's teams or games), which page of it fails, or after how
many upstream requests a cancel arrives. Each example is a real run over a database that
already holds A1 while the upstream has moved on, so the run has inserts, updates and
deletes to undo. Examples are few and derandomized: each one is a real Temporal run.

The failure point is exact: the upstream's `path_status` + `path_pass_count` switches
fail page N of one stream (and the test checks from the upstream's request log that
pages 0..N-1 were served and page N failed), and `hold_after` stops the run after exactly
N requests and the cancel is delivered while it stands still."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest_asyncio
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from devstack.sports.faults import FaultConfig
from devstack.sports.server import UpstreamServer
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.sports.helpers import (
    assert_restored_counted,
    assert_tables_equal_counted,
    chaos_tally,
    checksums,
    expected_association,
    failure_of,
    pages,
    requests_of_a_run,
    restore_snapshot,
    sports_snapshot,
    start_sync,
    write_chaos_tallies,
)

PAGE_SIZE = 3
SINCE = "2025-03-01T00:00:00+00:00"  # an incremental run fetches the games updated since
EXAMPLES = settings(max_examples=6, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
ROLLBACK = "permanent failure at a random page (rollback)"
ISOLATE = "permanent failure at a random page (isolate)"
CANCEL = "cancel at a random moment"


@pytest_asyncio.fixture(scope="module", loop_scope="session", autouse=True)
async def _report_counts() -> AsyncIterator[None]:
    yield
    write_chaos_tallies()


@dataclass(frozen=True)
class Prepared:
    rows: dict[str, set[tuple[Any, ...]]]
    sums: dict[str, str]
    competitions: list[str]


async def prepare(client: Client, settings: Settings, db: Connection,
                  upstream: UpstreamServer) -> Prepared:
    """A1 synced, then the upstream moves on and the database's copy ages, so that a
    run has something to insert, update and delete in every table."""
    handle = await start_sync(client, settings, org_kind="association", org_id="A1")
    assert (await handle.result())["status"] == "completed"
    dataset = upstream.dataset
    competitions = [c["id"] for c in dataset.expected_competitions("A1")]
    for competition in competitions:
        games = dataset.expected_games(competition)
        teams = dataset.expected_teams(competition)
        dataset.update_game(games[0]["id"], home_score=55, status="final")
        dataset.remove_game(games[1]["id"])
        dataset.add_game(competition, home_team_id=teams[0]["id"], away_team_id=teams[1]["id"],
                         scheduled_at="2031-01-01T12:00:00+00:00")
        dataset.update_team(teams[2]["id"], name=f"Renamed {teams[2]['name']}")
    # The database's copy is older than the upstream's: every row has changed since.
    await db.execute("UPDATE sports.competitions SET name = name || ' (as it was)'")
    await db.execute("UPDATE sports.teams SET name = name || ' (as it was)'")
    await db.execute("UPDATE sports.games SET venue = 'Old Ground'")
    return Prepared(await sports_snapshot(db), await checksums(db), competitions)


@pytest_asyncio.fixture(loop_scope="session")
async def prepared(temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker,
                   db: Connection, upstream: UpstreamServer) -> Prepared:
    """Once per test function; every example starts from this same database."""
    return await prepare(temporal_env.client, settings, db, upstream)


@dataclass(frozen=True)
class FailurePoint:
    stage: str          # "competitions" | "teams" | "games"
    competition: int    # index into A1's competitions (teams and games)
    page: int           # taken modulo the stream's page count
    status: int
    concurrency: int
    incremental: bool = False

    def options(self) -> dict[str, Any]:
        return {"games_updated_since": SINCE} if self.incremental else {}

    def locate(self, upstream: UpstreamServer, prepared: Prepared) -> tuple[str, str, int]:
        """(competition id, path, page) of the failing request."""
        dataset = upstream.dataset
        competition = prepared.competitions[self.competition % len(prepared.competitions)]
        if self.stage == "competitions":
            path, n = "/v1/associations/A1/competitions", len(prepared.competitions)
        elif self.stage == "teams":
            path = f"/v1/competitions/{competition}/teams"
            n = len(dataset.expected_teams(competition))
        else:
            path = f"/v1/competitions/{competition}/games"
            n = len(dataset.expected_games(competition,
                                           updated_since=SINCE if self.incremental else None))
        return competition, path, self.page % pages(n, PAGE_SIZE)


def failure_points(stages: list[str], incremental: bool = True
                   ) -> st.SearchStrategy[FailurePoint]:
    return st.builds(FailurePoint, stage=st.sampled_from(stages),
                     competition=st.integers(0, 2), page=st.integers(0, 20),
                     status=st.sampled_from([404, 403, 400]),
                     concurrency=st.sampled_from([1, 2, 4]),
                     incremental=st.booleans() if incremental else st.just(False))


async def run_failing_at(client: Client, settings: Settings, upstream: UpstreamServer,
                         path: str, page: int, status: int, concurrency: int,
                         **options: Any) -> WorkflowHandle[Any, Any]:
    upstream.stats.clear()
    upstream.faults.set(FaultConfig(path_status={path: status}, path_pass_count=page))
    return await start_sync(client, settings, org_kind="association", org_id="A1",
                            page_size=PAGE_SIZE, competition_concurrency=concurrency, **options)


def assert_failed_exactly_at(upstream: UpstreamServer, path: str, page: int,
                             status: int) -> None:
    served = [e["status"] for e in upstream.stats.log() if e["path"] == path]
    assert served == [200] * page + [status], f"{path}: {served}"


async def assert_run_left_nothing(db: Connection, handle: WorkflowHandle[Any, Any],
                                  fault: str, scope: str | None = None) -> None:
    """No change of the run (or of one competition of it) is left un-undone, and no lease
    is left behind. Counts the changes undone."""
    run_id = (await handle.describe()).run_id
    changes = await db.fetchrow(
        "SELECT count(*) FILTER (WHERE compensated_at IS NULL) AS pending,"
        " count(*) FILTER (WHERE compensated_at IS NOT NULL) AS undone"
        " FROM pipeline.changed_rows WHERE run_id = $1 AND ($2::text IS NULL OR scope = $2)",
        run_id, scope)
    assert changes["pending"] == 0
    chaos_tally(fault).changes_undone += changes["undone"]
    assert await db.fetchval("SELECT count(*) FROM pipeline.leases") == 0


@EXAMPLES
@given(point=failure_points(["games", "teams", "competitions"]))
@example(point=FailurePoint("games", 2, 9, 404, 4))  # the last page of the last stream
async def test_a_permanent_failure_at_any_page_restores_every_row(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer, prepared: Prepared, point: FailurePoint,
) -> None:
    await restore_snapshot(db, prepared.rows)
    assert await checksums(db) == prepared.sums
    _, path, page = point.locate(upstream, prepared)
    try:
        handle = await run_failing_at(temporal_env.client, settings, upstream, path, page,
                                      point.status, point.concurrency, **point.options())
        cause = await failure_of(handle)
    finally:
        upstream.faults.clear()
    tally = chaos_tally(ROLLBACK)
    tally.faults += 1
    tally.runs += 1
    assert isinstance(cause, ApplicationError) and cause.type == "PermanentError", cause
    assert_failed_exactly_at(upstream, path, page, point.status)
    progress = await handle.query("progress")
    assert progress["status"] == "failed" and progress["rolled_back"] is True, progress
    await assert_restored_counted(db, prepared.rows, prepared.sums, fault=ROLLBACK)
    await assert_run_left_nothing(db, handle, ROLLBACK)


@EXAMPLES
@given(point=failure_points(["games", "teams"], incremental=False))
@example(point=FailurePoint("games", 1, 5, 404, 2))  # mid-stream, others in flight
async def test_isolate_restores_only_the_failed_competition(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer, prepared: Prepared, point: FailurePoint,
) -> None:
    await restore_snapshot(db, prepared.rows)
    failed, path, page = point.locate(upstream, prepared)
    try:
        handle = await run_failing_at(temporal_env.client, settings, upstream, path, page,
                                      point.status, point.concurrency, on_failure="isolate")
        result = await handle.result()
    finally:
        upstream.faults.clear()
    tally = chaos_tally(ISOLATE)
    tally.faults += 1
    tally.runs += 1
    assert result["status"] == "completed_with_errors", result
    assert result["rolled_back"] is False
    assert result["stages"][1]["failed"] == result["stages"][2]["failed"] == 1, result["stages"]
    assert_failed_exactly_at(upstream, path, page, point.status)
    # The failed competition's rows (its own row included) as before the run; the
    # others as the upstream has them now.
    synced = expected_association(upstream.dataset, "A1")
    column = {"sports.competitions": 0, "sports.teams": 1, "sports.games": 1}
    wanted = {table: {r for r in synced[table] if r[column[table]] != failed}
              | {r for r in prepared.rows[table] if r[column[table]] == failed}
              for table in synced}
    assert wanted != synced  # the failed competition had changes to make (and undo)
    await assert_tables_equal_counted(db, wanted, fault=ISOLATE)
    await assert_run_left_nothing(db, handle, ISOLATE, scope=failed)


@dataclass(frozen=True)
class CancelMoment:
    after_requests: int   # taken modulo the run's number of upstream requests
    how: str              # "signal" (our cancel signal) | "temporal" (Temporal's cancel)
    concurrency: int
    incremental: bool = False


def requests_of_run(upstream: UpstreamServer, competitions: list[str],
                    incremental: bool) -> int:
    return requests_of_a_run(upstream.dataset, competitions, PAGE_SIZE,
                             SINCE if incremental else None)


HTTP_ACTIVITIES = {"sports_resolve_org", "sports_fetch_stream", "sports_sync_streams"}


async def wait_until_still(upstream: UpstreamServer, handle: WorkflowHandle[Any, Any],
                           served: int) -> None:
    """Until the run stands still at the gate: the `served` requests before it answered,
    at least as many requests held as activities in flight (one competition's activity
    fetches teams and games at once, so it may hold two), no workflow task pending. A
    cancel that still arrives together with an activity's result is the case of
    test_chaos_cancel_race.py, which must roll back as well."""
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        described = await handle.describe()
        assert described.close_time is None, "the run ended before reaching the gate"
        raw = described.raw_description
        pending = [a.activity_type.name for a in raw.pending_activities]
        if (upstream.stats.total >= served and upstream.faults.held >= len(pending) > 0
                and set(pending) <= HTTP_ACTIVITIES
                and not raw.HasField("pending_workflow_task")):
            return
        assert asyncio.get_running_loop().time() < deadline, "the run never reached the gate"
        await asyncio.sleep(0.02)


async def wait_until_seen(handle: WorkflowHandle[Any, Any], event_type: int) -> None:
    """Until a workflow task has completed after `event_type`: the run has acted on it."""
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        types = [e.event_type for e in (await handle.fetch_history()).events]
        if event_type in types and (EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
                                    in types[types.index(event_type):]):
            return
        assert asyncio.get_running_loop().time() < deadline, "the run did not see the cancel"
        await asyncio.sleep(0.05)


@EXAMPLES
@given(moment=st.builds(CancelMoment, after_requests=st.integers(0, 200),
                        how=st.sampled_from(["signal", "temporal"]),
                        concurrency=st.sampled_from([1, 2, 4]),
                        incremental=st.booleans()))
@example(moment=CancelMoment(after_requests=20, how="signal", concurrency=2))
async def test_a_cancel_at_any_moment_restores_every_row(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer, prepared: Prepared, moment: CancelMoment,
) -> None:
    await restore_snapshot(db, prepared.rows)
    after = moment.after_requests % requests_of_run(upstream, prepared.competitions,
                                                      moment.incremental)
    upstream.stats.clear()
    upstream.faults.set(FaultConfig(hold_after=after))
    try:
        handle = await start_sync(temporal_env.client, settings, org_kind="association",
                                  org_id="A1", page_size=PAGE_SIZE,
                                  competition_concurrency=moment.concurrency,
                                  **({"games_updated_since": SINCE} if moment.incremental
                                     else {}))
        await wait_until_still(upstream, handle, after)
        served_before_cancel = upstream.stats.total
        if moment.how == "signal":
            await handle.signal("cancel", {"reason": f"chaos after {after} requests"})
            await wait_until_seen(handle, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
        else:
            await handle.cancel()
            await wait_until_seen(handle,
                                  EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED)
        upstream.faults.clear()  # opens the gate: held requests go on
        cause = await failure_of(handle)
    finally:
        upstream.faults.clear()
    tally = chaos_tally(CANCEL)
    tally.faults += 1
    tally.runs += 1
    assert served_before_cancel == after
    if moment.how == "signal":
        assert isinstance(cause, ApplicationError) and cause.type == "Cancelled", cause
    else:
        assert isinstance(cause, CancelledError), cause
    progress = await handle.query("progress")
    assert progress["status"] == "cancelled" and progress["rolled_back"] is True, progress
    await assert_restored_counted(db, prepared.rows, prepared.sums, fault=CANCEL)
    await assert_run_left_nothing(db, handle, CANCEL)
