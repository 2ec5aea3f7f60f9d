"""The example pipeline's one registration."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pipeworks.registry import Pipeline, PipelineResources
from pipeworks.settings import PipelineSettings
from tests.example.activities import READINGS, ExampleActivities
from tests.example.workflow import PIPELINE, ExampleSyncInput, ExampleSyncWorkflow


class ExampleSettings(PipelineSettings):
    example_api_url: str = ""


def activities(resources: PipelineResources) -> Sequence[Callable[..., Any]]:
    url = resources.settings.of(ExampleSettings).example_api_url
    metrics = resources.metrics(PIPELINE)
    built = ExampleActivities(resources.pool, resources.http_client(url, metrics),
                              metrics=metrics, lock_namespace=PIPELINE)
    return [built.sync_streams]


EXAMPLE = Pipeline(
    name=PIPELINE, workflows=(ExampleSyncWorkflow,), activities=activities,
    settings=ExampleSettings, migrations="tests.example.migrations", schemas=("example",),
    undo_tables=(READINGS,), upstream_settings=("PIPEWORKS_EXAMPLE_API_URL",),
    description="readings per station and hour (the seam's proof)",
    inputs=(ExampleSyncInput,))
