"""Child parts: a run too big for one workflow history does its work in child workflows,
one part after the other, and each part reports its counts to the parent by signal.

Reports are cumulative (a lost or late one is harmless) and bounded in number (each is a
few events of the parent's history). A report is a plain dict:

    {"part": 1, "seq": 3, "final": false,
     "stages": {"<stage>": {"done", "failed", "fetched", "staged", "invalid"}},
     "errors": {"<category>": n},
     "totals": {"<name>": n},          # the pipeline's own sums
     "lists": {"<name>": [...]},       # the pipeline's own append-only lists
     "latest": {"<name>": value}}      # the pipeline's own last values
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from pipeworks.progress import RunProgress, StageProgress

# A part reports at most this often, and at most `budget` times in all.
REPORT_SECONDS = 2.0


def stage_counts(stage: StageProgress) -> dict[str, int]:
    return {"done": stage.done, "failed": stage.failed, "fetched": stage.records.fetched,
            "staged": stage.records.staged, "invalid": stage.records.invalid}


@dataclass
class PartDelta:
    """What a report adds to what the parent had applied of that part."""

    totals: dict[str, int] = field(default_factory=dict)
    lists: dict[str, list[Any]] = field(default_factory=dict)
    latest: dict[str, Any] = field(default_factory=dict)


class PartsProgress:
    """The parent's side: applies each part's cumulative reports to its progress."""

    def __init__(self) -> None:
        self._last: dict[int, dict[str, Any]] = {}

    def apply(self, report: dict[str, Any], progress: RunProgress) -> PartDelta | None:
        """The delta of `report` (also applied to `progress`), or None when it is older
        than what was applied already."""
        part = int(report.get("part", 0))
        last = self._last.get(part) or {}
        if last and (last.get("final") or (
                not report.get("final") and int(last.get("seq", 0)) >= int(report.get("seq", 0)))):
            return None
        self._last[part] = report
        for name, counts in report.get("stages", {}).items():
            old = last.get("stages", {}).get(name, {})
            stage = progress.stage(name)

            def delta(key: str, new: dict[str, Any] = counts, old: dict[str, Any] = old) -> int:
                return int(new.get(key, 0)) - int(old.get(key, 0))

            stage.done += delta("done")
            stage.failed += delta("failed")
            stage.records.add(delta("fetched"), delta("staged"), delta("invalid"))
        old_errors = last.get("errors", {})
        progress.count_errors({k: int(n) - int(old_errors.get(k, 0))
                               for k, n in report.get("errors", {}).items()})
        old_totals = last.get("totals", {})
        old_lists = last.get("lists", {})
        return PartDelta(
            {k: int(n) - int(old_totals.get(k, 0)) for k, n in report.get("totals", {}).items()},
            {k: list(v)[len(old_lists.get(k, [])):] for k, v in report.get("lists", {}).items()},
            dict(report.get("latest", {})))


def failed_part_report(err: ChildWorkflowError) -> dict[str, Any] | None:
    """The final report a failed part carries in its error's details, if any."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.details:
        report = cause.details[0]
        if isinstance(report, dict) and "part" in report:
            return report
    return None


class PartReporter:
    """The part's side: signals its counts to the parent, at most every
    `REPORT_SECONDS` and at most `budget` times, one signal in flight at a time."""

    def __init__(self, part: int, budget: int, signal: str,
                 counts: Callable[[], dict[str, Any]]) -> None:
        self._part = part
        self._budget = budget
        self._signal_name = signal
        self._counts = counts
        self._sent = 0
        self._last: datetime = workflow.now()
        self._in_flight: asyncio.Task[None] | None = None

    def report(self, *, final: bool) -> dict[str, Any]:
        return {"part": self._part, "seq": self._sent + (1 if final else 0), "final": final,
                **self._counts()}

    def progressed(self) -> None:
        now = workflow.now()
        if (self._sent >= self._budget
                or (self._in_flight is not None and not self._in_flight.done())
                or (now - self._last).total_seconds() < REPORT_SECONDS):
            return
        self._sent += 1
        self._last = now
        self._in_flight = asyncio.create_task(self._send(self.report(final=False)))

    async def _send(self, report: dict[str, Any]) -> None:
        parent = workflow.info().parent
        if parent is None:
            return
        try:
            await workflow.get_external_workflow_handle(
                parent.workflow_id, run_id=parent.run_id).signal(self._signal_name, report)
        except Exception as err:  # progress is best effort; the result carries it all
            workflow.logger.warning("part progress not delivered: %s", err)

    async def done(self) -> None:
        if self._in_flight is not None and not self._in_flight.done():
            await self._in_flight


async def run_part(start: Callable[[], Awaitable[dict[str, Any]]],
                   apply: Callable[[dict[str, Any]], None]) -> None:
    """Runs one part to its end and applies its final report, also when it failed (its
    error carries the report); the failure is raised after."""
    try:
        report = await start()
    except ChildWorkflowError as err:
        counted = failed_part_report(err)
        if counted is not None:
            apply(counted)
        raise
    apply(report)
