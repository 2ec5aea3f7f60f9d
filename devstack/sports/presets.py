"""Named dataset sizes for the CLI, demos and benchmarks."""

from __future__ import annotations

from collections.abc import Callable

from devstack.sports.dataset import Dataset

PRESETS: dict[str, Callable[[int], Dataset]] = {
    # 3 associations, 36 clubs, 12 competitions, 120 teams, 1,080 games.
    "demo": lambda seed: Dataset.generate(seed=seed),
    # 1 association, 6 clubs, 2 competitions, 8 teams, 24 games: quick end-to-end runs.
    "small": lambda seed: Dataset.generate(
        seed=seed,
        associations=1,
        clubs_per_association=6,
        competitions_per_association=2,
        teams_per_competition=4,
    ),
    # 100 competitions x 16 teams x 240 games (a double round robin): 24,000 games.
    "bench-100": lambda seed: Dataset.sized(
        competitions=100, teams_per_competition=16, games_per_competition=240, seed=seed
    ),
    # 4,000 competitions x 16 teams x 250 games: 1,000,000 games, generated lazily.
    "bench-1m": lambda seed: Dataset.sized(
        competitions=4000, teams_per_competition=16, games_per_competition=250, seed=seed
    ),
}


def load_preset(name: str, seed: int = 7) -> Dataset:
    try:
        factory = PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}") from None
    return factory(seed)
