"""What every workflow input shares: strict validation, the workflow it starts, the
pipeline it belongs to, and a workflow id derived from it (asking twice attaches)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from temporalio.common import SearchAttributeKey, SearchAttributePair

from pipeworks import search_attributes
from pipeworks.settings import Settings
from pipeworks.validation import describe


class RunInput(BaseModel):
    """Base of a workflow's input. Validated inside the workflow (a bad input fails the
    run with one clear message instead of a workflow task retried forever) and by the
    starters before sending. Subclasses set the class variables and `workflow_id`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    WORKFLOW: ClassVar[str]          # the workflow type it starts
    PIPELINE: ClassVar[str]          # the `Pipeline` search attribute of its runs
    BATCH: ClassVar[bool] = False    # background work: runs at batch priority
    # Where each field comes from on the command line (an option or a setting), so that
    # an error names what the user can fix.
    SOURCES: ClassVar[dict[str, str]] = {
        "page_size": "PIPEWORKS_PAGE_SIZE",
        "heartbeat_timeout_seconds": "PIPEWORKS_HEARTBEAT_TIMEOUT_SECONDS",
        "deadline_seconds": "PIPEWORKS_RUN_DEADLINE_SECONDS",
    }

    # Tuning the starters fill in from settings; every field has a default.
    page_size: int = Field(default=100, ge=1, le=500, strict=True)
    heartbeat_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    deadline_seconds: float | None = Field(default=None, gt=0)

    @property
    def workflow_id(self) -> str:
        raise NotImplementedError

    @classmethod
    def tuning(cls, settings: Settings) -> dict[str, Any]:
        """The input fields that come from settings (a subclass adds its own)."""
        options: dict[str, Any] = {
            "page_size": settings.page_size,
            "heartbeat_timeout_seconds": settings.heartbeat_timeout_seconds,
        }
        if settings.run_deadline_seconds is not None:
            options["deadline_seconds"] = settings.run_deadline_seconds
        return options

    def search_attribute_pairs(self) -> list[tuple[SearchAttributeKey[str], str]]:
        """The run's search attributes at start (a subclass adds its own)."""
        return [(search_attributes.PIPELINE, self.PIPELINE)]

    def initial_search_attributes(self) -> list[SearchAttributePair[str]]:
        return [SearchAttributePair(k, v) for k, v in self.search_attribute_pairs()]


def describe_input_error(err: ValidationError) -> str:
    return "invalid input: " + describe(err, whole="input")
