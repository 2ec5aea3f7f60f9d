"""The Bitcoin pipeline's fixtures: the node emulator over HTTP (devstack/btc), settings
pointing at it, and a worker serving the Bitcoin pipeline only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.btc.settings import BtcSettings
from devstack.btc import BtcNodeServer, load_chain
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.worker import running_worker

NODE_USER, NODE_PASSWORD = "tester", "node-secret"


def btc_settings_for(kernel: Settings, url: str, **values: object) -> Settings:
    """This worker serves the Bitcoin pipeline only; the mainnet sample's tip is 438
    and every height of it is reconciled (min confirmations 0)."""
    options: dict[str, object] = {"btc_rpc_url": url, "btc_rpc_user": NODE_USER,
                                  "btc_rpc_password": NODE_PASSWORD, "btc_network": "main",
                                  "btc_min_confirmations": 0, **values}
    return kernel.model_copy(update={"pipelines": "btc_reconcile"}).with_pipeline(
        BtcSettings(**options, _env_file=None))  # type: ignore[arg-type]


@pytest.fixture
def btc_node() -> Iterator[BtcNodeServer]:
    """A fresh node per test: tests reorganise, prune and break it."""
    with BtcNodeServer(load_chain("mainnet-sample"), user=NODE_USER,
                       password=NODE_PASSWORD) as node:
        yield node


@pytest.fixture
def btc_settings(kernel_settings: Settings, btc_node: BtcNodeServer) -> Settings:
    return btc_settings_for(kernel_settings, btc_node.url)


@pytest_asyncio.fixture(loop_scope="session")
async def btc_worker(btc_settings: Settings, temporal_env: WorkflowEnvironment,
                     db: Connection) -> AsyncIterator[Worker]:
    async with running_worker(btc_settings, temporal_env.client) as running:
        yield running
