"""The F1 pipeline's demo upstream: a server of contracts/f1-api.md (an OpenF1 subset).

In-process use::

    from devstack.f1 import F1Dataset, F1FaultConfig, F1UpstreamServer, generate_race

    dataset = F1Dataset.build(seed=7, rounds=(1,))        # Bahrain 2024 weekend
    race = generate_race(seed=3, degradation={1: 0.05}, planned_pit_cycles=[...])
    dataset.add_generated(race)                           # race.truth: what to recover
    with F1UpstreamServer(dataset, faults=F1FaultConfig(rate_limit=True)) as upstream:
        upstream.replay(9472, speed=60)                   # live: the race from its start
        upstream.data_faults.hide_lap(9472, 12)           # lap 12 missing for everyone
        ...  # point the client at upstream.url

Out of process: ``python -m devstack.f1 --port 8766 --preset demo``.
"""

from devstack.f1.clock import LiveClock
from devstack.f1.dataset import F1Dataset
from devstack.f1.faults import DataFaults, F1FaultConfig, F1Faults
from devstack.f1.generator import (
    Car,
    CycleTruth,
    GeneratedRace,
    Neutralisation,
    PitCycle,
    RaceTruth,
    StintTruth,
    generate_race,
)
from devstack.f1.presets import PRESETS, load_preset
from devstack.f1.server import F1UpstreamServer

__all__ = [
    "PRESETS",
    "Car",
    "CycleTruth",
    "DataFaults",
    "F1Dataset",
    "F1FaultConfig",
    "F1Faults",
    "F1UpstreamServer",
    "GeneratedRace",
    "LiveClock",
    "Neutralisation",
    "PitCycle",
    "RaceTruth",
    "StintTruth",
    "generate_race",
    "load_preset",
]
