"""The sports sync's activities: look-ups, fetch (land a stream), stage (merge a load),
and sync (fetch then stage several streams in one activity: what runs use now)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import asyncpg
from temporalio import activity

from activities.sports import paths
from activities.sports.stagers import CompetitionStager, GameStager, TeamStager
from pipeworks.activity_errors import categorized_errors
from pipeworks.db import Connection
from pipeworks.errors import DataError, PermanentError
from pipeworks.heartbeat import Heartbeater, carried_errors
from pipeworks.http import ErrorTally, UpstreamClient
from pipeworks.logging import get_logger
from pipeworks.metrics import PipelineMetrics, current_stage
from pipeworks.staging import StageOutcome, Stager, stage_load
from pipeworks.streams import (
    FetchCheckpoint,
    LandedStream,
    StreamRequest,
    failures_recorded,
    land_pages,
    land_stream,
)


@dataclass
class OrgRef:
    kind: str                  # "association" | "club"
    org_id: str
    name: str
    association_id: str        # whose rows this sync may write: the lease key
    account_id: int | None = None
    errors: dict[str, int] = field(default_factory=dict)  # absorbed by retries


@dataclass
class OrgRequest:
    kind: str
    org_id: str
    account_id: int | None = None
    errors: dict[str, int] = field(default_factory=dict)  # absorbed by retries


@dataclass
class StageRequest:
    run_id: str
    load_id: str
    entity: str                    # "competitions" | "teams" | "games"
    scope: str                     # change-log scope: the competition id
    competition_id: str | None = None
    club_id: str | None = None     # club mode: keep only this club's games
    full_sync: bool = True


@dataclass
class StreamSpec:
    """One stream of a `SyncRequest`: where to fetch it and how to stage it."""

    entity: str                    # "competitions" | "teams" | "games"
    path: str
    params: dict[str, str] = field(default_factory=dict)
    competition_id: str | None = None
    club_id: str | None = None     # club mode: keep only this club's games


@dataclass
class SyncRequest:
    """Fetch and stage `streams` in order, e.g. a competition's teams, then its games.
    Each stream is landed in Postgres (load id `<run_id>/<entity>/<scope>`), then
    staged; records never leave the database."""

    run_id: str                    # the run whose change log records the changes
    scope: str                     # change-log and load scope: a competition id, or
    streams: list[StreamSpec]      # "association:A1" for an organisation's competitions
    page_size: int = 100
    full_sync: bool = True


@dataclass
class SyncOutcome:
    """Counts only: one StageOutcome per stream, in the request's order (the
    competitions' keys and names too, for the workflow to go on with)."""

    scope: str
    streams: list[StageOutcome]
    errors: dict[str, int] = field(default_factory=dict)  # absorbed by retries


def stager_for(entity: str, competition_id: str | None, club_id: str | None) -> Stager:
    if entity == "competitions":
        return CompetitionStager()
    assert competition_id is not None
    if entity == "teams":
        return TeamStager(competition_id)
    return GameStager(competition_id, club_id)


PIPELINE = "sports_sync"
log = get_logger("pipeworks.activities.sports")


