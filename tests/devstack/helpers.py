from __future__ import annotations

import time

import psutil


def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    """True once ``pid`` has exited.

    A zombie counts as exited: processes reparented to PID 1 are reaped by it, and some
    container inits (this sandbox's included) only do that every couple of seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
