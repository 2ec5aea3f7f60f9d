"""Server-sent events of runs' progress. One watcher per run and server process asks
the run for its progress and tells every subscriber when the document changes, so 50
browsers on one run cost one query per poll. A watcher outlives a worker restart: an
unanswered query is retried until the run answers again or is found closed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from temporalio.client import Client

from pipeworks.logging import get_logger
from pipeworks.progress import FINAL_STATUSES
from starters.web.progress_source import RunNotFound, progress_of

log = get_logger("pipeworks.web.events")


@dataclass
class _Watch:
    workflow_id: str
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    version: int = 0
    event: tuple[str, Any] | None = None   # ("progress", document) | ("unavailable", why)
    subscribers: int = 0
    finished: bool = False
    first: asyncio.Future[None] | None = None
    task: asyncio.Task[None] | None = None


class ProgressHub:
    def __init__(self, client: Client, pool: asyncpg.Pool, poll_seconds: float) -> None:
        self._client = client
        self._pool = pool
        self._poll = poll_seconds
        self._watches: dict[str, _Watch] = {}

    async def subscribe(self, workflow_id: str) -> AsyncIterator[tuple[str, Any]]:
        """("progress", document) whenever it changes, ("unavailable", reason) while no
        worker answers; ends after the final document. RunNotFound before the first."""
        watch = self._watches.get(workflow_id)
        if watch is None or watch.finished:
            watch = _Watch(workflow_id)
            self._watches[workflow_id] = watch
            # Clients arriving together share the first query, and its 404.
            watch.first = asyncio.ensure_future(self._first(watch))
        assert watch.first is not None
        await asyncio.shield(watch.first)
        watch.subscribers += 1
        return self._follow(watch)

    async def _first(self, watch: _Watch) -> None:
        try:
            answer = await progress_of(self._client, self._pool, watch.workflow_id)
        except BaseException:
            watch.finished = True
            if self._watches.get(watch.workflow_id) is watch:
                del self._watches[watch.workflow_id]
            raise
        self._publish(watch, answer.document, answer.unavailable)
        if not watch.finished:
            watch.task = asyncio.create_task(self._run(watch))
        elif self._watches.get(watch.workflow_id) is watch:
            del self._watches[watch.workflow_id]  # its followers hold it; nothing else does

    async def _follow(self, watch: _Watch) -> AsyncIterator[tuple[str, Any]]:
        seen = 0
        last: tuple[str, Any] | None = None
        try:
            while True:
                async with watch.changed:
                    while watch.version <= seen:
                        await watch.changed.wait()
                    seen, event, finished = watch.version, watch.event, watch.finished
                if event is not None and event is not last:
                    last = event
                    yield event
                if finished:
                    return
        finally:
            watch.subscribers -= 1

    def _publish(self, watch: _Watch, document: dict[str, Any] | None,
                 unavailable: str | None) -> None:
        event: tuple[str, Any] = (("progress", document) if document is not None
                                  else ("unavailable", unavailable or "no answer"))
        if event == watch.event:
            return
        watch.event = event
        watch.version += 1
        if document is not None and document.get("status") in FINAL_STATUSES:
            watch.finished = True

    async def _run(self, watch: _Watch) -> None:
        try:
            while True:
                # Sleep first: the clients that started this watch join after its start.
                await asyncio.sleep(self._poll)
                if watch.finished or watch.subscribers <= 0:
                    break
                try:
                    answer = await progress_of(self._client, self._pool, watch.workflow_id)
                except RunNotFound:
                    answer = None
                except Exception as err:  # a bad moment of Temporal or Postgres: go on
                    log.warning("progress poll failed", workflow_id=watch.workflow_id,
                                error=str(err))
                    continue
                async with watch.changed:
                    if answer is None:
                        self._publish(watch, None, "the run is no longer known")
                        watch.finished = True
                    else:
                        self._publish(watch, answer.document, answer.unavailable)
                    watch.changed.notify_all()
        finally:
            if self._watches.get(watch.workflow_id) is watch:
                del self._watches[watch.workflow_id]
            async with watch.changed:
                watch.finished = True
                watch.version += 1
                watch.changed.notify_all()

    async def close(self) -> None:
        tasks = [w.task for w in self._watches.values() if w.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
