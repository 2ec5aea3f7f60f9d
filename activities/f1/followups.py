"""Re-reads of a session on Temporal Schedules: the upstream corrects and backfills
past sessions for days (f1-api.md, "Latest version"), and a lap missing for every
driver usually reappears on a later fetch.

- Follow-ups: `f1-followup-<session>` runs a full `F1SessionSyncWorkflow` 1 h, 24 h and
  7 d after the session's scheduled end (the moments still ahead when it is created).
- A re-fetch: `f1-refetch-<session>` runs an incremental sync once, a while after a
  quality check found an upstream gap (the laps watermark stays before the gap, so the
  incremental pull reads it again).

Both are limited to their moments (`remaining_actions`): once spent, the Temporal server
closes such an idle schedule itself (after its retention, 7 days by default), so none
piles up without a sweeper.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.common import TypedSearchAttributes

FOLLOW_UPS = (timedelta(hours=1), timedelta(hours=24), timedelta(days=7))
REFETCH_AFTER = timedelta(minutes=10)
SESSION_WORKFLOW = "F1SessionSyncWorkflow"


def follow_up_id(session_key: int) -> str:
    return f"f1-followup-{session_key}"


def refetch_id(session_key: int) -> str:
    return f"f1-refetch-{session_key}"


def _at(moment: datetime) -> ScheduleCalendarSpec:
    """One exact minute (UTC): a calendar spec matching it once."""
    return ScheduleCalendarSpec(
        year=[ScheduleRange(moment.year)], month=[ScheduleRange(moment.month)],
        day_of_month=[ScheduleRange(moment.day)], hour=[ScheduleRange(moment.hour)],
        minute=[ScheduleRange(moment.minute)], second=[ScheduleRange(0)],
        day_of_week=[ScheduleRange(0, 6)])


def _schedule(session_key: int, mode: str, moments: list[datetime], task_queue: str,
              note: str, attributes: TypedSearchAttributes) -> Schedule:
    action = ScheduleActionStartWorkflow(
        SESSION_WORKFLOW, {"session_key": session_key, "mode": mode},
        id=f"f1-session-{session_key}", task_queue=task_queue,
        static_summary=f"{note} of session {session_key}", typed_search_attributes=attributes)
    return Schedule(
        action=action, spec=ScheduleSpec(calendars=[_at(m) for m in moments]),
        # A session sync already running (a live run's final sync, say) does the job.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(note=note, limited_actions=True, remaining_actions=len(moments)))


async def schedule_follow_ups(client: Client, session_key: int, date_end: datetime,
                              now: datetime, task_queue: str,
                              attributes: TypedSearchAttributes = TypedSearchAttributes.empty,
                              ) -> list[datetime]:
    """Creates the session's follow-up schedule (once: an existing one is kept) for the
    follow-up moments still ahead; returns them (empty: none left, nothing created)."""
    moments = [(date_end + after).replace(second=0, microsecond=0) + timedelta(minutes=1)
               for after in FOLLOW_UPS]
    ahead = [m for m in moments if m > now]
    if not ahead:
        return []
    # An existing one was created by an earlier sync of the session: kept as it is.
    with contextlib.suppress(ScheduleAlreadyRunningError):
        await client.create_schedule(
            follow_up_id(session_key),
            _schedule(session_key, "full", ahead, task_queue, "follow-up full sync",
                      attributes))
    return ahead


async def schedule_refetch(client: Client, session_key: int, now: datetime, task_queue: str,
                           attributes: TypedSearchAttributes = TypedSearchAttributes.empty,
                           ) -> datetime:
    """One incremental sync of the session a while from now (re-armed when an earlier
    one already ran)."""
    moment = (now + REFETCH_AFTER).replace(second=0, microsecond=0)
    schedule = _schedule(session_key, "incremental", [moment], task_queue,
                         "re-fetch after an upstream gap", attributes)
    try:
        await client.create_schedule(refetch_id(session_key), schedule)
    except ScheduleAlreadyRunningError:
        handle = client.get_schedule_handle(refetch_id(session_key))
        described = await handle.describe()
        pending = described.info.next_action_times
        if pending:
            return pending[0]  # one is due already
        await handle.delete()
        await client.create_schedule(refetch_id(session_key), schedule)
    return moment
