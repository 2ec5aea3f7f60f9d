"""Workflow inputs from the command line: validated by the workflows' own models, and
an error names the option (or setting) the user can fix."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from starters.client import StarterError
from workflows.inputs import describe_input_error

Model = TypeVar("Model", bound=BaseModel)

# Where each workflow input field comes from: a command-line option or a setting.
INPUT_SOURCES = {
    "account_id": "--account", "org_kind": "--org-kind", "org_id": "--org-id",
    "games_updated_since": "--since", "on_failure": "--on-failure", "kind": "--kind",
    "max_concurrent": "--max-concurrent",
    "competition_concurrency": "PIPEWORKS_COMPETITION_CONCURRENCY",
    "page_size": "PIPEWORKS_PAGE_SIZE",
    "heartbeat_timeout_seconds": "PIPEWORKS_HEARTBEAT_TIMEOUT_SECONDS",
    "deadline_seconds": "PIPEWORKS_RUN_DEADLINE_SECONDS",
}


def validated_input(model: type[Model], values: dict[str, object]) -> Model:
    """The input, or a StarterError (exit 2) of one line naming what is wrong."""
    try:
        return model.model_validate(values)
    except ValidationError as err:
        problem = err.errors(include_url=False)[0]
        field = str(problem["loc"][0]) if problem["loc"] else ""
        if field not in INPUT_SOURCES:
            raise StarterError(describe_input_error(err)) from None
        message = problem["msg"].removeprefix("Value error, ")
        raise StarterError(f"{INPUT_SOURCES[field]}: {message}") from None
