"""Background processes that outlive the CLI invocation that started them.

``pipeworks dev up`` starts servers and exits; a later ``dev status`` or ``dev down`` runs in a
different Python process and has only the files under ``state_dir`` to go on. A bare pid is not
enough for that: once our process dies the kernel may hand its pid to anything, and signalling a
stranger's process group is the worst thing a dev tool can do. So the pid file also records the
kernel's creation time of the process, and a pid only counts as ours when both match.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

__all__ = [
    "AlreadyRunningError",
    "DevStackError",
    "ManagedProcess",
    "PortInUseError",
    "ProcessExitedError",
    "describe_port_owner",
    "free_port",
    "port_is_free",
    "wait_for_port",
]

# psutil derives create_time from boot time plus clock ticks, so the same process always yields
# the same value; the tolerance only absorbs float formatting and psutil version differences.
_CREATE_TIME_TOLERANCE = 0.5
_POLL_INTERVAL = 0.05
# After SIGKILL the kernel needs a moment to tear the processes down; waiting longer than this
# means something is stuck in uninterruptible sleep and waiting more would not help.
_KILL_GRACE = 5.0
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

# Children started by this interpreter, by pid. Any ManagedProcess object for the same name
# (e.g. a fresh one built by `dev down` in a long-lived process, or by a test) can then reap
# through the Popen object, so the child never lingers as a zombie and Popen never warns
# about a child it lost track of. In the usual CLI case the interpreter exits first and the
# still-running server is re-parented to init, which reaps it later.
_children: dict[int, subprocess.Popen[bytes]] = {}


class DevStackError(RuntimeError):
    """A dev-stack component could not be started, stopped or inspected."""


class AlreadyRunningError(DevStackError):
    """The managed process is already running; starting a second copy would fight over state."""


class ProcessExitedError(DevStackError):
    """The process died while we were waiting for it to become ready."""


class PortInUseError(DevStackError):
    """A port we need is held by a process that is not ours."""

    def __init__(self, message: str, port: int) -> None:
        super().__init__(message)
        self.port = port


@dataclass(frozen=True)
class _PidRecord:
    pid: int
    create_time: float
    argv: tuple[str, ...]
    started_at: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "pid": self.pid,
                "create_time": self.create_time,
                "argv": list(self.argv),
                "started_at": self.started_at,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> _PidRecord | None:
        try:
            raw: Any = json.loads(text)
            return cls(
                pid=int(raw["pid"]),
                create_time=float(raw["create_time"]),
                argv=tuple(str(a) for a in raw.get("argv", [])),
                started_at=str(raw.get("started_at", "")),
            )
        except (ValueError, TypeError, KeyError):
            # A truncated or hand-edited pid file must not make `dev down` crash; treating it as
            # stale is safe because we then never signal anything based on it.
            return None


class ManagedProcess:
    """One background process, findable again from another Python process via its pid file.

    ``env`` is layered over the current environment rather than replacing it, because servers
    need PATH, HOME, locale and friends and callers only ever want to add a few variables.
    """

    def __init__(
        self,
        name: str,
        state_dir: Path,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        if not _NAME_RE.match(name):
            raise ValueError(f"invalid process name {name!r}: it becomes a file name")
        if not argv:
            raise ValueError("argv must not be empty")
        self.name = name
        self.state_dir = Path(state_dir)
        self.argv: tuple[str, ...] = tuple(str(a) for a in argv)
        self.env: dict[str, str] | None = dict(env) if env is not None else None
        self.cwd = Path(cwd) if cwd is not None else None

    def __repr__(self) -> str:
        return f"ManagedProcess(name={self.name!r}, state_dir={str(self.state_dir)!r})"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "logs" / f"{self.name}.log"

    @property
    def pid_path(self) -> Path:
        return self.state_dir / "run" / f"{self.name}.pid"

    @property
    def _lock_path(self) -> Path:
        return self.state_dir / "run" / f"{self.name}.lock"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # Serialises start/stop across processes so two concurrent `dev up` runs cannot both
        # decide "not running" and start two servers on the same state.
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def start(self) -> int:
        """Start the process in its own session and return its pid.

        Raises AlreadyRunningError if a previously started copy is still alive.
        """
        with self._locked():
            pid = self._running_pid()
            if pid is not None:
                raise AlreadyRunningError(
                    f"{self.name} is already running (pid {pid}); stop it first"
                )
            # Leftover group members of a crashed leader would otherwise hold ports and files.
            self._stop_locked(timeout=_KILL_GRACE)

            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            env = {**os.environ, **self.env} if self.env is not None else None
            with open(self.log_path, "ab") as log:
                stamp = datetime.now(UTC).isoformat(timespec="seconds")
                log.write(f"\n--- {stamp} starting: {' '.join(self.argv)}\n".encode())
                log.flush()
                popen = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=self.cwd,
                    start_new_session=True,
                    close_fds=True,
                )
            _children[popen.pid] = popen
            # Reading create_time is race-free here: the child is unreaped, so even if it has
            # already exited its pid cannot have been recycled yet.
            try:
                create_time = psutil.Process(popen.pid).create_time()
            except psutil.Error:
                popen.kill()
                popen.wait()
                raise
            record = _PidRecord(
                pid=popen.pid,
                create_time=create_time,
                argv=self.argv,
                started_at=datetime.now(UTC).isoformat(),
            )
            _atomic_write(self.pid_path, record.to_json())
            return popen.pid

    def running_pid(self) -> int | None:
        """The pid if the process we started is alive, else None (stale pid files count as not
        running)."""
        return self._running_pid()

    def is_running(self) -> bool:
        return self._running_pid() is not None

    def recorded_argv(self) -> tuple[str, ...] | None:
        """The argv the running copy was started with (it may differ from ``self.argv`` when the
        configuration changed since), or None when not running."""
        record = self._read_record()
        if record is None or self._owned_process(record) is None:
            return None
        return record.argv

    def stop(self, timeout: float = 15.0) -> bool:
        """SIGTERM the process group, SIGKILL it after ``timeout`` seconds, remove the pid file.

        Returns True if anything of ours was still running and got signalled.
        """
        with self._locked():
            return self._stop_locked(timeout)

    def log_tail(self, max_lines: int = 40) -> str:
        """The end of the log, for error messages that should explain themselves."""
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - 16384))
                data = fh.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(data.splitlines()[-max_lines:])

    def _read_record(self) -> _PidRecord | None:
        try:
            text = self.pid_path.read_text()
        except FileNotFoundError:
            return None
        return _PidRecord.from_json(text)

    def _reap(self, pid: int) -> None:
        popen = _children.get(pid)
        if popen is None:
            return
        if popen.poll() is not None:
            del _children[pid]

    def _owned_process(self, record: _PidRecord) -> psutil.Process | None:
        """The live process behind ``record`` if it is really the one we started."""
        try:
            proc = psutil.Process(record.pid)
            if abs(proc.create_time() - record.create_time) > _CREATE_TIME_TOLERANCE:
                return None
            if proc.status() == psutil.STATUS_ZOMBIE:
                self._reap(record.pid)
                return None
        except psutil.Error:
            return None
        return proc

    def _running_pid(self) -> int | None:
        record = self._read_record()
        if record is None:
            return None
        return record.pid if self._owned_process(record) is not None else None

    def _stop_locked(self, timeout: float) -> bool:
        record = self._read_record()
        if record is None:
            if self.pid_path.exists():
                self.pid_path.unlink(missing_ok=True)
            return False
        if record.create_time < psutil.boot_time():
            # Written before a reboot: nothing of ours survived it, and pids restart from low
            # numbers after boot, so the recorded one very likely belongs to someone else now.
            self.pid_path.unlink(missing_ok=True)
            return False
        pgid = record.pid
        leader = self._owned_process(record)
        if leader is None and psutil.pid_exists(record.pid):
            # The pid now belongs to some other process (or is our zombie, already reaped
            # above). A recycled pid could also be a group leader, so never signal it.
            try:
                drift = abs(psutil.Process(record.pid).create_time() - record.create_time)
                foreign = drift > _CREATE_TIME_TOLERANCE
            except psutil.Error:
                foreign = False
            if foreign:
                self.pid_path.unlink(missing_ok=True)
                return False
        if not _group_has_live_members(pgid):
            self._reap(record.pid)
            self.pid_path.unlink(missing_ok=True)
            return False
        # With the leader gone, its pid cannot be handed out again while any member of its
        # process group is alive, so whatever is left in that group is our leftover.
        signalled = _signal_group(pgid, signal.SIGTERM)
        if signalled and not self._wait_group_gone(pgid, timeout):
            _signal_group(pgid, signal.SIGKILL)
            self._wait_group_gone(pgid, _KILL_GRACE)
        self._reap(record.pid)
        self.pid_path.unlink(missing_ok=True)
        return signalled

    def _wait_group_gone(self, pgid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            self._reap(pgid)
            if not _group_has_live_members(pgid):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_INTERVAL)


def _signal_group(pgid: int, sig: signal.Signals) -> bool:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError as exc:
        raise DevStackError(f"not allowed to signal process group {pgid}: {exc}") from exc
    return True


def _group_has_live_members(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # killpg(0) also succeeds for zombies, which hold no resources; look closer.
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                return True
        except (OSError, psutil.Error):
            continue
    return False


def _atomic_write(path: Path, text: str) -> None:
    # A reader must never see a half-written pid file, or it would treat our live server as
    # stale and start a second one.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (the OS picks it; someone may still grab it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on ``host:port`` right now.

    SO_REUSEADDR mirrors what Postgres and Go servers do, so sockets lingering in TIME_WAIT
    after our own restart do not count as taken, while any listener does.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def describe_port_owner(port: int) -> str | None:
    """Best-effort 'pid N (name)' of whoever listens on ``port``, for error messages."""
    try:
        conns = psutil.net_connections(kind="inet")
    except (psutil.Error, OSError):
        return None
    for conn in conns:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            if conn.pid is None:
                return "another process"
            try:
                return f"pid {conn.pid} ({psutil.Process(conn.pid).name()})"
            except psutil.Error:
                return f"pid {conn.pid}"
    return None


def wait_for_port(
    host: str,
    port: int,
    timeout: float,
    *,
    alive: Callable[[], bool] | None = None,
) -> None:
    """Block until something accepts TCP connections on ``host:port``.

    ``alive`` lets the caller fail fast when the server it is waiting for has already died,
    instead of sitting out the whole timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            pass
        if alive is not None and not alive():
            raise ProcessExitedError(f"process exited before {host}:{port} accepted connections")
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{host}:{port} did not accept connections within {timeout:g}s")
        time.sleep(0.1)