class SportsActivities:
    def __init__(self, pool: asyncpg.Pool, upstream: UpstreamClient,
                 *, keep_landed_pages: bool = False,
                 metrics: PipelineMetrics | None = None) -> None:
        self._pool = pool
        self._upstream = upstream
        self._keep_landed_pages = keep_landed_pages
        self._metrics = metrics or PipelineMetrics.disabled(PIPELINE)

    @contextmanager
    def _step(self, stage: str, step: str) -> Iterator[None]:
        current_stage.set(stage)
        started = time.monotonic()
        try:
            yield
        finally:
            self._metrics.step_duration(stage, step, time.monotonic() - started)

    @activity.defn(name="sports_lookup_account")
    async def lookup_account(self, account_id: int) -> OrgRequest:
        with categorized_errors():
            row = await self._pool.fetchrow(
                "SELECT kind, org_id FROM sports.accounts WHERE id = $1", account_id)
            if row is None:
                raise PermanentError(f"account {account_id} is not in sports.accounts")
            return OrgRequest(row["kind"], row["org_id"], account_id, carried_errors()[0])

    @activity.defn(name="sports_list_accounts")
    async def list_accounts(self, kind: str) -> list[int]:
        with categorized_errors():
            rows = await self._pool.fetch(
                "SELECT id FROM sports.accounts WHERE $1 = 'all' OR kind = $1 ORDER BY id", kind)
            return [int(r["id"]) for r in rows]

    @activity.defn(name="sports_resolve_org")
    async def resolve_org(self, request: OrgRequest) -> OrgRef:
        """Checks the organisation exists upstream and finds its association."""
        current_stage.set("organisation")
        tally = ErrorTally()
        tally.merge(carried_errors()[0])
        with categorized_errors(tally):
            entity = await self._upstream.get_object(
                paths.organisation(request.kind, request.org_id), tally)
            name = entity.get("name")
            if request.kind == "club":
                association_id = entity.get("association_id")
                if not isinstance(association_id, str) or not association_id:
                    raise DataError(f"club {request.org_id!r} has no association_id")
            else:
                association_id = request.org_id
            return OrgRef(request.kind, request.org_id, name if isinstance(name, str) else "",
                          association_id, request.account_id, tally.counts)

    @activity.defn(name="sports_fetch_stream")
    async def fetch_stream(self, request: StreamRequest) -> LandedStream:
        with self._step(request.entity, "fetch"), categorized_errors():
            landed = await land_stream(self._pool, self._upstream, request, self._metrics)
        log.info("stream landed", entity=request.entity, scope=request.scope,
                 pages=landed.pages, items=landed.items)
        return landed

    @activity.defn(name="sports_stage_stream")
    async def stage_stream(self, request: StageRequest) -> StageOutcome:
        stager = stager_for(request.entity, request.competition_id, request.club_id)
        with self._step(request.entity, "stage"), categorized_errors():
            async with Heartbeater(), self._pool.acquire() as conn:
                outcome = await self._stage(conn, stager, request.load_id, request.run_id,
                                            request.scope, request.full_sync)
        outcome.errors = carried_errors()[0]
        log.info("load staged", entity=request.entity, scope=request.scope,
                 staged=outcome.staged, invalid=outcome.invalid, **outcome.merge)
        return outcome

    async def _stage(self, conn: Connection, stager: Stager, load_id: str, run_id: str,
                     scope: str, full_sync: bool) -> StageOutcome:
        outcome = await stage_load(
            conn, stager, load_id=load_id, run_id=run_id, scope=scope,
            lock_key=f"sports:{scope}", full_sync=full_sync,
            keep_pages=self._keep_landed_pages, return_keys=stager.entity == "competitions")
        if not outcome.already_staged:  # an earlier attempt counted these
            self._metrics.records_staged(stager.entity, outcome.staged)
            self._metrics.records_invalid(stager.entity, outcome.invalid)
        return outcome

    @activity.defn(name="sports_sync_streams")
    async def sync_streams(self, request: SyncRequest) -> SyncOutcome:
        """Fetch and stage every stream, in one activity: one Temporal round trip
        instead of two per stream. The streams are fetched (landed) all at once; each is
        staged when it has landed and the stream before it is staged (games are checked
        against the teams staged just before). Idempotent like its parts: a retried
        attempt finds landed pages and staged loads in Postgres and goes on after them.
        One heartbeat and one error tally cover the whole activity."""
        errors, failed_attempts = carried_errors()
        checkpoint = FetchCheckpoint(errors=errors, failed_attempts=failed_attempts)
        tally = ErrorTally(dict(errors))
        outcomes: list[StageOutcome] = []

        async def fetch(spec: StreamSpec, heartbeater: Heartbeater
                        ) -> tuple[LandedStream, float]:
            stream = StreamRequest(
                request.run_id, f"{request.run_id}/{spec.entity}/{request.scope}",
                spec.entity, spec.path, request.scope, spec.params, request.page_size)
            started = time.monotonic()
            with self._step(spec.entity, "fetch"):
                landed = await land_pages(self._pool, self._upstream, stream, checkpoint,
                                          tally, heartbeater, self._metrics)
            return landed, time.monotonic() - started

        async with Heartbeater(checkpoint) as heartbeater:
            with failures_recorded(tally, checkpoint, heartbeater):
                fetches = [asyncio.create_task(fetch(spec, heartbeater))
                           for spec in request.streams]
                try:
                    for spec, fetching in zip(request.streams, fetches, strict=True):
                        landed, fetch_seconds = await fetching
                        started = time.monotonic()
                        stager = stager_for(spec.entity, spec.competition_id, spec.club_id)
                        with self._step(spec.entity, "stage"):
                            async with self._pool.acquire() as conn:
                                outcome = await self._stage(conn, stager, landed.load_id,
                                                            request.run_id, request.scope,
                                                            request.full_sync)
                        log.info("stream synced", entity=spec.entity, scope=request.scope,
                                 pages=landed.pages, items=landed.items,
                                 staged=outcome.staged, invalid=outcome.invalid,
                                 **outcome.merge, fetch_ms=round(1000 * fetch_seconds, 1),
                                 stage_ms=round(1000 * (time.monotonic() - started), 1))
                        outcomes.append(outcome)
                finally:
                    # A failure (or a cancel) of one leaves no fetch running behind it.
                    for task in fetches:
                        task.cancel()
                    await asyncio.gather(*fetches, return_exceptions=True)
        return SyncOutcome(request.scope, outcomes, tally.counts)
