"""Named dataset sizes for the CLI, the dev stack and benchmarks."""

from __future__ import annotations

from collections.abc import Callable

from devstack.f1.dataset import F1Dataset
from devstack.f1.weekend import Density

PRESETS: dict[str, Callable[[int], F1Dataset]] = {
    # The 2024 season, lighter: interval rows at the line only (about 1,100 a race
    # instead of 3,400) and practice runs at half their laps. ~1.5 s to build.
    "demo": lambda seed: F1Dataset.build(
        seed=seed, density=Density(interval_points=(3,), practice_share=0.5)),
    # The 2024 season at full size: per race about 1,100 laps, 3,400-4,000 intervals and
    # 400-1,000 position events, plus every practice, qualifying and sprint session.
    "season": lambda seed: F1Dataset.build(seed=seed),
    # One weekend (Bahrain: real race laps, generated practice and qualifying).
    "bahrain": lambda seed: F1Dataset.build(seed=seed, rounds=(1,)),
}


def load_preset(name: str, seed: int = 7) -> F1Dataset:
    try:
        factory = PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}") from None
    return factory(seed)
