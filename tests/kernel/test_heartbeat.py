"""The heartbeater: an activity done within the quiet start sends no heartbeat, a longer
one heartbeats its latest progress, and a failing attempt's record goes out at once."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.testing import ActivityEnvironment

from pipeworks.heartbeat import Heartbeater


def environment(heartbeats: list[Any], timeout_seconds: float = 0.9) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, heartbeat_timeout=timedelta(seconds=timeout_seconds))
    env.on_heartbeat = lambda *details: heartbeats.append(details[0] if details else None)
    return env


@activity.defn
async def pages(seconds: float) -> None:
    async with Heartbeater({"page": 0}, quiet_start=0.5) as heartbeater:
        for page in range(1, 4):
            await asyncio.sleep(seconds / 3)
            heartbeater.record({"page": page})


@activity.defn
async def failing() -> None:
    async with Heartbeater({"page": 0}, quiet_start=10) as heartbeater:
        heartbeater.send({"errors": {"permanent": 1}, "failed_attempts": 1})


async def test_a_short_activity_sends_no_heartbeat() -> None:
    heartbeats: list[Any] = []
    await environment(heartbeats).run(pages, 0.15)
    assert heartbeats == []


async def test_a_longer_activity_heartbeats_its_latest_progress() -> None:
    heartbeats: list[Any] = []
    await environment(heartbeats).run(pages, 1.2)
    # The ticker's first beat after the quiet start (0.3 s: a third of the timeout
    # comes first), then every record.
    assert heartbeats[-1] == {"page": 3}
    assert heartbeats[0] in ({"page": 0}, {"page": 1})
    assert 2 <= len(heartbeats) <= 6


async def test_a_failing_attempt_sends_its_record_at_once() -> None:
    heartbeats: list[Any] = []
    await environment(heartbeats, timeout_seconds=30).run(failing)
    assert heartbeats == [{"errors": {"permanent": 1}, "failed_attempts": 1}]
