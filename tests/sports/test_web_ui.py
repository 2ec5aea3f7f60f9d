"""The Temporal Web UI as a user sees it: a finished sync's page, rendered by headless
Chromium, shows the run, and the workflow list filters by our search attributes."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from devstack.processes import free_port
from devstack.sports.server import UpstreamServer
from devstack.temporal import TemporalDevServer
from pipeworks import registry, search_attributes
from pipeworks.db import Connection
from pipeworks.settings import Settings
from pipeworks.temporal_client import connect_temporal
from starters.client import start_run
from tests.sports.helpers import run_options
from tests.worker import running_worker
from workflows.sports.inputs import AccountSyncInput

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser",
                                               "google-chrome")) if p), None)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine "
                       "(Debian: apt-get install chromium)"),
]


@pytest.fixture
def server_with_ui(tmp_path: Path) -> Iterator[TemporalDevServer]:
    server = TemporalDevServer(tmp_path / "temporal", port=free_port(), ui_port=free_port(),
                               search_attributes=search_attributes.registration(
                                   registry.search_attribute_keys()))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def chromium(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    # Without the background-networking flags Chromium keeps trying Google's hosts,
    # which this machine's closed network refuses.
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'chromium'}",
         "--window-size=1440,1000", "--virtual-time-budget=20000", *args, url],
        capture_output=True, text=True, timeout=120, check=False)


async def test_the_web_ui_shows_a_sync_and_filters_by_organisation(
    server_with_ui: TemporalDevServer, settings: Settings, db: Connection,
    upstream: UpstreamServer, tmp_path: Path,
) -> None:
    here = settings.model_copy(update={"temporal_address": server_with_ui.address})
    client = await connect_temporal(here)
    async with running_worker(here, client):
        started = await start_run(client, here, AccountSyncInput.model_validate(
            {**run_options(here), "org_kind": "association", "org_id": "A1"}))
        result = await started.handle.result()
    assert result["status"] == "completed"
    run_id = (await started.handle.describe()).run_id
    workflow_id = started.handle.id

    page = (f"{server_with_ui.ui_url}/namespaces/default/workflows/{workflow_id}/{run_id}"
            "/history")
    screenshot = tmp_path / "workflow.png"
    shot = await asyncio.to_thread(chromium, tmp_path, page, f"--screenshot={screenshot}")
    assert screenshot.exists(), shot.stderr[-2000:]
    png = screenshot.read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000  # a rendered page, not a blank
    dom = (await asyncio.to_thread(chromium, tmp_path, page, "--dump-dom")).stdout
    assert workflow_id in dom and "AccountSyncWorkflow" in dom

    query = quote("OrgKind='association' AND OrgId='A1' AND Stage='completed'")
    listing = (await asyncio.to_thread(
        chromium, tmp_path, f"{server_with_ui.ui_url}/namespaces/default/workflows?query={query}",
        "--dump-dom")).stdout
    assert workflow_id in listing
    keep = Path(__file__).resolve().parents[2] / ".pipeworks" / "screenshots"
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copy(screenshot, keep / "workflow.png")
