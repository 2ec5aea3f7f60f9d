"""Which workflow a start request means: the pipeline's input model that accepts the
body (or the one `?workflow=` names), with the tuning a starter takes from settings."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from pipeworks.inputs import RunInput, describe_input_error
from pipeworks.registry import Pipeline
from pipeworks.settings import Settings
from starters.web.problems import problem


def input_models(pipeline: Pipeline) -> list[type[RunInput]]:
    return [m for m in pipeline.inputs if isinstance(m, type) and issubclass(m, RunInput)]


def chosen_input(pipeline: Pipeline, settings: Settings, body: dict[str, Any],
                 workflow: str | None) -> RunInput:
    models = input_models(pipeline)
    if not models:
        problem(405, "Not startable", f"pipeline {pipeline.name!r} takes no runs over the API")
    if workflow is not None:
        models = [m for m in models if workflow == m.WORKFLOW]
        if not models:
            names = ", ".join(m.WORKFLOW for m in input_models(pipeline))
            problem(422, "Unknown workflow", f"workflow: {workflow!r} is not one of "
                                             f"{pipeline.name}'s: {names}")
    fitting: list[RunInput] = []
    errors: list[str] = []
    for model in models:
        try:
            fitting.append(model.model_validate({**model.tuning(settings), **body}))
        except ValidationError as err:
            errors.append(f"{model.WORKFLOW}: {describe_input_error(err)}")
    if len(fitting) == 1:
        return fitting[0]
    if not fitting:
        problem(422, "Invalid input", "; ".join(errors))
    names = ", ".join(f.WORKFLOW for f in fitting)
    problem(422, "Ambiguous input", f"the body is an input of {names}: name one with "
                                    "?workflow=")
