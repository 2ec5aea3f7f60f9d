"""200,000 synthetic heights reconciled against the emulator in aggregate mode: the run
continues as new, every history stays short, the batch size adapts to the node, every
height is reconciled exactly once, and only the chain's under-claims are reported."""

from __future__ import annotations

import pytest
from temporalio.testing import WorkflowEnvironment

from devstack.btc import BtcNodeFaults, BtcNodeServer, SyntheticChain
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.btc.conftest import btc_settings_for
from tests.btc.helpers import reconcile
from tests.btc.seeding import seed_from_chain
from tests.worker import running_worker

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]

HEIGHTS = 200_000


async def test_two_hundred_thousand_heights_with_checkpoints(
        kernel_settings: Settings, temporal_env: WorkflowEnvironment, db: Connection) -> None:
    chain = SyntheticChain(HEIGHTS, aggregate_only=True, max_txs=2)
    underclaims = await seed_from_chain(db, chain, 0, HEIGHTS - 1)
    with BtcNodeServer(chain, user="u", password="p",
                       faults=BtcNodeFaults(latency_us_per_tx=0)) as node:
        # Big JSON-RPC batches: fewer HTTP round trips to an in-process node.
        settings = btc_settings_for(kernel_settings, node.url, btc_rpc_user="u",
                                    btc_rpc_password="p", btc_rpc_batch_calls=250)
        async with running_worker(settings, temporal_env.client):
            client = temporal_env.client
            result = await reconcile(client, settings, checkpoint_every_batches=10,
                                     max_concurrent_batches=2,
                                     batch={"initial": 100, "min": 10, "max": 5000,
                                            "target_seconds": 2})
            runs = [e async for e in client.list_workflows(
                "WorkflowId = 'btc-reconcile-main'")]
            lengths = [len((await client.get_workflow_handle(
                r.id, run_id=r.run_id).fetch_history()).events) for r in runs]
    assert result["findings"] == ({"underclaim": underclaims} if underclaims else {})
    assert len(runs) >= 3, len(runs)  # it continued as new
    assert max(lengths) < 1000, lengths
    assert result["stages"][1]["done"] == HEIGHTS
    batches = await db.fetch("SELECT lo, hi FROM btc.recon_batches WHERE outcome = 'ok'"
                             " ORDER BY lo")
    covered = [h for b in batches for h in range(b["lo"], b["hi"] + 1)]
    assert covered == list(range(HEIGHTS))  # every height exactly once
    sizes = [b["hi"] - b["lo"] + 1 for b in batches]
    assert sizes[0] == 100 and max(sizes) > 1000 and len(set(sizes)) >= 4, sizes[:20]
    # The sizer lives in the checkpoint: a continued run does not start from 100 again.
    assert result["batch_size"] > 100
