"""The F1 pipeline's activities: plans, the stream activity (the kernel's
land-and-stage with the F1 stagers), derived metrics, quality checks and live status."""

# No `from __future__ import annotations` here: Temporal's data converter resolves the
# annotations of these dataclasses each time it decodes one.
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from temporalio import activity
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError

from activities.f1 import PIPELINE, followups
from activities.f1.derive import recompute_session
from activities.f1.endpoints import BY_NAME, SESSION_ENDPOINTS, SESSIONS
from activities.f1.metric_state import up_to_date
from activities.f1.plans import (
    OVERRUN,
    SessionHeader,
    calendar_streams,
    header_streams,
    read_header,
    scope_of,
    session_streams,
)
from activities.f1.quality import run_quality_checks
from activities.f1.search_attributes import F1_SESSION
from activities.f1.stagers import EndpointStager, record_state
from pipeworks import search_attributes
from pipeworks.activity_errors import categorized_errors
from pipeworks.db import Connection
from pipeworks.errors import PermanentError, SystemFailure, as_application_error
from pipeworks.heartbeat import carried_errors
from pipeworks.http import UpstreamClient
from pipeworks.metrics import PipelineMetrics
from pipeworks.pagination import JsonArrayWindows, Paginator
from pipeworks.staging import Stager
from pipeworks.streams import StreamActivities, StreamSpec, SyncOutcome, SyncRequest

LOCK_NAMESPACE = "f1"
# Halvings of a date window the upstream refuses as too broad (422), in a row.
MAX_REFUSALS = 8
# A session is live until race control says it finished, or this long after its
# scheduled end (interfaces.md, F1LiveSessionWorkflow).
LIVE_GRACE = timedelta(hours=2)
# The sessions whose derived metrics read a qualifying session's starting grid.
_GRID_DEPENDENTS = """
    SELECT r.session_key FROM f1.sessions q
    JOIN f1.sessions r ON r.meeting_key = q.meeting_key
    WHERE q.session_key = $1
      AND ((q.session_name = 'Qualifying' AND r.session_name = 'Race')
           OR (q.session_name IN ('Sprint Qualifying', 'Sprint Shootout')
               AND r.session_name = 'Sprint'))
      AND EXISTS (SELECT 1 FROM f1.laps l WHERE l.session_key = r.session_key)
"""
# A session is current from this long before its start to OVERRUN after its end.
OVERLAP_BEFORE = timedelta(hours=1)
# A gap found later than this after the session's end waits for the follow-ups.
REFETCH_WHILE = timedelta(hours=24)


@dataclass
class SessionRequest:
    run_id: str                     # the run whose change log records the changes
    session_key: int
    full: bool
    scope: str = ""                 # "" : the session's own scope
    refresh_header: bool = True     # re-read the session's row first
    meeting: bool = True            # and its meeting's
    timeless: bool = True           # and the streams without a timestamp


@dataclass
class SessionPlan:
    """A session's streams to sync, and what the workflow needs to know of it."""

    session_key: int
    meeting_key: int
    session_name: str
    session_type: str
    date_start: str
    date_end: str
    is_cancelled: bool
    request: SyncRequest
    errors: dict[str, int] = field(default_factory=dict)  # absorbed by retries
    # What re-reading the session's own row changed (inserted/updated/...).
    header_merge: dict[str, int] = field(default_factory=dict)


@dataclass
class SeasonSelection:
    year: int
    meeting_keys: list[int] = field(default_factory=list)   # empty: every meeting
    session_names: list[str] | None = None                  # None: every session


@dataclass
class SessionRef:
    session_key: int
    meeting_key: int
    session_name: str
    label: str                      # e.g. "Bahrain Grand Prix, Race"


@dataclass
class StreamFailure:
    run_id: str
    session_key: int
    endpoints: list[str]
    reason: str


@dataclass
class DeriveRequest:
    run_id: str
    session_key: int
    changed: bool                   # the run changed raw rows of the session


