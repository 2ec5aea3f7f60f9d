"""The sports sync's activities: look-ups, and the stream activity (the kernel's
land-and-stage, with the sports stagers)."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg
from temporalio import activity

from activities.sports import PIPELINE, paths
from activities.sports.stagers import CompetitionStager, GameStager, TeamStager
from pipeworks.activity_errors import categorized_errors
from pipeworks.errors import DataError, PermanentError
from pipeworks.heartbeat import carried_errors
from pipeworks.http import ErrorTally, UpstreamClient
from pipeworks.metrics import PipelineMetrics, current_stage
from pipeworks.staging import Stager
from pipeworks.streams import StreamActivities, StreamSpec, SyncOutcome, SyncRequest


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


def competitions_stream(kind: str, org_id: str) -> StreamSpec:
    return StreamSpec("competitions", paths.competitions(kind, org_id))


def competition_streams(competition_id: str, club_id: str | None, since: str | None
                        ) -> list[StreamSpec]:
    """A competition's teams, then its games (checked against the teams just staged)."""
    games_params = {"updated_since": since} if since else {}
    return [
        StreamSpec("teams", paths.teams(competition_id), {},
                   {"competition_id": competition_id}),
        StreamSpec("games", paths.games(competition_id), games_params,
                   {"competition_id": competition_id, "club_id": club_id}),
    ]


def stager_for(spec: StreamSpec) -> Stager:
    if spec.entity == "competitions":
        return CompetitionStager()
    competition_id = spec.stage_options.get("competition_id")
    assert competition_id is not None
    if spec.entity == "teams":
        return TeamStager(competition_id)
    return GameStager(competition_id, spec.stage_options.get("club_id"))


# Stages of one competition are serialised on "sports:<competition id>", as before the
# pipeline seam, so that workers of both versions exclude each other during an upgrade.
LOCK_NAMESPACE = "sports"


class SportsActivities(StreamActivities):
    def __init__(self, pool: asyncpg.Pool, upstream: UpstreamClient,
                 *, keep_landed_pages: bool = False,
                 metrics: PipelineMetrics | None = None) -> None:
        super().__init__(pool, upstream, metrics=metrics or PipelineMetrics.disabled(PIPELINE),
                         keep_landed_pages=keep_landed_pages, lock_namespace=LOCK_NAMESPACE)

    def stager_for(self, spec: StreamSpec) -> Stager:
        return stager_for(spec)

    def return_keys(self, spec: StreamSpec) -> bool:
        return spec.entity == "competitions"  # the run syncs each of them next

    @activity.defn(name="sports_sync_streams")
    async def sync_streams(self, request: SyncRequest) -> SyncOutcome:
        return await self.sync(request)

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
