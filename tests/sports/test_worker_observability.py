"""A worker process as operations see it: its Prometheus endpoint, its health endpoints,
and its log lines, checked against a real run's `progress`."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from devstack.processes import free_port
from devstack.sports.server import UpstreamServer
from pipeworks import metrics
from pipeworks.db import Connection
from pipeworks.settings import Settings
from starters.cli import run_command
from tests.sports.helpers import assert_tables_equal, expected_association, start_sync
from tests.sports.test_worker_process import wait_for, worker_env

pytestmark = pytest.mark.slow
SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


def parse_metrics(text: str) -> list[tuple[str, dict[str, str], float]]:
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, f"not Prometheus text format: {line!r}"
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match["labels"] or ""))
        samples.append((match["name"], labels, float(match["value"])))
    return samples


def total(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    return sum(v for n, lab, v in samples
               if n == name and all(lab.get(k) == want for k, want in labels.items()))


class WorkerProcess:
    def __init__(self, settings: Settings, log: Path) -> None:
        self.metrics_port, self.health_port = free_port(), free_port()
        self._settings, self.log = settings, log
        self.process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> WorkerProcess:
        env = worker_env(self._settings, self.metrics_port, self.health_port)
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "starters.cli", "worker", env=env,
            stdout=self.log.open("ab"), stderr=asyncio.subprocess.STDOUT)
        await self.until(lambda d: d["state"] == "idle" and d["ready"], "/readyz")
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    async def get(self, path: str) -> httpx.Response:
        port = self.metrics_port if path == "/metrics" else self.health_port
        async with httpx.AsyncClient(timeout=5) as http:
            return await http.get(f"http://127.0.0.1:{port}{path}")

    async def until(self, predicate: Any, path: str = "/healthz",
                    timeout: float = 30) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                document: dict[str, Any] = (await self.get(path)).json()
                if predicate(document):
                    return document
            except httpx.HTTPError:
                pass
            assert self.process is not None and self.process.returncode is None, \
                self.log.read_text()[-3000:]
            assert asyncio.get_running_loop().time() < deadline, f"timed out on {path}"
            await asyncio.sleep(0.05)


async def test_metrics_match_progress_and_health_follows_the_work(
    temporal_env: WorkflowEnvironment, settings: Settings, db: Connection,
    upstream: UpstreamServer, tmp_path: Path,
) -> None:
    upstream.faults.set(latency_ms=40, error_rate=0.1, seed=5)
    upstream.stats.clear()
    async with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        assert (await worker.get("/healthz")).status_code == 200
        handle = await start_sync(temporal_env.client, settings, org_kind="association",
                                  org_id="A1", page_size=3, competition_concurrency=2)
        busy = await worker.until(lambda d: d["state"] == "processing")
        assert busy["in_flight_activities"] >= 1 and busy["ready"]
        await wait_for(handle, lambda p: p["records"]["staged"] > 0)
        during = parse_metrics((await worker.get("/metrics")).text)
        assert total(during, metrics.RECORDS_FETCHED) > 0
        result = await asyncio.wait_for(handle.result(), timeout=120)
        await worker.until(lambda d: d["state"] == "idle")
        after = parse_metrics((await worker.get("/metrics")).text)

    assert result["status"] == "completed", result
    await assert_tables_equal(db, expected_association(upstream.dataset, "A1"))
    # Scraped mid-run the counters were on their way; at the end they equal `progress`.
    assert total(during, metrics.RECORDS_FETCHED) <= total(after, metrics.RECORDS_FETCHED)
    for stage in result["stages"]:
        for what, name in (("fetched", metrics.RECORDS_FETCHED),
                           ("staged", metrics.RECORDS_STAGED),
                           ("invalid", metrics.RECORDS_INVALID)):
            assert total(after, name, pipeline="sports_sync", stage=stage["name"]) \
                == stage["records"][what], (stage["name"], what)
    assert total(after, metrics.RUNS, pipeline="sports_sync", status="completed") == 1
    # Every request the upstream logged was counted, by status class.
    logged = upstream.stats.log()
    assert total(after, metrics.UPSTREAM_REQUESTS) == len(logged)
    failed = sum(1 for r in logged if r["status"] is None or r["status"] >= 500)
    counted_failures = total(after, metrics.UPSTREAM_REQUESTS, status_class="5xx") + total(
        after, metrics.UPSTREAM_REQUESTS, status_class="error")
    assert failed > 0 and counted_failures == failed
    assert total(after, metrics.UPSTREAM_REQUEST_DURATION + "_count") == len(logged)
    # The 5xx were retried as transient, as `progress` counted them.
    assert total(after, metrics.RETRIES, category="transient") == result["errors"]["transient"]
    games_streams = next(s for s in result["stages"] if s["name"] == "games")["total"]
    for step in ("fetch", "stage"):
        assert total(after, metrics.STAGE_DURATION + "_count", stage="games", step=step) \
            == games_streams
    # The SDK's own runtime metrics come from the same endpoint.
    names = {n for n, _, _ in after}
    assert "temporal_activity_execution_latency_seconds_count" in names
    assert any(n.startswith("temporal_workflow_completed") for n in names)


async def test_activity_and_workflow_log_lines_carry_their_run(
    temporal_env: WorkflowEnvironment, settings: Settings, db: Connection,
    upstream: UpstreamServer, tmp_path: Path,
) -> None:
    async with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        handle = await start_sync(temporal_env.client, settings, org_kind="association",
                                  org_id="A1")
        await asyncio.wait_for(handle.result(), timeout=60)
        await asyncio.sleep(0.3)  # the last lines reach the log file
    lines = [json.loads(line) for line in worker.log.read_text().splitlines()
             if line.startswith("{")]
    run_id = (await handle.describe()).run_id
    # One activity fetches and stages each stream (`sync-streams`).
    synced = [line for line in lines if line.get("event") == "stream synced"]
    assert synced and all(line["workflow_id"] == handle.id and line["run_id"] == run_id
                          and line["activity"] == "sports_sync_streams" for line in synced)
    assert {line["entity"] for line in synced} == {"competitions", "teams", "games"}
    finished = [line for line in lines if str(line.get("event", "")).startswith("run completed")]
    assert finished and finished[0]["workflow_id"] == handle.id \
        and finished[0]["run_id"] == run_id and finished[0]["logger"] == "temporalio.workflow"


async def test_sigterm_turns_ready_into_draining_then_the_worker_exits(
    temporal_env: WorkflowEnvironment, settings: Settings, db: Connection,
    upstream: UpstreamServer, tmp_path: Path,
) -> None:
    async with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        # Requests are held at the upstream: a fetch stays in flight while we look.
        upstream.faults.set(hold_after=3)
        handle = await start_sync(temporal_env.client, settings, org_kind="association",
                                  org_id="A1", page_size=2)
        deadline = asyncio.get_running_loop().time() + 30
        while upstream.faults.held == 0:
            assert asyncio.get_running_loop().time() < deadline, "no request was held"
            await asyncio.sleep(0.02)
        await worker.until(lambda d: d["state"] == "processing")
        assert worker.process is not None
        worker.process.send_signal(signal.SIGTERM)
        response = None
        deadline = asyncio.get_running_loop().time() + 10
        while asyncio.get_running_loop().time() < deadline:
            response = await worker.get("/readyz")
            if response.json()["state"] == "draining":
                break
            await asyncio.sleep(0.02)
        assert response is not None and response.status_code == 503
        assert response.json()["state"] == "draining" and not response.json()["ready"]
        upstream.faults.reset()  # the held fetch finishes: the drain can end
        assert await asyncio.wait_for(worker.process.wait(), 30) == 0
        await handle.terminate("test over")


async def test_health_command_reports_ready_not_ready_and_unreachable(
    temporal_env: WorkflowEnvironment, settings: Settings, db: Connection,
    upstream: UpstreamServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    async with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        address = f"127.0.0.1:{worker.health_port}"
        code = await asyncio.to_thread(run_command, ["health", "--address", address, "--json"])
        document = json.loads(capsys.readouterr().out)
        assert code == 0 and document["state"] == "idle"
        assert document["checks"] == {"temporal": "ok", "postgres": "ok"}
    nobody = f"127.0.0.1:{free_port()}"
    code = await asyncio.to_thread(run_command, ["health", "--address", nobody])
    assert code == 2 and f"no worker answers at http://{nobody}/readyz" in capsys.readouterr().err