@dataclass
class DeriveSummary:
    computed: bool
    metric_version: str | None = None
    changes: dict[str, int] = field(default_factory=dict)   # inserted/updated/deleted
    partial: list[str] = field(default_factory=list)


@dataclass
class QualityRequest:
    run_id: str
    session_key: int
    live: bool = False


@dataclass
class QualitySummary:
    checks: int
    failed: dict[str, int] = field(default_factory=dict)    # by severity
    gaps: list[int] = field(default_factory=list)           # lap numbers missing for all


@dataclass
class LiveStatus:
    finished: bool                  # race control says the session is over
    reason: str | None
    lag_seconds: dict[str, float | None] = field(default_factory=dict)
    # The wall clock is two hours past the scheduled end (the live run then ends once
    # nothing new arrives: a replayed session runs on its own clock).
    past_grace: bool = False


@dataclass
class FollowUpRequest:
    session_key: int
    date_end: str                   # the session's scheduled end (RFC 3339)
    gaps: bool                      # a quality check found an upstream gap
    with_search_attributes: bool    # the namespace has ours registered


@dataclass
class FollowUps:
    follow_ups: list[str] = field(default_factory=list)   # moments (RFC 3339)
    refetch: str | None = None


@dataclass
class PollRequest:
    changes_run_id: str             # the live chain's first run: one undo covers it all
    session_key: int
    poll: int                       # the poll's number in the chain: its loads' scope
    refresh_header: bool            # re-read the session's row (the first poll of a run)
    quality: bool = False           # also run the (live) quality checks
    timeless: bool = True           # also the streams without a timestamp


@dataclass
class PollResult:
    fetched: int
    staged: int
    invalid: int
    merge: dict[str, int]
    derived: bool
    status: LiveStatus
    quality_failed: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)  # absorbed by retries


def stager_for(spec: StreamSpec) -> Stager:
    endpoint = BY_NAME[spec.entity]
    options = spec.stage_options
    run_id = options.get("run_id") or ""
    session_text = options.get("session_key")
    session_key = int(session_text) if session_text else None
    delete: tuple[str, Sequence[Any]] | None = None
    if options.get("delete") == "session":
        delete = "t.session_key = $3", (session_key,)
    elif options.get("delete") == "year" and endpoint is SESSIONS:
        # A session with timing rows is never deleted by a calendar's answer.
        delete = ("t.year = $3 AND NOT EXISTS (SELECT 1 FROM f1.laps l"
                  " WHERE l.session_key = t.session_key)", (int(options.get("year") or 0),))
    elif options.get("delete") == "year":
        delete = "t.year = $3", (int(options.get("year") or 0),)
    elif options.get("delete") == "window":
        assert endpoint.time_field is not None
        delete = (f"t.session_key = $3 AND t.{endpoint.time_field} >= $4::timestamptz"
                  f" AND t.{endpoint.time_field} < $5::timestamptz",
                  (session_key, _moment(options["window_start"]),
                   _moment(options["window_end"])))
    return EndpointStager(endpoint, session_key=session_key, run_id=run_id,
                          delete_where=delete, keeps_state=endpoint in SESSION_ENDPOINTS)


def _moment(text: str | None) -> datetime:
    assert text is not None
    return datetime.fromisoformat(text)


def paginator_for(spec: StreamSpec) -> Paginator:
    options = spec.fetch_options
    if not options.get("window_field"):
        return JsonArrayWindows()
    end, size = options.get("window_end"), options.get("window_seconds")
    return JsonArrayWindows(field=options["window_field"],
                            start=_moment(options.get("window_start")),
                            end=_moment(end) if end else None,
                            window=timedelta(seconds=float(size)) if size else None,
                            # A 422 says "too broad": narrow down to the minimum.
                            max_refusals=MAX_REFUSALS)


