"""Workflow inputs (contracts/interfaces.md): what the `temporal` CLI sends as JSON.

Validated inside the workflow (a bad input fails the run with one clear message
instead of a workflow task retried forever) and by the starters before sending.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, StrictInt, StrictStr, model_validator
from temporalio.common import SearchAttributeKey

from activities.sports import BATCH_PIPELINE, PIPELINE
from activities.sports.search_attributes import ORG_ID, ORG_KIND
from activities.sports.settings import SportsSettings
from pipeworks.inputs import RunInput, describe_input_error
from pipeworks.settings import Settings
from pipeworks.validation import Timestamp as Rfc3339

OrgId = Annotated[StrictStr, Field(min_length=1, max_length=200)]
MAX_BIGINT = 2**63 - 1  # sports.accounts.id


class RunOptions(RunInput):
    """The sports tuning on top of the kernel's; every field has a default."""

    competition_concurrency: StrictInt = Field(default=4, ge=1, le=64)
    # How long a run waits out an upstream that keeps failing transiently, paused
    # between attempts, before it gives up on it (0: no pausing).
    outage_budget_seconds: float = Field(default=3600.0, ge=0)
    # An organisation with more competitions is synced in parts of this many, each a
    # child workflow, so that no workflow history grows past ~2,000 events.
    competitions_per_workflow: StrictInt = Field(default=250, ge=1, le=1000)

    SOURCES: ClassVar[dict[str, str]] = {
        **RunInput.SOURCES,
        "account_id": "--account", "org_kind": "--org-kind", "org_id": "--org-id",
        "games_updated_since": "--since", "on_failure": "--on-failure", "kind": "--kind",
        "max_concurrent": "--max-concurrent",
        "competition_concurrency": "PIPEWORKS_COMPETITION_CONCURRENCY",
    }

    @classmethod
    def tuning(cls, settings: Settings) -> dict[str, Any]:
        return {**super().tuning(settings), "competition_concurrency":
                settings.of(SportsSettings).competition_concurrency}


class AccountSyncInput(RunOptions):
    WORKFLOW = "AccountSyncWorkflow"
    PIPELINE = PIPELINE

    account_id: StrictInt | None = Field(default=None, ge=0, le=MAX_BIGINT)
    org_kind: Literal["association", "club"] | None = None
    org_id: OrgId | None = None
    games_updated_since: Rfc3339 | None = None
    on_failure: Literal["rollback", "isolate"] = "rollback"

    @model_validator(mode="after")
    def _one_target(self) -> AccountSyncInput:
        direct = self.org_kind is not None or self.org_id is not None
        if self.account_id is not None and direct:
            raise ValueError("give either account_id or org_kind + org_id, not both")
        if self.account_id is None and (self.org_kind is None or self.org_id is None):
            raise ValueError("give account_id, or both org_kind and org_id")
        return self

    @property
    def workflow_id(self) -> str:
        if self.account_id is not None:
            return f"sports-sync-account-{self.account_id}"
        return f"sports-sync-{self.org_kind}-{self.org_id}"

    @property
    def incremental(self) -> bool:
        return self.games_updated_since is not None

    def since_param(self) -> str | None:
        since: datetime | None = self.games_updated_since
        return since.isoformat() if since else None

    def search_attribute_pairs(self) -> list[tuple[SearchAttributeKey[str], str]]:
        pairs = super().search_attribute_pairs()
        if self.org_kind and self.org_id:
            pairs += [(ORG_KIND, self.org_kind), (ORG_ID, self.org_id)]
        return pairs


class BatchSyncInput(RunOptions):
    WORKFLOW = "BatchSyncWorkflow"
    PIPELINE = BATCH_PIPELINE
    BATCH = True

    kind: Literal["club", "association", "all"]
    max_concurrent: StrictInt = Field(default=4, ge=1, le=100)
    on_failure: Literal["rollback", "isolate"] = "rollback"

    @property
    def workflow_id(self) -> str:
        return f"sports-sync-batch-{self.kind}"

    def child_options(self) -> dict[str, Any]:
        # Only what was set: a child on a worker of an older version must not be
        # handed fields that version does not know.
        return self.model_dump(
            mode="json", exclude={"kind", "max_concurrent"}, exclude_none=True,
            exclude_unset=True)

    def search_attribute_pairs(self) -> list[tuple[SearchAttributeKey[str], str]]:
        return [*super().search_attribute_pairs(), (ORG_KIND, self.kind)]


__all__ = ["AccountSyncInput", "BatchSyncInput", "RunOptions", "describe_input_error"]
