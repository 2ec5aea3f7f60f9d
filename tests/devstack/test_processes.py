from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from devstack.processes import (
    AlreadyRunningError,
    ManagedProcess,
    ProcessExitedError,
    free_port,
    port_is_free,
    wait_for_port,
)
from tests.devstack.conftest import ProcessFactory
from tests.devstack.helpers import wait_gone

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def _wait_for_line(proc: ManagedProcess, pattern: str, timeout: float = 10.0) -> re.Match[str]:
    """Wait for a whole output line; the log's header echoes argv, so substrings would match
    the program text before the program has run."""
    regex = re.compile(rf"^{pattern}$", re.MULTILINE)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = proc.log_path.read_text() if proc.log_path.exists() else ""
        match = regex.search(text)
        if match:
            return match
        time.sleep(0.05)
    raise AssertionError(f"no line matching {pattern!r} in {proc.log_path}")


def test_start_status_stop(make_process: ProcessFactory, state_dir: Path) -> None:
    proc = make_process(SLEEPER)
    assert proc.running_pid() is None

    pid = proc.start()

    assert proc.running_pid() == pid
    assert os.getsid(pid) == pid, "must run in its own session"
    record = json.loads(proc.pid_path.read_text())
    assert record["pid"] == pid
    assert record["create_time"] == pytest.approx(psutil.Process(pid).create_time())
    assert proc.pid_path == state_dir / "run" / "sleeper.pid"
    assert proc.log_path == state_dir / "logs" / "sleeper.log"
    assert proc.log_path.exists()

    # A later CLI invocation only has the state dir to go on.
    other = ManagedProcess("sleeper", state_dir, SLEEPER)
    assert other.running_pid() == pid
    assert other.stop(timeout=5) is True

    assert not psutil.pid_exists(pid), "stopped child must be reaped, not left a zombie"
    assert not proc.pid_path.exists()
    assert proc.running_pid() is None
    assert proc.stop() is False


def test_start_twice_raises(make_process: ProcessFactory) -> None:
    proc = make_process(SLEEPER)
    pid = proc.start()
    with pytest.raises(AlreadyRunningError, match=str(pid)):
        proc.start()
    with pytest.raises(AlreadyRunningError):
        make_process(SLEEPER).start()
    assert proc.running_pid() == pid


def test_stale_pid_file_of_recycled_pid_is_ignored(make_process: ProcessFactory) -> None:
    proc = make_process(SLEEPER)
    proc.pid_path.parent.mkdir(parents=True)
    # Our own pid stands in for "the pid now belongs to somebody else": alive, wrong start time.
    me = psutil.Process()
    stale = {"pid": me.pid, "create_time": me.create_time() + 3600, "argv": SLEEPER}
    proc.pid_path.write_text(json.dumps(stale))

    assert proc.running_pid() is None
    assert proc.stop(timeout=1) is False  # and, crucially, we are still alive
    assert not proc.pid_path.exists()

    pid = proc.start()
    assert proc.running_pid() == pid


def test_pid_file_from_before_a_reboot_is_never_acted_on(make_process: ProcessFactory) -> None:
    proc = make_process(SLEEPER)
    proc.pid_path.parent.mkdir(parents=True)
    # pids restart after boot, so the recorded pid (ours, here) may well be alive again.
    proc.pid_path.write_text(json.dumps({"pid": os.getpid(), "create_time": 1.0}))
    assert proc.running_pid() is None
    assert proc.stop(timeout=1) is False
    assert not proc.pid_path.exists()


def test_stale_pid_file_of_dead_process(make_process: ProcessFactory) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    proc = make_process(SLEEPER)
    proc.pid_path.parent.mkdir(parents=True)
    proc.pid_path.write_text(json.dumps({"pid": dead.pid, "create_time": time.time()}))

    assert proc.running_pid() is None
    pid = proc.start()
    assert proc.running_pid() == pid


