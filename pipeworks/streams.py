"""The one generic land-and-stage activity body every pipeline's stream activity runs.

A `SyncRequest` names a set of streams. Each is fetched page by page with its pagination
strategy and every page is landed in Postgres as it arrives; each stream is staged
(validated, dead-lettered, merged with a change log) once it has landed and the stream
before it is staged. Records never leave the database: the workflow gets counts.

A retried attempt resumes after the last landed page (the database is the record) and
finds staged loads staged (their stored result comes back); heartbeats carry the error
tally across attempts.
"""


# No `from __future__ import annotations` here: Temporal's data converter resolves the
# annotations of these dataclasses each time it decodes one, and strings cost a compile.
import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import asyncpg

from pipeworks.activity_errors import as_pipeline_error
from pipeworks.db import Connection
from pipeworks.errors import ErrorCategory, as_application_error
from pipeworks.heartbeat import Heartbeater, carried_errors
from pipeworks.http import ErrorTally, UpstreamClient
from pipeworks.landing import begin_load, land_page
from pipeworks.logging import get_logger
from pipeworks.metrics import PipelineMetrics, current_stage
from pipeworks.pagination import CursorEnvelope, Paginator
from pipeworks.staging import StageOutcome, Stager, stage_load

log = get_logger("pipeworks.streams")


@dataclass
class StreamSpec:
    """One stream of a `SyncRequest`: where to fetch it, how, and how to stage it."""

    entity: str                    # names the stager, the load and the metrics' stage
    path: str
    params: dict[str, str] = field(default_factory=dict)
    # What the pipeline's `stager_for` needs besides the entity (e.g. a parent's id).
    stage_options: dict[str, str | None] = field(default_factory=dict)
    # The pipeline's name for a pagination strategy (see `StreamActivities.paginator_for`).
    pagination: str = "cursor"
    # What the pipeline's `paginator_for` needs besides the strategy (e.g. a time window).
    fetch_options: dict[str, str | None] = field(default_factory=dict)


@dataclass
class SyncRequest:
    """Fetch and stage `streams` in order. Each stream lands as load
    `<run_id>/<entity>/<scope>`; its changes are logged under `run_id` and `scope`."""

    run_id: str                    # the run whose change log records the changes
    scope: str                     # change-log and load scope (what an isolate undoes)
    streams: list[StreamSpec]
    page_size: int = 100
    full_sync: bool = True         # delete what the upstream no longer lists


@dataclass
class SyncOutcome:
    """Counts only: one StageOutcome per stream, in the request's order (the first
    stream's keys and labels when the stager returns them)."""

    scope: str
    streams: list[StageOutcome]
    errors: dict[str, int] = field(default_factory=dict)  # absorbed by retries


@dataclass
class FetchCheckpoint:
    """Heartbeat details: where the latest page landed, for people looking at a pending
    activity (resuming reads the landed pages themselves), and what went wrong so far."""

    next_page_no: int = 0
    cursor: str | None = None
    errors: dict[str, int] = field(default_factory=dict)
    failed_attempts: int = 0


@dataclass
class LandedStream:
    load_id: str
    entity: str
    pages: int
    items: int
    finished: bool = True  # False: every page landed, the load not yet marked landed


@contextmanager
def failures_recorded(tally: ErrorTally, checkpoint: FetchCheckpoint,
                      heartbeater: Heartbeater) -> Iterator[None]:
    """An activity attempt that fails heartbeats its error tally first (the next attempt
    and the workflow read it back), and fails with its category."""
    try:
        yield
    except Exception as raised:
        err = as_pipeline_error(raised)
        if err is None:
            raise
        # The HTTP client tallied what it retried (transient) or gave up on (data).
        if err.category in (ErrorCategory.PERMANENT, ErrorCategory.SYSTEM):
            tally.add(err.category)
        checkpoint.errors = tally.counts
        checkpoint.failed_attempts += 1
        heartbeater.send(checkpoint)
        raise as_application_error(err, tally.counts) from None


async def land_pages(
    pool: asyncpg.Pool, client: UpstreamClient,
    paginator_for: Callable[[frozenset[str]], Paginator], *, run_id: str,
    load_id: str, entity: str, scope: str | None, path: str, params: dict[str, str],
    tally: ErrorTally, metrics: PipelineMetrics,
    on_page: Callable[[int, str | None], None] = lambda page_no, resume: None,
) -> LandedStream:
    """Fetches the stream's pages after the last one landed, landing each one.
    `paginator_for` gets the resume points of the pages landed already.

    The load is not marked landed here: the stage that follows in the same activity
    does that in its own transaction (one round trip and one WAL flush fewer per
    stream), so a stream landed now comes back with `finished` False."""
    async with pool.acquire() as conn:
        state = await begin_load(conn, load_id=load_id, run_id=run_id, entity=entity,
                                 scope=scope, source_path=path)
    if state.status != "fetching":
        return LandedStream(load_id, entity, state.pages, state.items)
    page_no, resume, items = state.next_page_no, state.next_cursor, state.items
    if page_no == 0 or resume is not None:
        paginator = paginator_for(state.seen_cursors)
        async for page in paginator.pages(client, path, params, resume, tally):
            async with pool.acquire() as conn:
                await land_page(conn, load_id=load_id, page_no=page_no, body=page.body,
                                item_count=page.item_count, next_cursor=page.resume)
            metrics.records_fetched(entity, page.item_count)
            page_no += 1
            items += page.item_count
            on_page(page_no, page.resume)
    # else: the earlier attempt landed the last page but died before its stage.
    return LandedStream(load_id, entity, page_no, items, finished=False)


