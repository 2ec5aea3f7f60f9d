"""Core's HTTP work queue: at most ``-rpcthreads`` requests execute at once and up to
``-rpcworkqueue`` more wait; a request beyond that is refused at once with 503 ``Work
queue depth exceeded``. The stdlib server gives every connection its own thread, so the
"queue" is the threads waiting here for an execution slot."""

from __future__ import annotations

import threading


class WorkQueue:
    def __init__(self, threads: int, depth: int) -> None:
        if threads < 1 or depth < 0:
            raise ValueError("rpcthreads must be >= 1 and rpcworkqueue >= 0")
        self.threads = threads
        self.depth = depth
        self._cond = threading.Condition()
        self.running = 0
        self.waiting = 0

    def admit(self) -> bool:
        """Queue a request; False when the queue is full (answer 503)."""
        with self._cond:
            if self.running + self.waiting >= self.threads + self.depth:
                return False
            self.waiting += 1
            return True

    def start(self, stopping: threading.Event) -> bool:
        """Wait for a free thread (False if the server stops first); call ``finish``
        after a True."""
        with self._cond:
            try:
                while self.running >= self.threads:
                    if stopping.is_set():
                        return False
                    self._cond.wait(0.05)
                self.running += 1
                return True
            finally:
                self.waiting -= 1

    def finish(self) -> None:
        with self._cond:
            self.running -= 1
            self._cond.notify()

    def snapshot(self) -> dict[str, int]:
        with self._cond:
            return {"rpcthreads": self.threads, "rpcworkqueue": self.depth,
                    "running": self.running, "waiting": self.waiting}
