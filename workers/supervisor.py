"""`pipeworks worker --processes N`: N worker processes on one machine, under one
supervisor.

A worker is one Python process: its activities (JSON parsing, validation, building
rows) and workflow tasks share one interpreter lock, so a worker that is busy with CPU
uses about one core however many slots it has. Several processes on the same task
queue use several cores; Temporal spreads the tasks over them as over workers on
different machines. Nothing they share lives in a process: leases, the per-upstream
rate limit and the loads are rows in Postgres, so they hold across processes as they
do across machines.

Each child is a complete worker (`pipeworks worker`) with the same settings, except
that child i serves metrics and health on the configured ports + 2i (the defaults
9464/9465 become 9466/9467 for the second, ...). SIGTERM or SIGINT to the supervisor
is passed on: every child drains within the graceful-shutdown timeout, then the
supervisor exits. A child that dies on its own is started again, after a pause that
doubles (up to a minute) while children keep dying young; a child that exits at its
first start with a configuration error (status 2) stops them all instead. A child gets
SIGTERM (and drains) when the supervisor dies, even by SIGKILL (Linux).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from pipeworks.logging import get_logger
from pipeworks.settings import Settings

log = get_logger("pipeworks.supervisor")

# A child that ran this long before it died was not dying young: its pause starts over.
HEALTHY_AFTER_SECONDS = 60.0
MAX_RESTART_PAUSE_SECONDS = 60.0
CONFIG_ERROR_STATUS = 2
# After a child's own graceful-shutdown timeout: time for it to close and exit.
EXIT_MARGIN_SECONDS = 15.0
PR_SET_PDEATHSIG = 1  # <sys/prctl.h>


def shifted(address: str, by: int) -> str:
    """`host:port` with the port moved up by `by` ("" stays off)."""
    if not address or by == 0:
        return address
    host, _, port = address.rpartition(":")
    if int(port) == 0:  # any free port: each child gets one of its own anyway
        return address
    return f"{host}:{int(port) + by}"


def child_environment(settings: Settings, index: int) -> dict[str, str]:
    """The supervisor's environment, with child `index`'s own metrics and health ports."""
    return {**os.environ,
            "PIPEWORKS_METRICS_ADDRESS": shifted(settings.metrics_address, 2 * index),
            "PIPEWORKS_HEALTH_ADDRESS": shifted(settings.health_address, 2 * index),
            "PIPEWORKS_WORKER_PROCESSES": "1"}


@dataclass
class Child:
    index: int
    process: asyncio.subprocess.Process
    started: float = field(default_factory=time.monotonic)
    pause: float = 1.0  # before the next restart, if it dies young
    restarts: int = 0


def _die_with_parent(parent: int) -> None:
    """In the child, before it runs: SIGTERM when the supervisor dies, however it dies
    (SIGKILL, OOM), so no worker outlives it and drains instead (Linux; elsewhere the
    supervisor's own signal handling is all there is)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # it died before the line above took effect
            os._exit(1)


async def _spawn(settings: Settings, index: int) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "starters.cli", "worker", env=child_environment(settings, index),
        stdin=subprocess.DEVNULL, preexec_fn=functools.partial(_die_with_parent, os.getpid()))


async def supervise(settings: Settings, processes: int) -> int:
    """Runs `processes` workers until SIGTERM/SIGINT; returns the exit status."""
    if processes < 1:
        raise ValueError("processes must be at least 1")
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    children: list[Child] = []
    status = 0
    stop_waiting = asyncio.create_task(stopping.wait())
    try:
        for i in range(processes):
            children.append(Child(i, await _spawn(settings, i)))
        log.info("worker processes started", processes=processes,
                 pids=[c.process.pid for c in children], task_queue=settings.task_queue)
        while not stopping.is_set():
            exits = {asyncio.create_task(c.process.wait()): c for c in children}
            done, _ = await asyncio.wait({*exits, stop_waiting},
                                         return_when=asyncio.FIRST_COMPLETED)
            for task in exits:
                if task not in done:
                    task.cancel()
            if stopping.is_set():
                break
            for task in done:
                child = exits.get(task)
                if child is None:
                    continue
                code = child.process.returncode
                lived = time.monotonic() - child.started
                # Status 2 at a child's first start is a configuration error (or a
                # server that cannot be reached at start): the others would meet it too.
                # Later, after the child ran, it is one more death to start again from.
                if code == CONFIG_ERROR_STATUS and child.restarts == 0 \
                        and lived < HEALTHY_AFTER_SECONDS:
                    log.error("a worker process stopped on a configuration error: stopping all",
                              worker=child.index, pid=child.process.pid)
                    status = CONFIG_ERROR_STATUS
                    stopping.set()
                    break
                pause = 1.0 if lived >= HEALTHY_AFTER_SECONDS else child.pause
                log.warning("a worker process died: starting it again", worker=child.index,
                            pid=child.process.pid, status=code, after_seconds=round(lived, 1),
                            pause_seconds=pause)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stopping.wait(), pause)
                if stopping.is_set():
                    break
                child.process = await _spawn(settings, child.index)
                child.started = time.monotonic()
                child.pause = min(pause * 2, MAX_RESTART_PAUSE_SECONDS)
                child.restarts += 1
    finally:
        stop_waiting.cancel()
        await _stop_all(children, settings.graceful_shutdown_seconds + EXIT_MARGIN_SECONDS)
    log.info("worker processes stopped")
    return status


async def _stop_all(children: list[Child], within_seconds: float) -> None:
    """SIGTERM to each live child (each drains); SIGKILL to any still there after
    `within_seconds`."""
    live = [c.process for c in children if c.process.returncode is None]
    for process in live:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.gather(*(p.wait() for p in live)), within_seconds)
    except TimeoutError:
        for process in live:
            if process.returncode is None:
                log.warning("a worker process did not drain in time: killing it",
                            pid=process.pid)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        await asyncio.gather(*(p.wait() for p in live))
