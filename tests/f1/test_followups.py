"""Re-reads of a session on Temporal Schedules (a real dev server): follow-up full syncs
at +1 h, +24 h and +7 d after the scheduled end, and one re-fetch after an upstream gap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import ScheduleActionStartWorkflow
from temporalio.testing import WorkflowEnvironment

from activities.f1.followups import (
    follow_up_id,
    refetch_id,
    schedule_follow_ups,
    schedule_refetch,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_follow_ups_of_a_session_that_just_ended(temporal_env: WorkflowEnvironment
                                                      ) -> None:
    client = temporal_env.client
    now = datetime.now(UTC)
    ended = now - timedelta(hours=2)   # +1 h is past: +24 h and +7 d remain
    moments = await schedule_follow_ups(client, 7001, ended, now, "f1-test")
    try:
        # The next whole minute after each moment.
        assert moments == [(ended + after).replace(second=0, microsecond=0)
                           + timedelta(minutes=1)
                           for after in (timedelta(hours=24), timedelta(days=7))]
        described = await client.get_schedule_handle(follow_up_id(7001)).describe()
        action = described.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert (action.workflow, action.id, action.task_queue) == (
            "F1SessionSyncWorkflow", "f1-session-7001", "f1-test")
        assert described.schedule.state.remaining_actions == 2
        next_times = described.info.next_action_times
        assert [t.replace(second=0) for t in next_times[:2]] == moments
        # Asked again (a later sync of the session): the schedule stays as it is.
        assert await schedule_follow_ups(client, 7001, ended, now, "f1-test") == moments
        assert (await client.get_schedule_handle(follow_up_id(7001)).describe()
                ).schedule.state.remaining_actions == 2
        # A session whose follow-ups are all past gets none.
        assert await schedule_follow_ups(client, 7002, now - timedelta(days=8), now,
                                         "f1-test") == []
    finally:
        await client.get_schedule_handle(follow_up_id(7001)).delete()


async def test_a_refetch_soon_after_a_gap(temporal_env: WorkflowEnvironment) -> None:
    client = temporal_env.client
    now = datetime.now(UTC)
    moment = await schedule_refetch(client, 7003, now, "f1-test")
    try:
        assert timedelta(minutes=9) <= moment - now <= timedelta(minutes=10)
        described = await client.get_schedule_handle(refetch_id(7003)).describe()
        action = described.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert action.workflow == "F1SessionSyncWorkflow"
        assert described.schedule.state.remaining_actions == 1
        # Asked again while one is due: the one due stands.
        again = await schedule_refetch(client, 7003, now + timedelta(minutes=1), "f1-test")
        assert again.replace(second=0, microsecond=0) == moment
    finally:
        await client.get_schedule_handle(refetch_id(7003)).delete()
