"""The sports sync's registration: everything the kernel composes for it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from activities.sports import PIPELINE
from activities.sports.search_attributes import ALL as SEARCH_ATTRIBUTES
from activities.sports.settings import API_URL_VARIABLE, STACK_URL_KEY, SportsSettings
from activities.sports.stagers import UNDO_ORDER
from pipeworks.registry import DevUpstream, Pipeline, PipelineResources
from pipeworks.settings import Settings
from starters.sports.cli import SCHEDULE_ACTIONS, app
from starters.sports.demo import sports_demo
from workflows.sports.account_sync import AccountSyncWorkflow
from workflows.sports.batch_sync import BatchSyncWorkflow
from workflows.sports.competitions import CompetitionsSyncWorkflow
from workflows.sports.inputs import AccountSyncInput, BatchSyncInput


def activities(resources: PipelineResources) -> Sequence[Callable[..., Any]]:
    from activities.sports.activities import SportsActivities

    settings = resources.settings
    sports = settings.of(SportsSettings)
    metrics = resources.metrics(PIPELINE)
    upstream = resources.http_client(sports.api_url(settings), metrics, token=sports.token,
                                     rate_limit_per_second=sports.upstream_rate_limit)
    built = SportsActivities(resources.pool, upstream, metrics=metrics,
                             keep_landed_pages=settings.keep_landed_pages)
    return [built.lookup_account, built.list_accounts, built.resolve_org, built.sync_streams]


def _sports(settings: Settings) -> SportsSettings:
    return settings.of(SportsSettings)


PIPELINE_DECLARATION = Pipeline(
    name=PIPELINE,
    description="competitions -> teams -> games of an account or organisation",
    workflows=(AccountSyncWorkflow, BatchSyncWorkflow, CompetitionsSyncWorkflow),
    activities=activities,
    settings=SportsSettings,
    migrations="activities.sports.migrations",
    schemas=("sports",),
    undo_tables=UNDO_ORDER,
    search_attributes=SEARCH_ATTRIBUTES,
    cli=app,
    cli_name=None,  # v1's `pipeworks sync`, `sync-all`, `accounts`
    schedule_actions=SCHEDULE_ACTIONS,
    dev_upstream=DevUpstream(
        name="demo upstream", process="upstream", module="devstack.sports",
        url_variable=API_URL_VARIABLE, state_key=STACK_URL_KEY,
        port=lambda settings: _sports(settings).upstream_port,
        external=lambda settings: _sports(settings).sports_api_url is not None,
        extra_args=lambda settings: [
            "--size", _sports(settings).upstream_size,
            "--latency-ms", str(_sports(settings).upstream_latency_ms)]),
    upstream_settings=("PIPEWORKS_SPORTS_API_URL", "PIPEWORKS_SPORTS_API_TOKEN",
                       "PIPEWORKS_UPSTREAM_RATE_LIMIT"),
    demo=sports_demo,
    inputs=(AccountSyncInput, BatchSyncInput),
)
