"""The F1 workflows' inputs (interfaces.md, "F1 pipeline"): what the `temporal` CLI
sends as JSON, validated inside the workflow and by the starters."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, StrictInt, StrictStr
from temporalio.common import SearchAttributeKey

from activities.f1 import PIPELINE
from activities.f1.search_attributes import F1_SESSION, F1_YEAR
from pipeworks.inputs import RunInput

SessionKey = Annotated[StrictInt, Field(ge=1, le=2**31 - 1)]
SESSION_NAMES = ("Practice 1", "Practice 2", "Practice 3", "Qualifying", "Sprint Qualifying",
                 "Sprint", "Race")


class F1Input(RunInput):
    PIPELINE: ClassVar[str] = PIPELINE
    SOURCES: ClassVar[dict[str, str]] = {
        **RunInput.SOURCES, "year": "--year", "meeting_keys": "--meeting",
        "session_names": "--session-name", "mode": "--full", "session_key": "KEY",
        "poll_seconds": "--poll-seconds", "max_concurrent_sessions": "--max-concurrent",
    }


class F1SeasonSyncInput(F1Input):
    WORKFLOW: ClassVar[str] = "F1SeasonSyncWorkflow"
    BATCH: ClassVar[bool] = True

    year: StrictInt = Field(ge=1950, le=2100)
    meeting_keys: list[SessionKey] | None = None
    # None: every session; []: none (a calendar refresh only).
    session_names: list[Annotated[StrictStr, Field(min_length=1, max_length=100)]] | None = None
    mode: Literal["full", "incremental"] = "incremental"
    max_concurrent_sessions: StrictInt = Field(default=4, ge=1, le=32)

    @property
    def workflow_id(self) -> str:
        return f"f1-season-{self.year}"

    def search_attribute_pairs(self) -> list[tuple[SearchAttributeKey[str], str]]:
        return [*super().search_attribute_pairs(), (F1_YEAR, str(self.year))]


class F1SessionSyncInput(F1Input):
    WORKFLOW: ClassVar[str] = "F1SessionSyncWorkflow"

    session_key: SessionKey
    mode: Literal["full", "incremental"] = "incremental"
    # Set by a season for its sessions: the calendar (this session's and its meeting's
    # rows) was read a moment ago, so the session's own rows are not read again.
    calendar_synced: bool = False

    @property
    def workflow_id(self) -> str:
        return f"f1-session-{self.session_key}"

    def search_attribute_pairs(self) -> list[tuple[SearchAttributeKey[str], str]]:
        return [*super().search_attribute_pairs(), (F1_SESSION, str(self.session_key))]


class F1LiveSessionInput(F1Input):
    WORKFLOW: ClassVar[str] = "F1LiveSessionWorkflow"

    session_key: SessionKey
    # Never faster than 3 s: the upstream caches identical queries for 3 s.
    poll_seconds: float = Field(default=5.0, ge=3.0, le=3600.0)
    # Polls per run before it continues as new (about 8 history events each).
    polls_per_run: StrictInt = Field(default=200, ge=1, le=1000)
    # Where a continued run goes on (workflows/checkpoint.py); absent in the first run.
    checkpoint: dict[str, Any] | None = None

    @property
    def workflow_id(self) -> str:
        return f"f1-live-{self.session_key}"

    def search_attribute_pairs(self) -> list[tuple[SearchAttributeKey[str], str]]:
        return [*super().search_attribute_pairs(), (F1_SESSION, str(self.session_key))]
