"""Fixtures of the F1 demo upstream (devstack/f1): a server over loopback with two 2024
weekends (Bahrain: real race laps; China: a sprint weekend, all generated) and one
generated race with a known truth.

Import them where needed (``from tests.f1.conftest_upstream import ...``); the server
starts once per test session and every test gets it reset (no faults, no clock, no
corrections, no token).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.f1 import F1Dataset, F1UpstreamServer, GeneratedRace, PitCycle, generate_race

# OpenF1's keys: Bahrain 2024 (meeting 1229) and China 2024 (meeting 1233, sprint weekend).
BAHRAIN_MEETING = 1229
BAHRAIN_RACE = 9472
BAHRAIN_QUALIFYING = 9468
BAHRAIN_PRACTICE_1 = 9465
CHINA_SPRINT_QUALIFYING = 9668
CHINA_SPRINT = 9672
CHINA_RACE = 9673
TEST_ROUNDS = (1, 5)

# The generated race with a known truth.
TRUTH_RACE = 9999
TRUTH_MEETING = 9998
TRUTH_LAPS = 50
TRUTH_NOISE_S = 0.05
TRUTH_DEGRADATION = {1: 0.05, 16: 0.12, 4: 0.02}
TRUTH_CYCLES = (
    PitCycle(4, 18, 81, 20, "undercut", succeeds=True),
    PitCycle(16, 24, 55, 25, "overcut", succeeds=True),
    PitCycle(63, 30, 44, 31, "undercut", succeeds=False),
)
TRUTH_SAFETY_CAR = (38, 41)


def build_truth_race() -> GeneratedRace:
    return generate_race(
        seed=11,
        laps=TRUTH_LAPS,
        degradation=TRUTH_DEGRADATION,
        planned_pit_cycles=TRUTH_CYCLES,
        safety_car=TRUTH_SAFETY_CAR,
        noise_s=TRUTH_NOISE_S,
        session_key=TRUTH_RACE,
        meeting_key=TRUTH_MEETING,
    )


def build_test_dataset(truth: GeneratedRace) -> F1Dataset:
    dataset = F1Dataset.build(seed=7, rounds=TEST_ROUNDS)
    dataset.add_generated(truth)
    return dataset


@pytest.fixture(scope="session")
def f1_truth_race() -> GeneratedRace:
    return build_truth_race()


@pytest.fixture(scope="session")
def f1_upstream_server(f1_truth_race: GeneratedRace) -> Iterator[F1UpstreamServer]:
    server = F1UpstreamServer(build_test_dataset(f1_truth_race)).start()
    yield server
    server.stop()


@pytest.fixture
def f1_upstream(f1_upstream_server: F1UpstreamServer) -> Iterator[F1UpstreamServer]:
    """The session's upstream, reset before and after the test."""
    f1_upstream_server.reset()
    f1_upstream_server.token = None
    yield f1_upstream_server
    f1_upstream_server.reset()
    f1_upstream_server.token = None
