"""Workflow inputs from the command line: validated by the workflows' own models, and
an error names the option (or setting) the user can fix."""

from __future__ import annotations

from typing import TypeVar

from pydantic import ValidationError

from pipeworks.inputs import RunInput, describe_input_error
from pipeworks.settings import Settings
from starters.client import StarterError

Model = TypeVar("Model", bound=RunInput)


def validated_input(model: type[Model], values: dict[str, object]) -> Model:
    """The input, or a StarterError (exit 2) of one line naming what is wrong."""
    try:
        return model.model_validate(values)
    except ValidationError as err:
        problem = err.errors(include_url=False)[0]
        field = str(problem["loc"][0]) if problem["loc"] else ""
        if field not in model.SOURCES:
            raise StarterError(describe_input_error(err)) from None
        message = problem["msg"].removeprefix("Value error, ")
        raise StarterError(f"{model.SOURCES[field]}: {message}") from None


def tuned_input(model: type[Model], settings: Settings, values: dict[str, object]) -> Model:
    """`values` plus the tuning the model takes from settings, validated."""
    return validated_input(model, {**model.tuning(settings), **values})