def test_garbage_pid_file_counts_as_stale(make_process: ProcessFactory) -> None:
    proc = make_process(SLEEPER)
    proc.pid_path.parent.mkdir(parents=True)
    proc.pid_path.write_text("12")  # e.g. a bare pid written by some older tool
    assert proc.running_pid() is None
    assert proc.stop() is False
    assert proc.start() > 0


def test_sigterm_ignored_escalates_to_sigkill(make_process: ProcessFactory) -> None:
    code = textwrap.dedent(
        """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        time.sleep(60)
        """
    )
    proc = make_process([sys.executable, "-c", code], name="stubborn")
    pid = proc.start()
    _wait_for_line(proc, "ready")

    started = time.monotonic()
    assert proc.stop(timeout=0.5) is True
    assert time.monotonic() - started < 5
    assert not psutil.pid_exists(pid)


def test_stop_kills_the_whole_process_group(make_process: ProcessFactory) -> None:
    code = textwrap.dedent(
        """
        import subprocess, time
        child = subprocess.Popen(["sleep", "60"])
        print("GRANDCHILD=%d" % child.pid, flush=True)
        time.sleep(60)
        """
    )
    proc = make_process([sys.executable, "-c", code], name="parent")
    proc.start()
    grandchild = int(_wait_for_line(proc, r"GRANDCHILD=(\d+)").group(1))

    assert proc.stop(timeout=5) is True
    assert wait_gone(grandchild)


def test_stop_cleans_up_leftovers_of_a_crashed_leader(make_process: ProcessFactory) -> None:
    # The leader exits at once, leaving a grandchild running in its process group, as a
    # crashed server would leave its helpers.
    code = textwrap.dedent(
        """
        import subprocess
        child = subprocess.Popen(["sleep", "60"])
        print("GRANDCHILD=%d" % child.pid, flush=True)
        """
    )
    proc = make_process([sys.executable, "-c", code], name="crasher")
    pid = proc.start()
    grandchild = int(_wait_for_line(proc, r"GRANDCHILD=(\d+)").group(1))
    assert wait_gone(pid)

    assert proc.running_pid() is None
    assert psutil.pid_exists(grandchild)
    assert proc.stop(timeout=5) is True
    assert wait_gone(grandchild)


def test_process_started_by_another_interpreter(state_dir: Path) -> None:
    # What `pipeworks dev up` then `pipeworks dev down` looks like: the starter exits.
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from devstack.processes import ManagedProcess
        p = ManagedProcess("sleeper", Path({str(state_dir)!r}), {SLEEPER!r})
        print(p.start())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    pid = int(out.stdout.strip())
    proc = ManagedProcess("sleeper", state_dir, SLEEPER)
    try:
        assert proc.running_pid() == pid
    finally:
        assert proc.stop(timeout=5) is True
    assert wait_gone(pid)


def test_env_overlay_cwd_and_log(make_process: ProcessFactory, tmp_path: Path) -> None:
    code = "import os; print(os.environ['PW_TEST'], 'PATH' in os.environ, os.getcwd())"
    proc = make_process(
        [sys.executable, "-c", code], name="envcheck", env={"PW_TEST": "hello"}, cwd=tmp_path
    )
    proc.start()
    _wait_for_line(proc, re.escape(f"hello True {tmp_path}"))


def test_wait_for_port_and_free_port() -> None:
    port = free_port()
    assert port_is_free("127.0.0.1", port)
    with pytest.raises(TimeoutError, match=str(port)):
        wait_for_port("127.0.0.1", port, timeout=0.3)
    with pytest.raises(ProcessExitedError):
        wait_for_port("127.0.0.1", port, timeout=5, alive=lambda: False)

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        assert not port_is_free("127.0.0.1", port)
        wait_for_port("127.0.0.1", port, timeout=2)


def test_invalid_names_are_rejected(state_dir: Path) -> None:
    with pytest.raises(ValueError):
        ManagedProcess("../evil", state_dir, SLEEPER)
    with pytest.raises(ValueError):
        ManagedProcess("ok", state_dir, [])
