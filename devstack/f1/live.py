"""What a session looks like at a moment of a live replay.

A row is served from its ``appears`` moment on; before its last mark it is partial,
the way OpenF1's records fill in: a lap starts without sectors or duration and gains
sector 1, sector 2 and then its duration as the car passes the timing points; a
stint's ``lap_end`` is the lap the car is on; a pit row's ``lane_duration`` (and
``stop_duration``) appear once the car has left the pit lane.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable

from devstack.f1.records import Item, Row

_LAP_FIELDS_BY_MARK = (
    # Fields unknown until the n-th mark has passed.
    ("duration_sector_1", "i1_speed", "segments_sector_1"),
    ("duration_sector_2", "i2_speed", "st_speed", "segments_sector_2"),
    ("duration_sector_3", "segments_sector_3", "lap_duration"),
)


def _lap(item: Item, passed: int) -> Item:
    partial = dict(item)
    for fields in _LAP_FIELDS_BY_MARK[passed:]:
        for name in fields:
            partial[name] = None
    return partial


def _stint(item: Item, passed: int) -> Item:
    return {**item, "lap_end": item["lap_start"] + passed}


def _pit(item: Item, passed: int) -> Item:
    return {**item, "lane_duration": None, "stop_duration": None}


PARTIAL: dict[str, Callable[[Item, int], Item]] = {"laps": _lap, "stints": _stint, "pit": _pit}


def at(endpoint: str, row: Row, now: float | None) -> Item | None:
    """The row's item as of ``now`` (None: the replay is over), or None before it exists."""
    if now is None:
        return row.item
    if row.appears > now:
        return None
    marks = row.marks
    if not marks or now >= marks[-1]:
        return row.item
    partial = PARTIAL.get(endpoint)
    return row.item if partial is None else partial(row.item, bisect_right(marks, now))
