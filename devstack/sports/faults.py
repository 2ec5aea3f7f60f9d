"""The sports upstream's faults: the dev stack's transport faults (devstack/http_faults.py)
plus a pagination loop, the one fault that only a cursor-paginated API can have."""

from __future__ import annotations

import fnmatch

from devstack.http_faults import NO_FAULT, FaultAction, FaultDecision, MalformedStyle
from devstack.http_faults import FaultConfig as TransportFaultConfig
from devstack.http_faults import Faults as TransportFaults

__all__ = [
    "NO_FAULT",
    "FaultAction",
    "FaultConfig",
    "FaultDecision",
    "Faults",
    "MalformedStyle",
    "loops_cursor",
]


class FaultConfig(TransportFaultConfig):
    """The whole fault configuration; ``PUT /_admin/faults`` takes exactly this shape."""

    # fnmatch patterns of list paths whose pages, fetched with a cursor, name that
    # same cursor as next_cursor: a pagination loop a client must detect.
    cursor_loop_paths: tuple[str, ...] = ()


class Faults(TransportFaults[FaultConfig]):
    def __init__(self, config: FaultConfig | None = None) -> None:
        super().__init__(FaultConfig, config)


def loops_cursor(config: FaultConfig, path: str) -> bool:
    return any(fnmatch.fnmatchcase(path, p) for p in config.cursor_loop_paths)
