"""The Bitcoin reconciliation pipeline's registration: everything the kernel composes
for it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from activities.btc import PIPELINE
from activities.btc.search_attributes import ALL as SEARCH_ATTRIBUTES
from activities.btc.settings import (
    DEV_PASSWORD,
    DEV_USER,
    RPC_URL_VARIABLE,
    STACK_URL_KEY,
    BtcSettings,
)
from activities.btc.tables import UNDO_SPECS
from pipeworks.registry import DevUpstream, Pipeline, PipelineResources
from pipeworks.settings import Settings
from starters.btc.cli import SCHEDULE_ACTIONS, app
from starters.btc.demo import btc_demo
from starters.btc.web import web_parts
from workflows.btc.ingest import BtcIngestWorkflow
from workflows.btc.inputs import BtcIngestInput, BtcReconcileInput
from workflows.btc.reconcile import BtcReconcileWorkflow


def activities(resources: PipelineResources) -> Sequence[Callable[..., Any]]:
    from activities.btc.activities import BtcActivities
    from activities.btc.metrics import BtcMetrics
    from activities.btc.node import BtcNode

    settings = resources.settings
    btc = settings.of(BtcSettings)
    metrics = resources.metrics(PIPELINE)
    client = resources.http_client(btc.rpc_url(settings), metrics,
                                   basic_auth=btc.credentials())
    node = BtcNode(client, btc.btc_network, concurrency=btc.btc_rpc_concurrency,
                   batch_calls=btc.btc_rpc_batch_calls, cookie_file=btc.btc_rpc_cookie_file)
    built = BtcActivities(resources.pool, node, network=btc.btc_network,
                          min_confirmations=btc.btc_min_confirmations,
                          halving_interval=btc.halving_interval,
                          metrics=BtcMetrics(resources.meter))
    return [built.plan_range, built.ingest_batch, built.reconcile_batch, built.check_supply]


def _btc(settings: Settings) -> BtcSettings:
    return settings.of(BtcSettings)


PIPELINE_DECLARATION = Pipeline(
    name=PIPELINE,
    description="Per-block figures reconciled with a Bitcoin Core node, height by height",
    workflows=(BtcIngestWorkflow, BtcReconcileWorkflow),
    activities=activities,
    settings=BtcSettings,
    migrations="activities.btc.migrations",
    schemas=("btc",),
    undo_tables=UNDO_SPECS,
    search_attributes=SEARCH_ATTRIBUTES,
    cli=app,
    cli_name="btc",
    schedule_actions=SCHEDULE_ACTIONS,
    dev_upstream=DevUpstream(
        name="Bitcoin node emulator", process="btc-node", module="devstack.btc",
        url_variable=RPC_URL_VARIABLE, state_key=STACK_URL_KEY,
        port=lambda settings: _btc(settings).btc_node_port,
        external=lambda settings: _btc(settings).btc_rpc_url is not None,
        extra_args=lambda settings: ["--chain", _btc(settings).btc_node_chain,
                                     "--user", DEV_USER, "--password", DEV_PASSWORD]),
    upstream_settings=("PIPEWORKS_BTC_RPC_URL", "PIPEWORKS_BTC_RPC_USER",
                       "PIPEWORKS_BTC_RPC_PASSWORD", "PIPEWORKS_BTC_RPC_COOKIE_FILE",
                       "PIPEWORKS_BTC_NETWORK", "PIPEWORKS_BTC_MIN_CONFIRMATIONS"),
    demo=btc_demo,
    inputs=(BtcIngestInput, BtcReconcileInput),
    web=web_parts,
)
