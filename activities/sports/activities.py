"""The sports sync's activities: look-ups, fetch (land a stream), stage (merge a load)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import asyncpg
from temporalio import activity

from activities.sports import paths
from activities.sports.stagers import CompetitionStager, GameStager, TeamStager
from pipeworks.activity_errors import categorized_errors
from pipeworks.errors import DataError, PermanentError
from pipeworks.heartbeat import Heartbeater, carried_errors
from pipeworks.http import ErrorTally, UpstreamClient
from pipeworks.logging import get_logger
from pipeworks.metrics import PipelineMetrics, current_stage
from pipeworks.staging import StageOutcome, Stager, stage_load
from pipeworks.streams import LandedStream, StreamRequest, land_stream


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
        stager: Stager
        if request.entity == "competitions":
            stager = CompetitionStager()
        elif request.entity == "teams":
            assert request.competition_id is not None
            stager = TeamStager(request.competition_id)
        else:
            assert request.competition_id is not None
            stager = GameStager(request.competition_id, request.club_id)
        with self._step(request.entity, "stage"), categorized_errors():
            async with Heartbeater(), self._pool.acquire() as conn:
                outcome = await stage_load(
                    conn, stager, load_id=request.load_id, run_id=request.run_id,
                    scope=request.scope, lock_key=f"sports:{request.scope}",
                    full_sync=request.full_sync, keep_pages=self._keep_landed_pages,
                    return_keys=request.entity == "competitions")
        outcome.errors = carried_errors()[0]
        log.info("load staged", entity=request.entity, scope=request.scope,
                 staged=outcome.staged, invalid=outcome.invalid, **outcome.merge)
        self._metrics.records_staged(request.entity, outcome.staged)
        self._metrics.records_invalid(request.entity, outcome.invalid)
        return outcome
