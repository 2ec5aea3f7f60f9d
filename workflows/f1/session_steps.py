"""What every F1 workflow that writes a session's rows shares: the tables its undo
restores, the session's lease, and counting a sync's outcome into `progress`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.f1.derived_tables import DERIVED_UNDO_ORDER
    from activities.f1.endpoints import RAW_UNDO_ORDER
    from activities.runs import LeaseRequest, UndoResult
    from pipeworks.errors import ErrorCategory
    from pipeworks.progress import StageProgress
    from pipeworks.streams import SyncOutcome
    from workflows.base import PipelineWorkflow

# Derived tables first: they follow the raw rows they were computed from.
UNDO_TABLES = [spec.name for spec in (*DERIVED_UNDO_ORDER, *RAW_UNDO_ORDER)]
SYNC_TIMEOUT = timedelta(hours=2)
STEP_TIMEOUT = timedelta(minutes=10)
HEARTBEAT_TIMEOUT = timedelta(seconds=60)


def lease_key(session_key: int) -> str:
    return f"f1:session:{session_key}"


class SessionWriter(PipelineWorkflow):
    """A workflow that writes one session's rows under the session's lease."""

    UNDO_TABLES = UNDO_TABLES

    def __init__(self) -> None:
        super().__init__()
        self._lease: LeaseRequest | None = None
        self.merge_totals = {"inserted": 0, "updated": 0, "unchanged": 0, "deleted": 0}
        # Run id -> the session whose rows it changed: its undo holds that session's
        # lease (restoring before-images must not overwrite another run's rows).
        self.undo_sessions: dict[str, int] = {}

    async def acquire_session_lease(self, session_key: int) -> None:
        """At most one run writes a session at a time (a live poll and a scheduled
        full sync would otherwise undo each other's rows)."""
        self._lease = self._lease_request(session_key)
        self.note(f"waiting for other runs on session {session_key} to finish")
        await self._acquire(self._lease)

    def _lease_request(self, session_key: int) -> LeaseRequest:
        info = workflow.info()
        return LeaseRequest(lease_key(session_key), info.workflow_id, info.run_id)

    async def _acquire(self, lease: LeaseRequest) -> None:
        await self.acquire_lease(lease, f"lease {lease.key}")

    async def undo(self, run_id: str, scope: str | None, reason: str) -> UndoResult:
        session_key = self.undo_sessions.get(run_id)
        if session_key is None or (self._lease is not None
                                   and self._lease.key == lease_key(session_key)):
            return await super().undo(run_id, scope, reason)
        lease = self._lease_request(session_key)
        await self.shielded(lambda: self._acquire(lease))
        try:
            return await super().undo(run_id, scope, reason)
        finally:
            await self.release_lease(lease, f"release {lease.key}")

    @property
    def leased(self) -> bool:
        return self._lease is not None

    async def release_session_lease(self) -> None:
        if self._lease is not None:
            await self.release_lease(self._lease, "release session lease")
            self._lease = None

    def count_synced(self, stage: StageProgress, synced: SyncOutcome,
                     header_merge: dict[str, int] | None = None) -> bool:
        """Adds a sync's counts to `stage` (and those of re-reading the session's own
        row); True when it changed any row."""
        changed = False
        for key, n in (header_merge or {}).items():
            self.merge_totals[key] = self.merge_totals.get(key, 0) + n
            changed = changed or (key != "unchanged" and n > 0)
        for outcome in synced.streams:
            stage.records.add(outcome.fetched, outcome.staged, outcome.invalid)
            if outcome.invalid:
                self.progress.count_errors({ErrorCategory.DATA.value: outcome.invalid})
            for key, n in outcome.merge.items():
                self.merge_totals[key] = self.merge_totals.get(key, 0) + n
            changed = changed or any(outcome.merge.get(k, 0)
                                     for k in ("inserted", "updated", "deleted"))
        self.progress.publish("merge", dict(self.merge_totals))
        return changed

    def merge_summary(self) -> str:
        m = self.merge_totals
        return (f"{m['inserted']} inserted, {m['updated']} updated, {m['deleted']} deleted, "
                f"{m['unchanged']} unchanged")

    def stats(self) -> dict[str, Any]:
        return {"merge": dict(self.merge_totals)}
