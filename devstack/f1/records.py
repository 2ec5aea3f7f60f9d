"""What the F1 upstream stores: a row per item, with the moments a live replay needs,
and each endpoint's fixed facts from the contract (date field, natural key).

Times inside the upstream are float seconds since the epoch (cheap to compare and to
bisect); items carry ISO 8601 strings with offset, exactly as served.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

Item = dict[str, Any]


@dataclass(slots=True)
class Row:
    """One item and when it exists.

    ``appears``: the session time from which a live replay serves the item at all.
    ``marks``: later moments at which the item gains fields (a lap's sectors and
    duration, a stint's growing ``lap_end``, a pit row's ``lane_duration``); what each
    mark means is the endpoint's business (devstack/f1/live.py).
    """

    item: Item
    appears: float
    marks: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    # The field date filters apply to and the index is sorted by (None: not dated).
    date_field: str | None
    natural_key: tuple[str, ...]
    # Served only for sessions of these types (None: any).
    session_types: frozenset[str] | None = None


ENDPOINTS: Final[dict[str, Endpoint]] = {
    endpoint.name: endpoint
    for endpoint in (
        Endpoint("meetings", "date_start", ("meeting_key",)),
        Endpoint("sessions", "date_start", ("session_key",)),
        Endpoint("drivers", None, ("session_key", "driver_number")),
        Endpoint("laps", "date_start", ("session_key", "driver_number", "lap_number")),
        Endpoint("stints", None, ("session_key", "driver_number", "stint_number")),
        Endpoint("pit", "date", ("session_key", "driver_number", "lap_number")),
        Endpoint("weather", "date", ("session_key", "date")),
        Endpoint("race_control", "date",
                 ("session_key", "date", "driver_number", "lap_number", "category", "flag",
                  "scope", "sector")),
        Endpoint("position", "date", ("session_key", "driver_number", "date")),
        Endpoint("intervals", "date", ("session_key", "driver_number", "date"),
                 frozenset({"Race"})),
        Endpoint("overtakes", "date",
                 ("session_key", "date", "overtaking_driver_number", "overtaken_driver_number"),
                 frozenset({"Race"})),
        Endpoint("session_result", None, ("session_key", "driver_number")),
        Endpoint("starting_grid", None, ("session_key", "driver_number"),
                 frozenset({"Qualifying"})),
    )
}
# Endpoints answered from the calendar rather than per session.
CALENDAR_ENDPOINTS: Final = frozenset({"meetings", "sessions"})
SESSION_ENDPOINTS: Final = tuple(name for name in ENDPOINTS if name not in CALENDAR_ENDPOINTS)


def ts(epoch: float) -> str:
    """An ISO 8601 timestamp with offset, to the millisecond (OpenF1 prints microseconds,
    and drops the fraction when it is zero, as ``isoformat`` does)."""
    return datetime.fromtimestamp(round(epoch, 3), UTC).isoformat()


def epoch(moment: datetime | str) -> float:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def seconds(value: float) -> float:
    """A duration as served: seconds to the millisecond."""
    return round(value, 3)


@dataclass(slots=True)
class SessionData:
    """Every row of one session, by endpoint, and when the session's data end.

    ``finished``: the moment after which a live replay serves the session complete
    (the last lap done, results published).
    """

    session_key: int
    rows: dict[str, list[Row]]
    finished: float

    def items(self, endpoint: str) -> list[Item]:
        return [row.item for row in self.rows.get(endpoint, [])]


def seeded(*parts: object) -> random.Random:
    """A reproducible RNG for one purpose: ``seeded(seed, "practice", session_key)``."""
    return random.Random(":".join(str(part) for part in parts))  # noqa: S311 - not secret


def one_per_instant(rows: list[Row]) -> list[Row]:
    """Position rows with one row per car and served instant: two changes within one
    millisecond (two timing points passed at once) become the later position, in the
    first one's place. The key (session, car, date) would otherwise repeat with two
    values, and which one a client kept would depend on the order it read them in."""
    kept: dict[tuple[object, object], int] = {}
    out: list[Row] = []
    for row in rows:
        instant = (row.item["driver_number"], row.item["date"])
        if instant in kept:
            out[kept[instant]] = row
        else:
            kept[instant] = len(out)
            out.append(row)
    return out
