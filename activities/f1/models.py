"""Validation of upstream items (f1-api.md, Entities).

Strict on what the contract pins down (keys are integers, timestamps carry an offset,
durations are finite non-negative numbers, flags are booleans) and tolerant of what it
allows: unknown extra fields are ignored, deprecated ones may be absent, the fields it
marks `|null` may be null.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from pipeworks.validation import NOT_BLANK, Int32, Text, Timestamp

# JSON numbers (an integer is a number too); NaN and infinities are no durations.
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)]
Number = Annotated[float, Field(allow_inf_nan=False, strict=True)]
Positive = Annotated[Int32, Field(ge=1)]
Name = Annotated[str, StringConstraints(strict=True, pattern=NOT_BLANK)]
Colour = Annotated[str, StringConstraints(strict=True, pattern=r"^[0-9A-Fa-f]{6}$")]
# "+1 LAP", "+2 LAPS": a lapped car's gap, in laps (f1-api.md, Mixed types).
LAPS_BEHIND = re.compile(r"^\+(\d{1,3}) LAPS?$")
Gap = Number | Annotated[str, StringConstraints(strict=True, pattern=LAPS_BEHIND.pattern)]


class F1Item(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    meeting_key: Int32


class SessionItem(F1Item):
    session_key: Int32


class Meeting(F1Item):
    year: Int32
    meeting_name: Name
    meeting_official_name: Text | None = None
    location: Text | None = None
    country_key: Int32 | None = None
    country_code: Text | None = None
    country_name: Text | None = None
    circuit_key: Int32 | None = None
    circuit_short_name: Text | None = None
    circuit_type: Text | None = None
    gmt_offset: Text | None = None
    date_start: Timestamp | None = None
    date_end: Timestamp | None = None
    is_cancelled: StrictBool = False


class Session(SessionItem):
    year: Int32
    session_name: Name
    session_type: Literal["Practice", "Qualifying", "Race"]
    date_start: Timestamp
    date_end: Timestamp
    gmt_offset: Text | None = None
    is_cancelled: StrictBool = False
    circuit_key: Int32 | None = None
    circuit_short_name: Text | None = None
    country_key: Int32 | None = None
    country_code: Text | None = None
    country_name: Text | None = None
    location: Text | None = None


class Driver(SessionItem):
    driver_number: Positive
    broadcast_name: Text | None = None
    full_name: Text | None = None
    first_name: Text | None = None
    last_name: Text | None = None
    name_acronym: Text | None = None
    team_name: Text | None = None
    team_colour: Colour | None = None
    headshot_url: Text | None = None


class Lap(SessionItem):
    driver_number: Positive
    lap_number: Positive
    date_start: Timestamp | None = None
    lap_duration: Seconds | None = None
    duration_sector_1: Seconds | None = None
    duration_sector_2: Seconds | None = None
    duration_sector_3: Seconds | None = None
    i1_speed: Int32 | None = None
    i2_speed: Int32 | None = None
    st_speed: Int32 | None = None
    is_pit_out_lap: StrictBool


class Stint(SessionItem):
    driver_number: Positive
    stint_number: Positive
    # `lap_end < lap_start` is real (a retirement on the out-lap, phantom 1..0 stints).
    lap_start: Annotated[Int32, Field(ge=0)]
    lap_end: Annotated[Int32, Field(ge=0)]
    compound: Text | None = None
    tyre_age_at_start: Annotated[Int32, Field(ge=0)] | None = None


class Pit(SessionItem):
    driver_number: Positive
    lap_number: Positive
    date: Timestamp | None = None
    lane_duration: Seconds | None = None
    stop_duration: Seconds | None = None


class Weather(SessionItem):
    date: Timestamp
    air_temperature: Number | None = None
    track_temperature: Number | None = None
    humidity: Annotated[Number, Field(ge=0, le=100)] | None = None
    pressure: Number | None = None
    rainfall: Literal[0, 1] | None = None
    wind_direction: Annotated[Int32, Field(ge=0, le=360)] | None = None
    wind_speed: Annotated[Number, Field(ge=0)] | None = None


class RaceControlMessage(SessionItem):
    date: Timestamp | None = None
    category: Text | None = None
    flag: Text | None = None
    scope: Text | None = None
    sector: Int32 | None = None
    driver_number: Int32 | None = None
    lap_number: Int32 | None = None
    qualifying_phase: Int32 | None = None
    message: Text | None = None


class Position(SessionItem):
    driver_number: Positive
    date: Timestamp
    position: Positive


class Interval(SessionItem):
    driver_number: Positive
    date: Timestamp
    gap_to_leader: Gap | None = None
    interval: Gap | None = None


class Overtake(SessionItem):
    date: Timestamp
    overtaking_driver_number: Positive
    overtaken_driver_number: Positive
    position: Positive


PhaseDurations = Annotated[list[Seconds | None], Field(min_length=3, max_length=3)]
PhaseGaps = Annotated[list[Gap | None], Field(min_length=3, max_length=3)]


class SessionResult(SessionItem):
    driver_number: Positive
    position: Positive | None = None
    number_of_laps: Annotated[Int32, Field(ge=0)]
    dnf: StrictBool
    dns: StrictBool
    dsq: StrictBool
    duration: Seconds | PhaseDurations | None = None
    gap_to_leader: Gap | PhaseGaps | None = None
    points: Number | None = None


class StartingGrid(SessionItem):
    driver_number: Positive
    position: Positive | None = None
    lap_duration: Seconds | None = None


def gap_parts(gap: float | str | None) -> tuple[float | None, int | None]:
    """(seconds, laps) of a gap: `"+N LAP(S)"` is N laps and no seconds; a number is
    seconds; null is unknown (the caller knows who leads)."""
    if gap is None:
        return None, None
    if isinstance(gap, str):
        match = LAPS_BEHIND.match(gap)
        assert match is not None  # validated by the model's pattern
        return None, int(match.group(1))
    return gap, None