class F1Activities(StreamActivities):
    def __init__(self, pool: asyncpg.Pool, upstream: UpstreamClient, *,
                 metrics: PipelineMetrics | None = None, temporal: Client | None = None,
                 keep_landed_pages: bool = False) -> None:
        super().__init__(pool, upstream, metrics=metrics or PipelineMetrics.disabled(PIPELINE),
                         keep_landed_pages=keep_landed_pages, lock_namespace=LOCK_NAMESPACE)
        self._temporal = temporal

    def stager_for(self, spec: StreamSpec) -> Stager:
        return stager_for(spec)

    def paginator_for(self, spec: StreamSpec, page_size: int, landed: frozenset[str]
                      ) -> Paginator:
        return paginator_for(spec)

    def lock_key(self, scope: str) -> str:
        # A live run's polls (`session:K#poll-N`) write the same rows as its syncs.
        return super().lock_key(scope.split("#", 1)[0])

    @activity.defn(name="f1_sync_streams")
    async def sync_streams(self, request: SyncRequest) -> SyncOutcome:
        return await self.sync(request)

    @activity.defn(name="f1_plan_session")
    async def plan_session(self, request: SessionRequest) -> SessionPlan:
        """Re-reads the session's own row (a session sync upserts it), then plans the
        pull of its streams from what is merged already."""
        scope = request.scope or scope_of(request.session_key)
        errors: dict[str, int] = dict(carried_errors()[0])
        header_merge: dict[str, int] = {}
        if request.refresh_header:
            async with self._pool.acquire() as conn:
                known = await read_header(conn, request.session_key)
            synced = await self.sync(SyncRequest(
                request.run_id, scope,
                header_streams(request.session_key, request.run_id, known), full_sync=False))
            errors = dict(synced.errors)  # it started from the carried ones
            header_merge = dict(synced.streams[0].merge)
        with categorized_errors():
            async with self._pool.acquire() as conn:
                header = await read_header(conn, request.session_key)
                if header is None:
                    raise PermanentError(
                        f"session {request.session_key} is not listed by the upstream")
                streams = await session_streams(
                    conn, header, request.run_id, full=request.full, now=datetime.now(UTC),
                    meeting=request.meeting, timeless=request.timeless)
        plan = _plan(header, SyncRequest(request.run_id, scope, streams,
                                         full_sync=request.full), errors)
        plan.header_merge = header_merge
        return plan

    @activity.defn(name="f1_poll_session")
    async def poll_session(self, request: PollRequest) -> PollResult:
        """One poll of a live session in one activity: an incremental pull of every
        stream, the derived metrics when it changed rows, and whether the session is
        over (a live run polls every few seconds: one Temporal round trip each)."""
        scope = f"{scope_of(request.session_key)}#poll-{request.poll}"
        carried = carried_errors()[0]
        plan = await self.plan_session(SessionRequest(
            request.changes_run_id, request.session_key, full=False, scope=scope,
            refresh_header=request.refresh_header, meeting=request.refresh_header,
            timeless=request.timeless))
        synced = await self.sync(plan.request)
        merge = {"inserted": 0, "updated": 0, "unchanged": 0, "deleted": 0}
        for key, n in plan.header_merge.items():
            merge[key] = merge.get(key, 0) + n
        fetched = staged = invalid = 0
        for outcome in synced.streams:
            fetched, staged = fetched + outcome.fetched, staged + outcome.staged
            invalid += outcome.invalid
            for key, n in outcome.merge.items():
                merge[key] = merge.get(key, 0) + n
        changed = any(merge[k] for k in ("inserted", "updated", "deleted"))
        derived = await self.derive_session(DeriveRequest(
            request.changes_run_id, request.session_key, changed))
        quality_failed: dict[str, int] = {}
        if request.quality:
            quality = await self.check_quality(QualityRequest(
                request.changes_run_id, request.session_key, live=True))
            quality_failed = quality.failed
        status = await self.live_status(request.session_key)
        # Both syncs started from the errors carried from an earlier attempt: once.
        errors = dict(synced.errors)
        for category, n in plan.errors.items():
            errors[category] = errors.get(category, 0) + n - carried.get(category, 0)
        return PollResult(fetched, staged, invalid, merge, derived.computed, status,
                          quality_failed, errors)

    @activity.defn(name="f1_season_sessions")
    async def season_sessions(self, selection: SeasonSelection) -> list[SessionRef]:
        """The selected sessions of a season that started and are not cancelled, in the
        order they ran (session keys are not chronological)."""
        with categorized_errors():
            rows = await self._pool.fetch(
                """
                SELECT s.session_key, s.meeting_key, s.session_name,
                       coalesce(m.meeting_name, 'meeting ' || s.meeting_key) AS meeting_name
                FROM f1.sessions s LEFT JOIN f1.meetings m USING (meeting_key)
                WHERE s.year = $1 AND NOT s.is_cancelled AND NOT coalesce(m.is_cancelled, false)
                  AND s.date_start <= now()
                  AND (cardinality($2::int[]) = 0 OR s.meeting_key = ANY($2::int[]))
                  AND ($3::text[] IS NULL OR s.session_name = ANY($3::text[]))
                ORDER BY s.date_start, s.session_key
                """, selection.year, selection.meeting_keys, selection.session_names)
        return [SessionRef(r["session_key"], r["meeting_key"], r["session_name"],
                           f"{r['meeting_name']}, {r['session_name']}") for r in rows]

    @activity.defn(name="f1_record_stream_failures")
    async def record_stream_failures(self, failure: StreamFailure) -> None:
        """A failed pull is recorded as failed, never as empty or done (the rows it
        would have written were not written: the watermark stays)."""
        with categorized_errors():
            async with self._pool.acquire() as conn:
                for endpoint in failure.endpoints:
                    await record_state(conn, failure.session_key, endpoint, "failed", None, 0,
                                       failure.reason[:500], failure.run_id, None)

    @activity.defn(name="f1_derive_session")
    async def derive_session(self, request: DeriveRequest) -> DeriveSummary:
        with categorized_errors():
            async with self._pool.acquire() as conn:
                if not request.changed and await up_to_date(conn, request.session_key):
                    return DeriveSummary(computed=False)
                outcome = await recompute_session(conn, request.session_key,
                                                  run_id=request.run_id,
                                                  scope=scope_of(request.session_key))
                # A qualifying session's grid is its race's starting positions.
                dependents = [] if not request.changed else await conn.fetch(
                    _GRID_DEPENDENTS, request.session_key)
                for dependent in dependents:
                    key = dependent["session_key"]
                    await recompute_session(conn, key, run_id=request.run_id,
                                            scope=scope_of(key))
        changes: dict[str, int] = {}
        for counts in outcome.counts.values():
            for name, n in counts.items():
                if name != "unchanged":
                    changes[name] = changes.get(name, 0) + n
        return DeriveSummary(True, outcome.metric_version, changes,
                             list(outcome.partial_reasons))

    @activity.defn(name="f1_check_quality")
    async def check_quality(self, request: QualityRequest) -> QualitySummary:
        with categorized_errors():
            async with self._pool.acquire() as conn:
                outcome = await run_quality_checks(conn, request.session_key,
                                                   run_id=request.run_id, live=request.live,
                                                   now=datetime.now(UTC))
        failed: dict[str, int] = {}
        for check in outcome.results:
            if not check.passed:
                failed[check.severity] = failed.get(check.severity, 0) + 1
        return QualitySummary(len(outcome.results), failed, list(outcome.gaps))

    @activity.defn(name="f1_schedule_follow_ups")
    async def schedule_follow_ups(self, request: FollowUpRequest) -> FollowUps:
        """The follow-up full syncs of a finished session (+1 h, +24 h, +7 d after its
        scheduled end), and after an upstream gap one re-fetch soon, while the session
        ended less than a day ago (later the follow-ups read it again)."""
        if self._temporal is None:
            raise as_application_error(SystemFailure("no Temporal client in this worker"))
        now = datetime.now(UTC)
        date_end = datetime.fromisoformat(request.date_end)
        attributes = TypedSearchAttributes.empty
        if request.with_search_attributes:
            attributes = TypedSearchAttributes([
                SearchAttributePair(search_attributes.PIPELINE, PIPELINE),
                SearchAttributePair(F1_SESSION, str(request.session_key))])
        task_queue = activity.info().task_queue
        try:
            moments = await followups.schedule_follow_ups(
                self._temporal, request.session_key, date_end, now, task_queue, attributes)
            refetch = None
            if request.gaps and now < date_end + REFETCH_WHILE:
                refetch = await followups.schedule_refetch(
                    self._temporal, request.session_key, now, task_queue, attributes)
        except RPCError as err:
            raise as_application_error(SystemFailure(
                f"cannot schedule re-reads of session {request.session_key}: {err.message}")
            ) from None
        return FollowUps([m.isoformat() for m in moments],
                         refetch.isoformat() if refetch else None)

    @activity.defn(name="f1_live_status")
    async def live_status(self, session_key: int) -> LiveStatus:
        """Whether the session finished, and how far behind each stream's newest row is
        (against the wall clock, or for a past session replayed on its own clock,
        against the newest row of any stream)."""
        with categorized_errors():
            async with self._pool.acquire() as conn:
                header = await read_header(conn, session_key)
                if header is None:
                    raise PermanentError(f"session {session_key} is not in f1.sessions")
                # Qualifying shows a chequered flag after each phase: only the last
                # phase's (or an unphased one) ends the session.
                finished = await conn.fetchval(
                    """
                    SELECT coalesce(message, flag) FROM f1.race_control
                    WHERE session_key = $1
                      AND (upper(coalesce(message, '')) LIKE 'SESSION FINISHED%'
                           OR ((upper(coalesce(message, '')) LIKE 'CHEQUERED FLAG%'
                                OR flag = 'CHEQUERED')
                               AND ($2 <> 'Qualifying' OR qualifying_phase IS NULL
                                    OR qualifying_phase >= 3)))
                    ORDER BY date NULLS LAST LIMIT 1
                    """, session_key, header.session_type)
                newest = await self._newest_rows(conn, header)
        now = datetime.now(UTC)
        seen = [t for t in newest.values() if t is not None]
        # A session of today is measured against the wall clock; a past one replayed
        # (a demo upstream's clock) against the newest row of any stream.
        current = header.date_start - OVERLAP_BEFORE <= now <= header.date_end + OVERRUN
        clock = max([now, *seen]) if current or not seen else max(seen)
        lag = {name: (round((clock - t).total_seconds(), 3) if t is not None else None)
               for name, t in newest.items()}
        past_grace = now > header.date_end + LIVE_GRACE
        if finished is not None:
            return LiveStatus(True, f"race control: {finished}", lag, past_grace)
        return LiveStatus(False, None, lag, past_grace)

    async def _newest_rows(self, conn: Connection, header: SessionHeader
                           ) -> dict[str, datetime | None]:
        newest: dict[str, datetime | None] = {}
        for endpoint in SESSION_ENDPOINTS:
            if endpoint.time_field is None or (
                    endpoint.session_types is not None
                    and header.session_type not in endpoint.session_types):
                continue
            newest[endpoint.name] = await conn.fetchval(endpoint.newest_sql,
                                                        header.session_key)
        return newest


def _plan(header: SessionHeader, request: SyncRequest, errors: dict[str, int]) -> SessionPlan:
    return SessionPlan(header.session_key, header.meeting_key, header.session_name,
                       header.session_type, header.date_start.isoformat(),
                       header.date_end.isoformat(), header.is_cancelled, request, errors)


def calendar_request(year: int, run_id: str, full: bool) -> SyncRequest:
    return SyncRequest(run_id, f"calendar:{year}", calendar_streams(year, run_id, full),
                       full_sync=full)
