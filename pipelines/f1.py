"""The F1 pipeline's registration: everything the kernel composes for it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from activities.f1 import PIPELINE
from activities.f1.derived_tables import DERIVED_UNDO_ORDER
from activities.f1.endpoints import RAW_UNDO_ORDER
from activities.f1.search_attributes import ALL as SEARCH_ATTRIBUTES
from activities.f1.settings import API_URL_VARIABLE, STACK_URL_KEY, F1Settings
from pipeworks.registry import DevUpstream, Pipeline, PipelineResources
from pipeworks.settings import Settings
from starters.f1.cli import SCHEDULE_ACTIONS, app
from starters.f1.demo import f1_demo
from starters.f1.web import web_parts
from workflows.f1.inputs import F1LiveSessionInput, F1SeasonSyncInput, F1SessionSyncInput
from workflows.f1.live_session import F1LiveSessionWorkflow
from workflows.f1.season_sync import F1SeasonSyncWorkflow
from workflows.f1.session_sync import F1SessionSyncWorkflow


def activities(resources: PipelineResources) -> Sequence[Callable[..., Any]]:
    from activities.f1.activities import F1Activities

    settings = resources.settings
    f1 = settings.of(F1Settings)
    metrics = resources.metrics(PIPELINE)
    upstream = resources.http_client(f1.api_url(settings), metrics, token=f1.token,
                                     rate_limit_per_second=f1.f1_rate_limit,
                                     retry_after_default_seconds=f1.f1_retry_after_seconds)
    built = F1Activities(resources.pool, upstream, metrics=metrics, temporal=resources.temporal,
                         keep_landed_pages=settings.keep_landed_pages)
    return [built.sync_streams, built.plan_session, built.poll_session,
            built.season_sessions, built.record_stream_failures, built.derive_session,
            built.check_quality, built.live_status, built.schedule_follow_ups]


def _f1(settings: Settings) -> F1Settings:
    return settings.of(F1Settings)


PIPELINE_DECLARATION = Pipeline(
    name=PIPELINE,
    description="OpenF1-compatible timing data of every session, with race analytics",
    workflows=(F1SeasonSyncWorkflow, F1SessionSyncWorkflow, F1LiveSessionWorkflow),
    activities=activities,
    settings=F1Settings,
    migrations="activities.f1.migrations",
    schemas=("f1",),
    undo_tables=(*DERIVED_UNDO_ORDER, *RAW_UNDO_ORDER),
    search_attributes=SEARCH_ATTRIBUTES,
    cli=app,
    cli_name="f1",
    schedule_actions=SCHEDULE_ACTIONS,
    dev_upstream=DevUpstream(
        name="demo F1 upstream", process="f1-upstream", module="devstack.f1",
        url_variable=API_URL_VARIABLE, state_key=STACK_URL_KEY,
        port=lambda settings: _f1(settings).f1_upstream_port,
        external=lambda settings: _f1(settings).f1_api_url is not None,
        extra_args=lambda settings: ["--preset", "demo",
                                     "--speed", str(_f1(settings).f1_upstream_speed)]),
    upstream_settings=("PIPEWORKS_F1_API_URL", "PIPEWORKS_F1_API_TOKEN",
                       "PIPEWORKS_F1_RATE_LIMIT", "PIPEWORKS_F1_RETRY_AFTER_SECONDS"),
    demo=f1_demo,
    inputs=(F1SeasonSyncInput, F1SessionSyncInput, F1LiveSessionInput),
    web=web_parts,
)
