"""Our figures against Bitcoin Core's own: the regtest test chain's getblockstats for
heights 101-103 as Core computed them (segwit, OP_RETURN, fees). And the client's
handling of what a node answers: another chain is refused with one message before any
work, a rotated cookie is read again, a pruned node's heights are unverifiable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

import devstack.btc
from devstack.btc import BtcNodeServer, load_chain
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.btc.conftest import btc_settings_for
from tests.btc.helpers import failure_of, ingest, open_findings, reconcile, start
from tests.worker import running_worker

pytestmark = pytest.mark.asyncio(loop_scope="session")

CORE_STATS = Path(devstack.btc.__file__).parent / "data" / "rpc_getblockstats.json"


async def test_our_calcs_equal_bitcoin_cores_getblockstats_on_its_regtest_chain(
        kernel_settings: Settings, temporal_env: WorkflowEnvironment, db: Connection,
        tmp_path: Path) -> None:
    with BtcNodeServer(load_chain("regtest-sample"), user="u", password="p") as node:
        settings = btc_settings_for(kernel_settings, node.url, btc_rpc_user="u",
                                    btc_rpc_password="p", btc_network="regtest")
        async with running_worker(settings, temporal_env.client):
            client = temporal_env.client
            await ingest(client, settings, network="regtest")
            result = await reconcile(client, settings, network="regtest")
    core = {s["height"]: s for s in json.loads(CORE_STATS.read_text())["stats"]}
    assert set(core) == {101, 102, 103}
    for height, stats in core.items():
        row = await db.fetchrow("SELECT * FROM btc.block_calcs WHERE height = $1", height)
        assert row is not None
        assert (row["block_hash"], row["tx_count"], row["input_count"], row["output_count"],
                row["total_out_sat"], row["total_fee_sat"], row["subsidy_sat"]) == (
            stats["blockhash"], stats["txs"], stats["ins"], stats["outs"],
            stats["total_out"], stats["totalfee"], stats["subsidy"]), height
        # Core's coinbases claim exactly subsidy + fees here.
        assert row["coinbase_out_sat"] == stats["subsidy"] + stats["totalfee"]
        assert row["unclaimed_sat"] == 0
    assert result["findings"] == {}, result["findings"]
    assert result["supply"]["ok"] is True, result["supply"]
    assert await open_findings(db) == set()


async def test_a_node_on_another_chain_is_refused_before_any_work(
        kernel_settings: Settings, temporal_env: WorkflowEnvironment, db: Connection) -> None:
    with BtcNodeServer(load_chain("mainnet-sample"), user="u", password="p") as node:
        settings = btc_settings_for(kernel_settings, node.url, btc_rpc_user="u",
                                    btc_rpc_password="p", btc_network="test")
        async with running_worker(settings, temporal_env.client):
            handle = await start(temporal_env.client, settings, "BtcIngestWorkflow", {},
                                 network="test")
            failure = await failure_of(handle)
            progress = await handle.query("progress")
        assert node.rpc_log.count() == 1  # getblockchaininfo, and nothing after it
    assert "chain 'main', not 'test'" in str(failure), failure
    assert progress["status"] == "failed" and progress["errors"]["permanent"] >= 1
    assert await db.fetchval("SELECT count(*) FROM btc.blocks") == 0


async def test_a_rotated_cookie_is_read_again(
        kernel_settings: Settings, temporal_env: WorkflowEnvironment, db: Connection,
        tmp_path: Path) -> None:
    with BtcNodeServer(load_chain("mainnet-sample"), cookie_dir=str(tmp_path)) as node:
        assert node.cookie_file is not None
        settings = btc_settings_for(kernel_settings, node.url, btc_rpc_user=None,
                                    btc_rpc_password=None,
                                    btc_rpc_cookie_file=Path(node.cookie_file))
        async with running_worker(settings, temporal_env.client):
            await ingest(temporal_env.client, settings, to_height=99)
            node.rotate_cookie()  # a node restart writes a new one
            await ingest(temporal_env.client, settings, from_height=100)
    assert await db.fetchval("SELECT count(*) FROM btc.block_calcs") == 439
