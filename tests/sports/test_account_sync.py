"""AccountSyncWorkflow end to end: real Temporal, Postgres and HTTP upstream."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from devstack.sports.server import UpstreamServer
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.sports.helpers import (
    a_club_of,
    assert_tables_equal,
    checksums,
    db_rows,
    expected_association,
    failure_of,
    start_sync,
)


async def sync(client: Client, settings: Settings, **fields: Any) -> dict[str, Any]:
    handle = await start_sync(client, settings, **fields)
    result: dict[str, Any] = await handle.result()
    return result


async def test_full_sync_equals_upstream_and_rerun_changes_nothing(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    result = await sync(temporal_env.client, settings, org_kind="association", org_id="A1")
    assert result["status"] == "completed", result
    assert result["percent"] == 100.0
    expected = expected_association(upstream.dataset, "A1")
    await assert_tables_equal(db, expected)
    assert result["records"]["staged"] == sum(len(rows) for rows in expected.values())

    before = await checksums(db)
    versions = "SELECT t.id, t.xmin::text FROM {} t"
    row_versions = {t: set(await db.fetch(versions.format(t))) for t in
                    ("sports.competitions", "sports.teams", "sports.games")}
    again = await sync(temporal_env.client, settings, org_kind="association", org_id="A1")
    assert again["status"] == "completed"
    assert await checksums(db) == before
    for table, rows in row_versions.items():  # not rewritten: the same row versions
        assert set(await db.fetch(versions.format(table))) == rows, table
    runs = await db.fetch("SELECT status, stats FROM pipeline.runs ORDER BY started_at")
    assert [r["status"] for r in runs] == ["completed", "completed"]
    merge = runs[1]["stats"]["merge"]
    assert merge["inserted"] == merge["updated"] == merge["deleted"] == 0, merge
    assert merge["unchanged"] == result["records"]["staged"]


def competition_ids(upstream: UpstreamServer, association_id: str = "A1") -> list[str]:
    return [c["id"] for c in upstream.dataset.expected_competitions(association_id)]


async def test_rows_removed_upstream_are_deleted(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    await sync(temporal_env.client, settings, org_kind="association", org_id="A1")
    first, second = competition_ids(upstream)[:2]
    gone_game = upstream.dataset.expected_games(first)[0]["id"]
    upstream.dataset.remove_game(gone_game)
    gone_team = upstream.dataset.expected_teams(second)[0]["id"]
    cascaded = upstream.dataset.remove_team(gone_team)
    assert cascaded

    result = await sync(temporal_env.client, settings, org_kind="association", org_id="A1")
    assert result["status"] == "completed"
    await assert_tables_equal(db, expected_association(upstream.dataset, "A1"))
    assert await db.fetchval("SELECT count(*) FROM sports.games WHERE id = $1", gone_game) == 0
    assert await db.fetchval("SELECT count(*) FROM sports.teams WHERE id = $1", gone_team) == 0


async def test_incremental_sync_fetches_only_updated_games_and_deletes_nothing(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    await sync(temporal_env.client, settings, org_kind="association", org_id="A1")
    competition = competition_ids(upstream)[0]
    games = upstream.dataset.expected_games(competition)
    since = upstream.dataset.clock
    changed = upstream.dataset.update_game(games[0]["id"], home_score=97, away_score=96,
                                           status="final")
    removed = games[1]["id"]
    upstream.dataset.remove_game(removed)

    result = await sync(temporal_env.client, settings, org_kind="association", org_id="A1",
                        games_updated_since=since.isoformat())
    assert result["status"] == "completed"
    assert result["stages"][2]["records"]["fetched"] == len(
        [c for c in competition_ids(upstream)
         for _ in upstream.dataset.expected_games(c, updated_since=since)])
    row = await db.fetchrow("SELECT home_score, away_score FROM sports.games WHERE id = $1",
                            changed["id"])
    assert tuple(row) == (97, 96)
    # Incremental runs delete nothing: the removed game stays.
    assert await db.fetchval("SELECT count(*) FROM sports.games WHERE id = $1", removed) == 1


async def test_club_mode_keeps_only_the_clubs_games(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    club = a_club_of(upstream.dataset, "A1")
    result = await sync(temporal_env.client, settings, org_kind="club", org_id=club)
    assert result["status"] == "completed", result
    expected = expected_association(upstream.dataset, "A1", club_id=club)
    await assert_tables_equal(db, expected)
    everything = expected_association(upstream.dataset, "A1")
    assert len(expected["sports.games"]) < len(everything["sports.games"])
    assert expected["sports.teams"] == {
        t for t in everything["sports.teams"]
        if t[1] in {c[0] for c in expected["sports.competitions"]}}


async def test_invalid_items_become_dead_letters_and_the_rest_is_staged(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    competition = competition_ids(upstream)[0]
    kinds = ["missing_field", "wrong_type", "bad_timestamp", "naive_timestamp",
             "unknown_status", "foreign_team", "null_id", "not_an_object"]
    for position, kind in enumerate(kinds):
        upstream.dataset.inject_invalid(competition, kind, position=position * 3)  # type: ignore[arg-type]
    upstream.dataset.inject_invalid(competition, "missing_field", resource="teams")

    result = await sync(temporal_env.client, settings, org_kind="association", org_id="A1")
    assert result["status"] == "completed"
    assert result["records"]["invalid"] == len(kinds) + 1
    assert result["errors"]["data"] == len(kinds) + 1
    await assert_tables_equal(db, expected_association(upstream.dataset, "A1"))
    letters = await db.fetch("SELECT entity, reason, payload FROM pipeline.dead_letters")
    assert len(letters) == len(kinds) + 1
    reasons = " | ".join(sorted(r["reason"] for r in letters))
    for field in ("home_team_id", "home_score", "scheduled_at", "status", "id", "name"):
        assert field in reasons, reasons


async def test_transient_faults_still_converge(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    upstream.faults.set(seed=5, error_rate=0.15, rate_limit_rate=0.1, retry_after_s=1,
                        drop_rate=0.1, html_rate=0.05)
    result = await sync(temporal_env.client, settings, org_kind="association", org_id="A1",
                        page_size=5)
    assert result["status"] == "completed", result
    assert result["errors"]["transient"] > 0
    await assert_tables_equal(db, expected_association(upstream.dataset, "A1"))


async def prepopulate_then_change_upstream(
    client: Client, settings: Settings, upstream: UpstreamServer) -> None:
    """A database already holding A1, and an upstream that has moved on since."""
    await sync(client, settings, org_kind="association", org_id="A1")
    for competition in competition_ids(upstream):
        games = upstream.dataset.expected_games(competition)
        upstream.dataset.update_game(games[0]["id"], home_score=55, status="final")
        upstream.dataset.remove_game(games[1]["id"])
        teams = upstream.dataset.expected_teams(competition)
        upstream.dataset.add_game(competition, home_team_id=teams[0]["id"],
                                  away_team_id=teams[1]["id"],
                                  scheduled_at="2031-01-01T12:00:00+00:00")


async def test_permanent_failure_rolls_back_every_change(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    await prepopulate_then_change_upstream(temporal_env.client, settings, upstream)
    before = await checksums(db)
    last = competition_ids(upstream)[-1]
    upstream.faults.set(path_status={f"/v1/competitions/{last}/games": 404})

    handle = await start_sync(temporal_env.client, settings, org_kind="association",
                              org_id="A1", competition_concurrency=1)
    cause = await failure_of(handle)
    assert isinstance(cause, ApplicationError)
    assert cause.type == "PermanentError", (cause.message, cause.details)
    progress = await handle.query("progress")
    assert progress["status"] == "failed" and progress["rolled_back"] is True
    assert progress["errors"]["permanent"] >= 1
    assert await checksums(db) == before
    run = await db.fetchrow("SELECT status, finished_at FROM pipeline.runs"
                            " ORDER BY started_at DESC LIMIT 1")
    assert run["status"] == "failed" and run["finished_at"] is not None


async def test_isolate_undoes_only_the_failed_competition(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    await prepopulate_then_change_upstream(temporal_env.client, settings, upstream)
    failing = competition_ids(upstream)[1]
    before_failing = {t: {r for r in rows if r[1 if t != "sports.competitions" else 0] == failing}
                      for t, rows in [(t, await db_rows(db, t)) for t in
                                      ("sports.teams", "sports.games")]}
    upstream.faults.set(path_status={f"/v1/competitions/{failing}/games": 404})

    result = await sync(temporal_env.client, settings, org_kind="association", org_id="A1",
                        on_failure="isolate")
    assert result["status"] == "completed_with_errors", result
    assert result["rolled_back"] is False
    assert result["stages"][2]["failed"] == 1
    for table, rows in before_failing.items():
        now = {r for r in await db_rows(db, table) if r[1] == failing}
        assert now == rows, table
    expected = expected_association(upstream.dataset, "A1")
    for table in ("sports.teams", "sports.games"):
        others = {r for r in expected[table] if r[1] != failing}
        assert others == {r for r in await db_rows(db, table) if r[1] != failing}, table


async def wait_for(handle: Any, predicate: Any, timeout: float = 30.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        progress: dict[str, Any] = await handle.query("progress")
        if predicate(progress):
            return progress
        assert asyncio.get_running_loop().time() < deadline, progress
        await asyncio.sleep(0.05)


async def slow_sync_over_a_changed_database(
    client: Client, settings: Settings, upstream: UpstreamServer, db: Connection,
    **options: Any,
) -> tuple[Any, dict[str, str]]:
    """A run with real changes to make, slowed down so it can be caught mid-way;
    returns it with the tables' checksums from before it."""
    await prepopulate_then_change_upstream(client, settings, upstream)
    before = await checksums(db)
    upstream.faults.set(latency_ms=40)
    handle = await start_sync(client, settings, org_kind="association", org_id="A1",
                              page_size=3, **options)
    return handle, before


