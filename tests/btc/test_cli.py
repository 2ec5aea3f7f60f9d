"""`pipeworks btc ...` as a user runs it: subprocesses against the real stack (an
in-process worker, Temporal, Postgres, the node emulator)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.btc.settings import BtcSettings
from pipeworks.db import Connection
from pipeworks.settings import Settings
from tests.btc.conftest import NODE_PASSWORD, NODE_USER
from tests.commands import Commands

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def commands(btc_settings: Settings, tmp_path: Path) -> AsyncIterator[Commands]:
    running = Commands.for_settings(btc_settings, tmp_path, {
        "PIPEWORKS_BTC_RPC_URL": str(btc_settings.of(BtcSettings).btc_rpc_url),
        "PIPEWORKS_BTC_RPC_USER": NODE_USER, "PIPEWORKS_BTC_RPC_PASSWORD": NODE_PASSWORD,
        "PIPEWORKS_BTC_MIN_CONFIRMATIONS": "0"})
    yield running
    await running.close()


async def test_ingest_reconcile_and_report(
        btc_worker: Worker, commands: Commands, db: Connection) -> None:
    ingested = await commands("btc", "ingest", "--wait", "--json")
    assert ingested.code == 0, ingested
    assert ingested.json()["status"] == "completed"
    await db.execute("UPDATE btc.block_calcs SET total_out_sat = total_out_sat + 1"
                     " WHERE height = 200")
    reconciled = await commands("btc", "reconcile", "--from", "0", "--wait", "--json")
    assert reconciled.code == 0, reconciled
    progress = reconciled.json()
    assert progress["findings"] == {"value_mismatch": 1}
    assert progress["supply"]["ok"] is True  # subsidies do not depend on total_out
    report = await commands("btc", "report")
    assert report.code == 0, report
    assert "value_mismatch" in report.out and "error" in report.out
    assert "trend" in report.out and "200" in report.out
    document = (await commands("btc", "report", "--json")).json()
    assert document["summary"] == [{"category": "value_mismatch", "severity": "error",
                                    "open": 1, "resolved": 0}]
    assert document["open"][0]["height"] == 200
    assert document["open"][0]["ours"] == document["open"][0]["theirs"] + 1
    assert document["trend"][0]["new"] == 1 and document["trend"][0]["heights"] == 439


async def test_inputs_and_settings_are_checked_before_anything_is_sent(
        commands: Commands) -> None:
    backwards = await commands("btc", "reconcile", "--from", "10", "--to", "5")
    assert backwards.code == 2 and "--from" in backwards.err, backwards
    negative = await commands("btc", "ingest", "--from", "-1")
    assert negative.code == 2 and "--from" in negative.err, negative
    both = await commands("btc", "ingest", env={"PIPEWORKS_BTC_RPC_COOKIE_FILE": "/x"})
    assert both.code == 2 and "COOKIE_FILE" in both.err, both
    listed = await commands("pipelines")
    assert "btc_reconcile" in listed.out and "BtcReconcileWorkflow" in listed.out


async def test_a_nightly_reconciliation_on_a_schedule(
        btc_worker: Worker, commands: Commands, temporal_env: WorkflowEnvironment) -> None:
    created = await commands("schedule", "create", "btc-nightly", "--cron", "30 3 * * *",
                             "--timezone", "Europe/Zurich", "--jitter", "15m", "--",
                             "btc", "reconcile", "--recheck-depth", "144")
    assert created.code == 0, created
    try:
        described = await temporal_env.client.get_schedule_handle("btc-nightly").describe()
        spec = described.schedule.spec
        assert spec.time_zone_name == "Europe/Zurich"
        assert spec.jitter is not None and spec.jitter.total_seconds() == 900
        listed = await commands("schedule", "list")
        assert "btc reconcile" in listed.out, listed.out
    finally:
        await temporal_env.client.get_schedule_handle("btc-nightly").delete()
