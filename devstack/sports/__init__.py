"""Demo upstream: a deterministic sports-administration API (contract v1) for demos and tests.

In-process use::

    from devstack.sports import Dataset, FaultConfig, UpstreamServer

    with UpstreamServer(Dataset.generate(seed=7), token="secret") as upstream:
        upstream.faults.set(rate_limit_rate=0.2, retry_after_s=1)
        upstream.dataset.update_game("G1-1", home_score=4)
        ...  # point the client at upstream.url

Out of process: ``python -m devstack.sports --port 8765 --size demo``.
"""

from devstack.http_stats import Stats
from devstack.sports.dataset import Dataset
from devstack.sports.faults import FaultConfig, Faults
from devstack.sports.presets import PRESETS, load_preset
from devstack.sports.server import UpstreamServer

__all__ = [
    "PRESETS",
    "Dataset",
    "FaultConfig",
    "Faults",
    "Stats",
    "UpstreamServer",
    "load_preset",
]