class StreamActivities:
    """Base of a pipeline's stream activities. A pipeline subclasses it, says how an
    entity is staged (`stager_for`) and which pagination a stream uses
    (`paginator_for`), and exposes `sync` under its own activity name:

        class MyActivities(StreamActivities):
            @activity.defn(name="my_sync_streams")
            async def sync_streams(self, request: SyncRequest) -> SyncOutcome:
                return await self.sync(request)
    """

    def __init__(self, pool: asyncpg.Pool, upstream: UpstreamClient, *,
                 metrics: PipelineMetrics, keep_landed_pages: bool = False,
                 lock_namespace: str = "") -> None:
        self._pool = pool
        self._upstream = upstream
        self._metrics = metrics
        self._keep_landed_pages = keep_landed_pages
        # Stages of one scope are serialised across runs and workers on this key.
        self._lock_namespace = lock_namespace

    def stager_for(self, spec: StreamSpec) -> Stager:
        raise NotImplementedError

    def paginator_for(self, spec: StreamSpec, page_size: int, landed: frozenset[str]
                      ) -> Paginator:
        """How `spec` pages; `landed` holds the resume points of its pages landed by an
        earlier attempt (a cursor seen again means the pagination loops)."""
        if spec.pagination != "cursor":
            raise ValueError(f"no pagination {spec.pagination!r} for {spec.entity}")
        return CursorEnvelope(page_size, seen_cursors=landed)

    def return_keys(self, spec: StreamSpec) -> bool:
        """Whether the stream's staged keys (and labels) come back to the workflow:
        only for small streams whose keys drive the next step."""
        return False

    def lock_key(self, scope: str) -> str:
        """What serialises the stages of `scope` across runs and workers (a pipeline
        whose scopes share rows maps them to one key)."""
        return f"{self._lock_namespace}:{scope}"

    @contextmanager
    def step(self, stage: str, step: str) -> Iterator[None]:
        """Labels what code below records (HTTP metrics, errors) and times the step."""
        current_stage.set(stage)
        started = time.monotonic()
        try:
            yield
        finally:
            self._metrics.step_duration(stage, step, time.monotonic() - started)

    async def stage(self, conn: Connection, spec: StreamSpec, load_id: str, run_id: str,
                    scope: str, full_sync: bool, landed: LandedStream | None = None
                    ) -> StageOutcome:
        """`landed`: a stream this attempt landed without finishing its load."""
        stager = self.stager_for(spec)
        outcome = await stage_load(
            conn, stager, load_id=load_id, run_id=run_id, scope=scope,
            lock_key=self.lock_key(scope), full_sync=full_sync,
            keep_pages=self._keep_landed_pages, return_keys=self.return_keys(spec),
            landed_pages=(landed.pages, landed.items)
            if landed is not None and not landed.finished else None)
        if not outcome.already_staged:  # an earlier attempt counted these
            self._metrics.records_staged(spec.entity, outcome.staged)
            self._metrics.records_invalid(spec.entity, outcome.invalid)
        return outcome

    async def sync(self, request: SyncRequest) -> SyncOutcome:
        """Fetch and stage every stream in one activity: one Temporal round trip instead
        of two per stream. The streams are fetched (landed) all at once; each is staged
        when it has landed and the stream before it is staged (a stream may be checked
        against the one staged before it). One heartbeat and one error tally cover the
        whole activity."""
        errors, failed_attempts = carried_errors()
        checkpoint = FetchCheckpoint(errors=errors, failed_attempts=failed_attempts)
        tally = ErrorTally(dict(errors))
        outcomes: list[StageOutcome] = []

        def landed_page(page_no: int, resume: str | None) -> None:
            checkpoint.next_page_no, checkpoint.cursor = page_no, resume
            checkpoint.errors = tally.counts
            heartbeater.record(checkpoint)

        async def fetch(spec: StreamSpec) -> tuple[LandedStream, float]:
            started = time.monotonic()
            with self.step(spec.entity, "fetch"):
                landed = await land_pages(
                    self._pool, self._upstream,
                    lambda seen: self.paginator_for(spec, request.page_size, seen),
                    run_id=request.run_id, load_id=load_id(request, spec), entity=spec.entity,
                    scope=request.scope, path=spec.path, params=spec.params, tally=tally,
                    metrics=self._metrics, on_page=landed_page)
            return landed, time.monotonic() - started

        async with Heartbeater(checkpoint) as heartbeater:
            with failures_recorded(tally, checkpoint, heartbeater):
                fetches = [asyncio.create_task(fetch(spec)) for spec in request.streams]
                try:
                    for spec, fetching in zip(request.streams, fetches, strict=True):
                        landed, fetch_seconds = await fetching
                        started = time.monotonic()
                        with self.step(spec.entity, "stage"):
                            async with self._pool.acquire() as conn:
                                outcome = await self.stage(
                                    conn, spec, landed.load_id, request.run_id,
                                    request.scope, request.full_sync, landed)
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


def load_id(request: SyncRequest, spec: StreamSpec) -> str:
    return f"{request.run_id}/{spec.entity}/{request.scope}"


__all__ = ["FetchCheckpoint", "LandedStream", "StreamActivities", "StreamSpec", "SyncOutcome",
           "SyncRequest", "failures_recorded", "land_pages", "load_id"]
