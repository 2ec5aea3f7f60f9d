"""The lap-time model of generated sessions, calibrated on real figures, and the small
per-lap details (sector shares, speed traps, mini-sector codes) laps carry.

A green racing lap of a car on lap n of a stint:

    base + pace + compound offset + FUEL_EFFECT_S_PER_KG * fuel_kg(n, L)
         + slope * tyre_age(n) + noise

with ``fuel_kg`` and ``tyre_age`` exactly as interfaces.md defines them for the F1
pipeline (metric version v1), so a pipeline that subtracts ``0.03 * fuel_kg(n)`` and
fits the slope on tyre age recovers ``slope`` up to the noise.
"""

from __future__ import annotations

import math
import random
from typing import Final

FUEL_START_KG: Final = 110.0
FUEL_EFFECT_S_PER_KG: Final = 0.03
# Relative to MEDIUM, seconds a lap on a fresh set.
COMPOUND_OFFSET_S: Final[dict[str, float]] = {
    "SOFT": -0.6, "MEDIUM": 0.0, "HARD": 0.45, "INTERMEDIATE": 6.0, "WET": 10.0,
}
# Median degradation, s/lap, per compound: the field's median is about 0.035 s/lap and a
# stint's slope spreads log-normally around its compound's median, capped at MAX_SLOPE.
SLOPE_MEDIAN_S: Final[dict[str, float]] = {
    "SOFT": 0.06, "MEDIUM": 0.035, "HARD": 0.022, "INTERMEDIATE": 0.05, "WET": 0.04,
}
SLOPE_SPREAD: Final = 0.4
MIN_SLOPE_S: Final = 0.005
MAX_SLOPE_S: Final = 0.15
# Share of a lap in each sector.
SECTOR_SHARES: Final = (0.31, 0.42, 0.27)
# Pit lane: the lane time, and how it splits between the in-lap (entry, before the line)
# and the out-lap; an out-lap also loses time on cold tyres.
LANE_S: Final = (20.0, 25.0)
IN_LAP_SHARE: Final = 0.12
COLD_TYRES_S: Final = 1.2
# A standing start, and the further back on the grid the longer to the line.
START_LOSS_S: Final = 4.0
START_LOSS_PER_SLOT_S: Final = 0.25
# Mini-sectors per sector and their codes (contract: 2048 yellow, 2049 green,
# 2051 purple, 2064 pit lane).
SEGMENTS_PER_SECTOR: Final = (7, 9, 8)
YELLOW, GREEN, PURPLE, PIT_LANE = 2048, 2049, 2051, 2064


def fuel_kg(lap: int, race_laps: int) -> float:
    """Fuel on board over lap ``lap``: 110 kg burning linearly to nothing at the flag."""
    return max(FUEL_START_KG - (FUEL_START_KG / race_laps) * (lap - 0.5), 0.0)


def tyre_age(lap: int, lap_start: int, tyre_age_at_start: int) -> int:
    """Laps on the set at the end of ``lap`` (1 on a new set's first lap)."""
    return tyre_age_at_start + (lap - lap_start) + 1


def draw_slope(compound: str, rng: random.Random) -> float:
    median = SLOPE_MEDIAN_S.get(compound, 0.035)
    slope = median * math.exp(rng.gauss(0.0, SLOPE_SPREAD))
    return round(min(MAX_SLOPE_S, max(MIN_SLOPE_S, slope)), 4)


def sectors(duration: float, rng: random.Random, *, entry_s: float = 0.0, exit_s: float = 0.0
            ) -> tuple[float, float, float]:
    """Sector times summing to ``duration``: pit exit time lands in sector 1, pit entry
    time in sector 3 (as real in- and out-laps show)."""
    racing = duration - entry_s - exit_s
    jitter = rng.uniform(-0.004, 0.004)
    s1 = round(racing * (SECTOR_SHARES[0] + jitter) + exit_s, 3)
    s2 = round(racing * (SECTOR_SHARES[1] - jitter / 2), 3)
    s3 = round(duration - s1 - s2, 3)
    return s1, s2, s3


def speeds(rng: random.Random, *, slow: bool) -> tuple[int, int, int]:
    """(i1, i2, speed trap) in km/h; a lap through the pit lane is slow at the trap."""
    i1 = int(rng.gauss(265, 12))
    i2 = int(rng.gauss(240, 10))
    trap = int(rng.gauss(300, 10)) if not slow else int(rng.gauss(220, 20))
    return i1, i2, trap


def segments(rng: random.Random, *, out_lap: bool, in_lap: bool, best: bool
             ) -> tuple[list[int | None], list[int | None], list[int | None]]:
    arrays: list[list[int | None]] = []
    for sector, count in enumerate(SEGMENTS_PER_SECTOR):
        codes: list[int | None] = []
        for index in range(count):
            pit_exit = out_lap and sector == 0 and index < 3
            pit_entry = in_lap and sector == 2 and index >= count - 2
            if pit_exit or pit_entry:
                codes.append(PIT_LANE)
            else:
                draw = rng.random()
                codes.append(PURPLE if best and draw < 0.15 else
                             GREEN if draw < 0.45 else YELLOW)
        arrays.append(codes)
    return arrays[0], arrays[1], arrays[2]
