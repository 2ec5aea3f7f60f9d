"""The embedded dev stack: Temporal dev server with Web UI, Postgres, demo upstream
and one worker, with state, logs and pid files under `PIPEWORKS_HOME` (.pipeworks/).

`up` starts what does not run yet and says what already did; `down` stops exactly
what `up` started (found again through pid files, from any later process).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

from devstack.postgres import EmbeddedPostgres
from devstack.processes import DevStackError, ManagedProcess, wait_for_port
from devstack.temporal import TemporalDevServer
from pipeworks import registry, search_attributes
from pipeworks.db import migrate_dsn
from pipeworks.registry import DevUpstream
from pipeworks.settings import STACK_STATE_FILE, Settings
from pipeworks.temporal_client import connect_temporal
from pipeworks.web_settings import WebSettings

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")
WORKER_READY_SECONDS = 60.0
API_KEY_FILE = "api-key"
LOCAL_KEY_NAME = "dev-local"


@dataclass
class _Upstream:
    declared: DevUpstream
    process: ManagedProcess


@dataclass
class Component:
    name: str
    state: str          # "started" | "running" | "stopped" | "external" | "not running"
    detail: str = ""


class DevStack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.home.absolute()
        host, _, port = settings.temporal_address.rpartition(":")
        self._temporal_host, self._temporal_port = host.strip("[]"), int(port)
        self.postgres = EmbeddedPostgres(self.home / "postgres" / "data", settings.postgres_port)
        self.temporal = TemporalDevServer(
            self.home / "temporal", port=self._temporal_port,
            ui_port=settings.temporal_ui_port, namespace=settings.temporal_namespace,
            search_attributes=search_attributes.registration(registry.search_attribute_keys()),
            ui_codec_endpoint=settings.codec_endpoint)
        # Every registered pipeline's demo upstream, unless its URL is set.
        self.upstreams = [
            _Upstream(upstream, ManagedProcess(upstream.process, self.home, [
                sys.executable, "-m", upstream.module, "--host", "127.0.0.1",
                "--port", str(upstream.port(settings)), *upstream.extra_args(settings)]))
            for pipeline in registry.installed()
            if (upstream := pipeline.dev_upstream) is not None]
        self.worker = ManagedProcess("worker", self.home, [
            sys.executable, "-m", "starters.cli", "worker"], cwd=Path.cwd())
        self.web = settings.of(WebSettings)
        self.api = ManagedProcess("api", self.home, [
            sys.executable, "-m", "starters.cli", "serve", "--host", self.web.api_host,
            "--port", str(self.web.api_port)], cwd=Path.cwd())

    # -- what is ours to run ---------------------------------------------------

    @property
    def embedded_postgres(self) -> bool:
        return self.settings.database_url is None

    @property
    def embedded_temporal(self) -> bool:
        return self._temporal_host in LOCAL_HOSTS

    def database_url(self) -> str:
        if self.settings.database_url is not None:
            return self.settings.database_url.get_secret_value()
        return self.postgres.dsn

    def embedded(self, upstream: _Upstream) -> bool:
        return not upstream.declared.external(self.settings)

    def upstream_url(self, upstream: _Upstream) -> str:
        return f"http://127.0.0.1:{upstream.declared.port(self.settings)}"

    # -- up / down / status ----------------------------------------------------

    def up(self) -> list[Component]:
        self.home.mkdir(parents=True, exist_ok=True)
        report: list[Component] = []
        if self.embedded_postgres:
            was = self.postgres.is_running()
            self.postgres.start()
            report.append(Component("postgres", "running" if was else "started",
                                    f"127.0.0.1:{self.settings.postgres_port}"))
        else:
            report.append(Component("postgres", "external", "PIPEWORKS_DATABASE_URL"))
        applied = asyncio.run(migrate_dsn(self.database_url()))
        report.append(Component("schema", "started" if applied else "running",
                                f"{len(applied)} migrations applied" if applied else "up to date"))
        if self.embedded_temporal:
            was = self.temporal.is_running()
            self.temporal.start()
            report.append(Component("temporal", "running" if was else "started",
                                    f"{self.temporal.address}, Web UI {self.temporal.ui_url}"))
        else:
            report.append(Component("temporal", "external", self.settings.temporal_address))
        for upstream in self.upstreams:
            name = upstream.declared.name
            if self.embedded(upstream):
                report.append(self._start(upstream.process, name, self.upstream_url(upstream),
                                          port=upstream.declared.port(self.settings)))
            else:
                report.append(Component(name, "external",
                                        f"PIPEWORKS_{upstream.declared.url_variable}"))
        self._write_state()
        report.append(self._start(self.worker, "worker", f"task queue {self.settings.task_queue}"))
        report.append(self._start(self.api, "api", self.api_url, port=self.web.api_port,
                                  host=self.web.api_host, env=self._api_env()))
        return report

    # -- the API server and its local operator key --------------------------------

    @property
    def api_url(self) -> str:
        host = self.web.api_host
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 - a bind-all, not a bind
            host = "127.0.0.1"
        return f"http://{host if ':' not in host else f'[{host}]'}:{self.web.api_port}"

    def local_api_key(self) -> str:
        """The operator key `dev up` makes once (kept, owner-only, under the stack's
        home): the dashboard link it prints logs in with it."""
        path = self.home / API_KEY_FILE
        if path.exists() and (kept := path.read_text().strip()):
            return kept
        key = secrets.token_urlsafe(32)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(descriptor, 0o600)  # also when an empty file was there
        with os.fdopen(descriptor, "w") as key_file:
            key_file.write(key + "\n")
        return key

    def dashboard_login_url(self) -> str:
        return f"{self.api_url}/login?key={self.local_api_key()}"

    def _api_env(self) -> dict[str, str]:
        local = f"{LOCAL_KEY_NAME}:operator:{self.local_api_key()}"
        configured = self.web.api_keys.get_secret_value() if self.web.api_keys else ""
        if any(key.name == LOCAL_KEY_NAME for key in self.web.parsed_keys()):
            return {"PIPEWORKS_API_KEYS": configured}  # the user's own key of that name
        return {"PIPEWORKS_API_KEYS": f"{configured},{local}" if configured else local}

    def _start(self, process: ManagedProcess, name: str, detail: str, port: int | None = None,
               host: str = "127.0.0.1", env: dict[str, str] | None = None) -> Component:
        if process.running_pid() is not None:
            return Component(name, "running", f"{detail} (pid {process.running_pid()})")
        process.env = {**self._child_env(), **(env or {})}
        pid = process.start()
        try:
            if port is not None:
                wait_for_port(host if host not in ("0.0.0.0", "::") else "127.0.0.1",  # noqa: S104
                              port, 30.0,
                              alive=lambda: process.running_pid() is not None)
            else:
                self._wait_for_worker(process)
        except (DevStackError, TimeoutError) as err:
            process.stop()
            raise DevStackError(
                f"{name} did not start: {err}\n{process.log_tail(15)}") from None
        return Component(name, "started", f"{detail} (pid {pid})")

    def _child_env(self) -> dict[str, str]:
        env = {"PIPEWORKS_DATABASE_URL": self.database_url(),
               "PIPEWORKS_HOME": str(self.home)}
        for upstream in self.upstreams:
            if self.embedded(upstream):
                env[f"PIPEWORKS_{upstream.declared.url_variable}"] = self.upstream_url(upstream)
        return env

    def _wait_for_worker(self, process: ManagedProcess) -> None:
        """Ready once Temporal sees the worker polling its task queue."""
        deadline = time.monotonic() + WORKER_READY_SECONDS

        async def polling() -> bool:
            client = await connect_temporal(self.settings)
            request = DescribeTaskQueueRequest(
                namespace=self.settings.temporal_namespace,
                task_queue=TaskQueue(name=self.settings.task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)
            while time.monotonic() < deadline:
                if process.running_pid() is None:
                    return False
                described = await client.workflow_service.describe_task_queue(request)
                if described.pollers:
                    return True
                await asyncio.sleep(0.2)
            return False

        if not asyncio.run(polling()):
            raise DevStackError("the worker exited or did not poll its task queue in time")

    def _write_state(self) -> None:
        """Addresses of what the stack runs itself; external ones stay in the user's
        environment (their DSN may carry a password)."""
        state = {"temporal_address": self.settings.temporal_address,
                 "web_ui": self.settings.temporal_ui_url}
        if self.embedded_postgres:
            state["database_url"] = self.postgres.dsn
        for upstream in self.upstreams:
            if self.embedded(upstream):
                state[upstream.declared.state_key] = self.upstream_url(upstream)
        path = self.home / STACK_STATE_FILE
        draft = path.with_suffix(".tmp")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(descriptor, 0o600)  # also when the draft existed already
        with os.fdopen(descriptor, "w") as state_file:
            json.dump(state, state_file, indent=2)
        os.replace(draft, path)  # readers never see half a file

    def down(self) -> list[Component]:
        report = [Component("api", "stopped" if self.api.stop() else "not running")]
        report += [Component("worker", "stopped" if self.worker.stop(
            timeout=self.settings.graceful_shutdown_seconds + 5) else "not running")]
        for upstream in self.upstreams:
            report.append(Component(upstream.declared.name, "stopped"
                                    if upstream.process.stop() else "not running"))
        if self.embedded_temporal:
            report.append(Component("temporal",
                                    "stopped" if self.temporal.stop() else "not running"))
        if self.embedded_postgres:
            report.append(Component("postgres",
                                    "stopped" if self.postgres.stop() else "not running"))
        (self.home / STACK_STATE_FILE).unlink(missing_ok=True)
        return report

    def status(self) -> list[Component]:
        def state(pid: int | None) -> str:
            return "running" if pid is not None else "not running"

        report = []
        if self.embedded_postgres:
            report.append(Component("postgres", state(self.postgres.running_pid()),
                                    f"127.0.0.1:{self.settings.postgres_port}"))
        else:
            report.append(Component("postgres", "external", "PIPEWORKS_DATABASE_URL"))
        if self.embedded_temporal:
            report.append(Component("temporal", state(self.temporal.running_pid()),
                                    f"{self.temporal.address}, Web UI {self.temporal.ui_url}"))
        else:
            report.append(Component("temporal", "external", self.settings.temporal_address))
        for upstream in self.upstreams:
            name = upstream.declared.name
            if self.embedded(upstream):
                report.append(Component(name, state(upstream.process.running_pid()),
                                        self.upstream_url(upstream)))
            else:
                report.append(Component(name, "external",
                                        f"PIPEWORKS_{upstream.declared.url_variable}"))
        report.append(Component("worker", state(self.worker.running_pid()),
                                f"task queue {self.settings.task_queue}, log "
                                f"{self.worker.log_path}"))
        report.append(Component("api", state(self.api.running_pid()),
                                f"{self.api_url}, log {self.api.log_path}"))
        return report