async def test_cancel_signal_mid_run_restores_the_tables(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    handle, before = await slow_sync_over_a_changed_database(
        temporal_env.client, settings, upstream, db, competition_concurrency=1)
    await wait_for(handle, lambda p: p["stages"][2]["done"] >= 1)
    await handle.signal("cancel", {"reason": "test says stop"})
    cause = await failure_of(handle)
    assert isinstance(cause, ApplicationError) and cause.type == "Cancelled"
    progress = await handle.query("progress")
    assert progress["status"] == "cancelled" and progress["rolled_back"] is True
    assert "test says stop" in progress["message"]
    assert await checksums(db) == before


async def test_temporal_cancel_request_compensates_too(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    handle, before = await slow_sync_over_a_changed_database(
        temporal_env.client, settings, upstream, db, competition_concurrency=2)
    await wait_for(handle, lambda p: p["stages"][1]["done"] >= 1)
    await handle.cancel()
    cause = await failure_of(handle)
    assert isinstance(cause, CancelledError)
    described = await handle.describe()
    assert described.status == WorkflowExecutionStatus.CANCELED
    progress = await handle.query("progress")
    assert progress["status"] == "cancelled" and progress["rolled_back"] is True
    assert await checksums(db) == before


async def test_progress_document_has_the_contract_shape(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    upstream.faults.set(latency_ms=20)
    handle = await start_sync(temporal_env.client, settings, org_kind="association",
                              org_id="A2", page_size=4)
    seen = await wait_for(handle, lambda p: p["status"] == "running")
    await handle.result()
    final = await handle.query("progress")
    for document in (seen, final):
        assert set(document) == {"workflow_id", "pipeline", "status", "rolled_back", "percent",
                                 "stages", "records", "errors", "started_at", "updated_at",
                                 "message"}
        assert [s["name"] for s in document["stages"]] == ["competitions", "teams", "games"]
        for stage in document["stages"]:
            assert set(stage) == {"name", "status", "total", "done", "failed", "percent",
                                  "records"}
            assert 0 <= stage["percent"] <= 100
        assert set(document["errors"]) == {"transient", "permanent", "data", "system"}
        assert document["started_at"].endswith("Z")
    assert final["status"] == "completed" and final["percent"] == 100.0
    assert final["stages"][1]["total"] == final["stages"][1]["done"] == 3


async def test_bad_workflow_input_fails_the_run_with_a_clear_message(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
) -> None:
    for bad, words in [
        ({"org_kind": "team", "org_id": "A1"}, "org_kind"),
        ({"account_id": "42"}, "account_id"),
        ({"org_kind": "club", "org_id": "K1", "games_updated_since": "yesterday"},
         "games_updated_since"),
        ({}, "give account_id"),
    ]:
        handle = await temporal_env.client.start_workflow(
            "AccountSyncWorkflow", bad, id=f"bad-input-{uuid.uuid4().hex[:6]}",
            task_queue=settings.task_queue)
        cause = await failure_of(handle)
        assert isinstance(cause, ApplicationError) and cause.type == "InvalidInput"
        assert words in cause.message, cause.message
    assert await db.fetchval("SELECT count(*) FROM pipeline.runs") == 0


async def test_unknown_account_fails_as_permanent(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
) -> None:
    handle = await start_sync(temporal_env.client, settings, account_id=4242)
    cause = await failure_of(handle)
    assert isinstance(cause, ApplicationError) and cause.type == "PermanentError"
    assert "4242" in cause.message
    progress = await handle.query("progress")
    assert progress["status"] == "failed" and progress["errors"]["permanent"] == 1


async def test_club_and_association_syncs_at_once_leave_exact_data(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    club = a_club_of(upstream.dataset, "A1")
    upstream.faults.set(latency_ms=10)
    handles = [
        await start_sync(temporal_env.client, settings, org_kind="club", org_id=club),
        await start_sync(temporal_env.client, settings, org_kind="association", org_id="A1"),
    ]
    results = await asyncio.gather(*(h.result() for h in handles))
    assert [r["status"] for r in results] == ["completed", "completed"]
    await assert_tables_equal(db, expected_association(upstream.dataset, "A1"))


async def test_rows_still_listed_but_invalid_this_time_are_kept(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    await sync(temporal_env.client, settings, org_kind="association", org_id="A1")
    before = await db_rows(db, "sports.games"), await db_rows(db, "sports.teams")
    competition = competition_ids(upstream)[0]
    game = upstream.dataset.expected_games(competition)[0]["id"]
    team = upstream.dataset.expected_teams(competition)[0]["id"]
    upstream.dataset.inject_invalid(competition, "bad_timestamp", replace_id=game)
    upstream.dataset.inject_invalid(competition, "wrong_type", resource="teams",
                                    replace_id=team)

    result = await sync(temporal_env.client, settings, org_kind="association", org_id="A1")
    assert result["status"] == "completed"
    assert result["records"]["invalid"] == 2
    # The old rows stay: listed upstream, only unusable this time. Nothing cascades.
    assert (await db_rows(db, "sports.games"), await db_rows(db, "sports.teams")) == before


async def test_club_mode_deletes_the_games_of_a_removed_club_team(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    club = a_club_of(upstream.dataset, "A1")
    # A second team of the club in one competition, so that removing it leaves the
    # club in that competition (and the competition in the club's sync).
    competition = upstream.dataset.expected_club_competitions(club)[0]["id"]
    reserves = upstream.dataset.add_team(competition, "Reserves", club)
    opponent = upstream.dataset.expected_teams(competition)[0]["id"]
    for day in (1, 2):
        upstream.dataset.add_game(competition, home_team_id=reserves["id"],
                                  away_team_id=opponent,
                                  scheduled_at=f"2025-03-0{day}T15:00:00+00:00")
    await sync(temporal_env.client, settings, org_kind="club", org_id=club)
    removed_games = upstream.dataset.remove_team(reserves["id"])
    assert len(removed_games) == 2
    assert await db.fetchval("SELECT count(*) FROM sports.games WHERE id = ANY($1)",
                             removed_games) == 2

    result = await sync(temporal_env.client, settings, org_kind="club", org_id=club)
    assert result["status"] == "completed"
    await assert_tables_equal(db, expected_association(upstream.dataset, "A1", club_id=club))
    assert await db.fetchval("SELECT count(*) FROM sports.games WHERE id = ANY($1)",
                             removed_games) == 0


async def test_temporal_cancel_with_a_deadline_stops_all_work_before_undoing(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    handle, before = await slow_sync_over_a_changed_database(
        temporal_env.client, settings, upstream, db, competition_concurrency=3,
        deadline_seconds=600)
    # Mid-run: the competitions are staged and their teams and games are being fetched
    # (38 requests in all, 40 ms each).
    await wait_for(handle, lambda p: p["stages"][0]["done"] >= 1)
    served = upstream.stats.total
    while upstream.stats.total < served + 6:
        await asyncio.sleep(0.01)
    await handle.cancel()
    assert isinstance(await failure_of(handle), CancelledError)
    run_id = (await handle.describe()).run_id
    await asyncio.sleep(1.0)  # a stage still running would commit in this time
    assert await db.fetchval(
        "SELECT count(*) FROM pipeline.changes WHERE run_id = $1 AND compensated_at IS NULL",
        run_id) == 0
    assert await checksums(db) == before


async def hold_lease_for(client: Client, db: Connection, association: str) -> Any:
    """A live run (on a queue nobody polls) holding the association's lease."""
    holder = await client.start_workflow(
        "AccountSyncWorkflow", {"org_kind": "association", "org_id": association},
        id=f"lease-holder-{uuid.uuid4().hex[:6]}", task_queue="nobody-polls-this")
    await db.execute(
        "INSERT INTO pipeline.leases (lease_key, workflow_id, run_id) VALUES ($1, $2, $3)",
        f"sports:association:{association}", holder.id, holder.result_run_id)
    return holder


async def test_cancel_reaches_a_run_waiting_for_the_lease(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
) -> None:
    holder = await hold_lease_for(temporal_env.client, db, "A1")
    try:
        handle = await start_sync(temporal_env.client, settings, org_kind="association",
                                  org_id="A1")
        await wait_for(handle, lambda p: "waiting for other runs" in (p["message"] or ""))
        await asyncio.sleep(1.5)  # still waiting: the holder is alive
        assert (await handle.query("progress"))["status"] == "running"
        await handle.signal("cancel", {"reason": "no time to wait"})
        cause = await failure_of(handle)
        assert isinstance(cause, ApplicationError) and cause.type == "Cancelled"
        progress = await handle.query("progress")
        assert progress["status"] == "cancelled" and progress["rolled_back"] is True
        assert await db.fetchval("SELECT workflow_id FROM pipeline.leases") == holder.id
        assert await db.fetchval("SELECT count(*) FROM sports.games") == 0
    finally:
        await holder.terminate()


async def test_lease_of_a_terminated_holder_is_taken_over(
    temporal_env: WorkflowEnvironment, settings: Settings, worker: Worker, db: Connection,
    upstream: UpstreamServer,
) -> None:
    holder = await hold_lease_for(temporal_env.client, db, "A1")
    await holder.terminate()
    result = await sync(temporal_env.client, settings, org_kind="association", org_id="A1")
    assert result["status"] == "completed"
    assert await db.fetchval("SELECT count(*) FROM pipeline.leases") == 0
    await assert_tables_equal(db, expected_association(upstream.dataset, "A1"))
