"""The Bitcoin part of `pipeworks demo`: ingest the chain the dev node serves (mainnet
0-438 by default), plant a few faults in our own figures, reconcile against the node,
and print the findings: the planted ones, and nothing else."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from rich.console import Console

from activities.btc.settings import BtcSettings
from pipeworks.db import connect
from pipeworks.settings import Settings
from starters import client as runs
from starters.btc import report
from starters.inputs import tuned_input
from starters.render import LiveProgress, progress_table
from workflows.btc.inputs import BtcIngestInput, BtcReconcileInput

# What the demo plants in our tables after the ingest: (what, SQL). Heights within
# mainnet 0-438; the reconciliation must find each one and nothing else.
PLANTED = (
    ("a 1-satoshi error in a block's output total (height 170)",
     "UPDATE btc.block_calcs SET total_out_sat = total_out_sat + 1 WHERE height = 170"),
    ("a wrong input count (height 181)",
     "UPDATE btc.block_calcs SET input_count = input_count + 1 WHERE height = 181"),
    ("a half-loaded block: its last transaction row lost (height 248)",
     """DELETE FROM btc.transactions t USING btc.blocks b
        WHERE b.height = 248 AND b.is_main AND t.block_hash = b.hash
          AND t.tx_index = (SELECT max(tx_index) FROM btc.transactions
                            WHERE block_hash = b.hash)"""),
    ("a block missing altogether (height 300)",
     """WITH gone AS (DELETE FROM btc.blocks WHERE height = 300 RETURNING hash)
        DELETE FROM btc.block_calcs WHERE height = 300"""),
)


async def _plant(dsn: str) -> None:
    conn = await connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute("DELETE FROM btc.transactions WHERE block_hash IN"
                               " (SELECT hash FROM btc.blocks WHERE height = 300)")
            for _, sql in PLANTED:
                await conn.execute(sql)
    finally:
        await conn.close()


async def _run(settings: Settings, console: Console, request: Any, what: str
               ) -> tuple[dict[str, Any], str | None]:
    """The run's last progress document, and its first run id (its findings' run)."""
    client = await runs.connect(settings)
    started = await runs.start_run(client, settings, request)
    console.print(f"{what} ({request.workflow_id}, run {started.handle.result_run_id})",
                  highlight=False)
    live = LiveProgress(console)
    with live.shown():
        document: dict[str, Any] = await runs.follow(client, request.workflow_id,
                                                     live.update)
    return document, started.handle.result_run_id


def btc_demo(settings: Settings, console: Console) -> int:
    network = settings.of(BtcSettings).btc_network
    began = time.monotonic()
    ingest = tuned_input(BtcIngestInput, settings, {"network": network})
    document, _ = asyncio.run(_run(settings, console, ingest, "ingesting the node's chain"))
    console.print(progress_table(document))
    if runs.exit_code_for(document):
        return runs.exit_code_for(document)
    console.print("planting faults in our own figures:", highlight=False)
    for what, _ in PLANTED:
        console.print(f"  - {what}", highlight=False)
    asyncio.run(_plant(settings.resolved_database_url()))
    reconcile = tuned_input(BtcReconcileInput, settings,
                            {"network": network, "from_height": 0})
    document, run_id = asyncio.run(_run(settings, console, reconcile,
                                        "reconciling every height with the node"))
    console.print(progress_table(document))
    supply = document.get("supply") or {}
    if supply.get("ok") is None:
        console.print(f"supply check at height {supply.get('height')}: not made "
                      f"({supply.get('detail')})", highlight=False)
    else:
        console.print(f"supply check at height {supply.get('height')}: ok={supply['ok']} "
                      f"(subsidy {supply.get('subsidy_sat')} sat = UTXO "
                      f"{supply.get('utxo_sat')} sat + unspendable "
                      f"{supply.get('unspendable_sat')})", highlight=False)
    found = asyncio.run(report.findings_report(settings.resolved_database_url(),
                                               run_id))
    report.render(console, found)
    console.print(f"bitcoin demo took {time.monotonic() - began:.1f} s; try `pipeworks btc "
                  "report --json` or `pipeworks btc reconcile --wait` next", highlight=False)
    return runs.exit_code_for(document)
