"""What every demo upstream's ``python -m`` entry shares: serve in the foreground, print
one line with the URL on stdout (a launcher reads the port chosen for ``--port 0``
from it), and exit 0 on SIGTERM or SIGINT after stopping the server."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def serve_in_foreground(start: Callable[[], str], stop: Callable[[], None]) -> int:
    """`start` starts the server and returns the line to announce it; `stop` runs when
    a signal arrives. The handlers are in place before the server starts, so a launcher
    that stops it at once still gets a clean exit."""
    stopping = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    print(start(), flush=True)
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        stop()
    return 0
