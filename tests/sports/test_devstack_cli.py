"""`pipeworks dev up | down | status` and `pipeworks demo` as a user runs them: real
processes on free ports, state under a temporary PIPEWORKS_HOME."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from devstack.processes import free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPEWORKS_")}
    env.update({
        "PIPEWORKS_HOME": str(tmp_path / "home"),
        "PIPEWORKS_POSTGRES_PORT": str(free_port()),
        "PIPEWORKS_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "PIPEWORKS_TEMPORAL_UI_PORT": str(free_port()),
        "PIPEWORKS_UPSTREAM_PORT": str(free_port()),
        "PIPEWORKS_F1_UPSTREAM_PORT": str(free_port()),
        "PIPEWORKS_BTC_NODE_PORT": str(free_port()),
        "PIPEWORKS_API_PORT": str(free_port()),
        "PIPEWORKS_METRICS_ADDRESS": f"127.0.0.1:{free_port()}",
        "PIPEWORKS_HEALTH_ADDRESS": f"127.0.0.1:{free_port()}",
        "PIPEWORKS_GRACEFUL_SHUTDOWN_SECONDS": "5",
        "COLUMNS": "200",
    })
    yield env
    pipeworks(env, "dev", "down")  # whatever a failed test left running


def pipeworks(env: dict[str, str], *args: str, timeout: float = 120
              ) -> subprocess.CompletedProcess[str]:
    # Run beside the home, away from the repository's own .env and .pipeworks.
    return subprocess.run([sys.executable, "-m", "starters.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout,
                          cwd=Path(env["PIPEWORKS_HOME"]).parent)


def alive(pids: list[int]) -> list[int]:
    return [p for p in pids if psutil.pid_exists(p)
            and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


def stack_pids(home: Path) -> list[int]:
    """Every process whose command line or working files point into this stack's home."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if str(home) in cmdline and process.info["pid"] != os.getpid():
            found.append(process.info["pid"])
    for pid_file in (home / "run").glob("*.pid") if (home / "run").exists() else []:
        record = json.loads(pid_file.read_text())
        if psutil.pid_exists(record["pid"]):
            found.append(record["pid"])
    return found


def test_dev_up_is_idempotent_and_a_run_survives_down_and_up(
    stack_env: dict[str, str],
) -> None:
    home = Path(stack_env["PIPEWORKS_HOME"])
    first = pipeworks(stack_env, "dev", "up")
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("started") >= 4, first.stdout
    again = pipeworks(stack_env, "dev", "up")
    assert again.returncode == 0, again.stderr
    assert "started" not in again.stdout and again.stdout.count("running") >= 4, again.stdout
    status = pipeworks(stack_env, "dev", "status")
    assert status.returncode == 0 and "not running" not in status.stdout, status.stdout
    running = stack_pids(home)
    assert len(running) >= 4, running  # postgres, temporal, upstream, worker
    listening = [c for c in psutil.net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN and c.pid in running]
    assert len(listening) >= 4, listening
    exposed = [c.laddr for c in listening if c.laddr.ip not in ("127.0.0.1", "::1")]
    assert exposed == [], f"the dev stack must listen on loopback only: {exposed}"

    upstream = f"http://127.0.0.1:{stack_env['PIPEWORKS_UPSTREAM_PORT']}"
    httpx.patch(f"{upstream}/_admin/faults", json={"latency_ms": 80}).raise_for_status()
    slow = {**stack_env, "PIPEWORKS_PAGE_SIZE": "5", "PIPEWORKS_COMPETITION_CONCURRENCY": "1"}
    started = pipeworks(slow, "sync", "--org-kind", "association", "--org-id", "A2", "--json")
    assert started.returncode == 0, started.stderr
    workflow_id = json.loads(started.stdout)["workflow_id"]
    time.sleep(1.5)
    mid = json.loads(pipeworks(stack_env, "status", workflow_id, "--json").stdout)
    assert mid["status"] == "running", mid
    # The dashboard link `dev up` printed logs in and shows the run, live.
    found = re.search(r"Dashboard: (http://127\.0\.0\.1:\d+/login\?key=\S+)", first.stdout)
    assert found, first.stdout
    assert stat.S_IMODE((home / "api-key").stat().st_mode) == 0o600
    with httpx.Client(follow_redirects=True, timeout=30) as browser:
        runs_page = browser.get(found.group(1))
        assert runs_page.status_code == 200 and runs_page.url.path == "/"
        assert workflow_id in runs_page.text
        live = browser.get(f"{runs_page.url.scheme}://{runs_page.url.netloc.decode()}"
                           f"/api/v1/runs/{workflow_id}").json()
        assert live["status"] == "running" and live["workflow_id"] == workflow_id

    down = pipeworks(stack_env, "dev", "down")
    assert down.returncode == 0, down.stderr
    time.sleep(0.5)
    assert alive(running) == [] and stack_pids(home) == [], "dev down left processes behind"

    assert pipeworks(stack_env, "dev", "up").returncode == 0
    watched = pipeworks(stack_env, "watch", workflow_id)
    assert watched.returncode == 0, watched.stdout + watched.stderr
    final = json.loads(pipeworks(stack_env, "status", workflow_id, "--json").stdout)
    assert final["status"] == "completed"
    assert final["records"]["staged"] == final["records"]["fetched"] > mid["records"]["fetched"]
    running = stack_pids(home)
    assert pipeworks(stack_env, "dev", "down").returncode == 0
    time.sleep(0.5)
    assert alive(running) == [] and stack_pids(home) == []


def test_demo_runs_end_to_end_and_can_leave_nothing_running(
    stack_env: dict[str, str],
) -> None:
    home = Path(stack_env["PIPEWORKS_HOME"])
    demo = pipeworks(stack_env, "demo", "--no-keep", timeout=300)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    for words in ("seeded accounts", "demo summary", "rows in sports.games", "completed",
                  "this run in the Web UI: http://"):
        assert words in demo.stdout, (words, demo.stdout)
    time.sleep(0.5)
    assert stack_pids(home) == []
