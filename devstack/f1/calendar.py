"""The season's meetings and sessions as the contract serves them, with their keys."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from devstack.f1 import facts
from devstack.f1.records import Item, epoch, ts
from devstack.f1.vendored import Round

# Session names by the schedule keys of the vendored data, in weekend order.
SCHEDULE_NAMES = {
    "fp1": "Practice 1", "fp2": "Practice 2", "fp3": "Practice 3",
    "sprint_qualifying": "Sprint Qualifying", "sprint": "Sprint",
    "qualifying": "Qualifying", "race": "Race",
}


@dataclass(frozen=True, slots=True)
class SessionInfo:
    key: int
    meeting_key: int
    name: str
    type: str
    # Scheduled start and end, epoch seconds.
    start: float
    end: float
    circuit_id: str
    item: Item
    round: Round | None = None

    @property
    def is_race(self) -> bool:
        return self.type == "Race"


@dataclass(slots=True)
class Calendar:
    meetings: list[Item] = field(default_factory=list)
    sessions: list[SessionInfo] = field(default_factory=list)

    def session(self, key: int) -> SessionInfo:
        for info in self.sessions:
            if info.key == key:
                return info
        raise KeyError(f"no session {key}")

    def of_meeting(self, meeting_key: int) -> list[SessionInfo]:
        return [info for info in self.sessions if info.meeting_key == meeting_key]

    def add(self, meeting: Item, sessions: Iterable[SessionInfo]) -> None:
        if all(m["meeting_key"] != meeting["meeting_key"] for m in self.meetings):
            self.meetings.append(meeting)
        known = {info.key for info in self.sessions}
        for info in sessions:
            if info.key in known:
                raise ValueError(f"session {info.key} already exists")
            self.sessions.append(info)


def place_fields(race: Round) -> Item:
    """The location fields meetings and sessions share."""
    circuit = race.circuit
    circuit_key, short_name = facts.CIRCUITS[circuit.id]
    return {
        "circuit_key": circuit_key,
        "circuit_short_name": short_name,
        "country_key": facts.COUNTRY_KEYS.get(circuit.ioc, 900 + race.round),
        "country_code": circuit.ioc,
        "country_name": circuit.country,
        "location": circuit.place,
        "gmt_offset": facts.GMT_OFFSETS[circuit.id],
    }


def round_sessions(race: Round) -> tuple[Item, list[SessionInfo]]:
    """A round's meeting item and its sessions (keys: OpenF1's where known)."""
    names = [SCHEDULE_NAMES[key] for key in SCHEDULE_NAMES if key in race.schedule]
    if race.round in facts.OPENF1_KEYS:
        meeting_key, keys = facts.OPENF1_KEYS[race.round]
    else:
        meeting_key, keys = facts.synthetic_keys(race.round, names)
    place = place_fields(race)
    sessions = []
    for schedule_key, name in SCHEDULE_NAMES.items():
        if schedule_key not in race.schedule:
            continue
        start = race.schedule[schedule_key]
        end = start + timedelta(minutes=facts.SESSION_MINUTES[name])
        item: Item = {
            "session_key": keys[name],
            "meeting_key": meeting_key,
            "year": facts.YEAR,
            "session_name": name,
            "session_type": facts.SESSION_TYPES[name],
            "date_start": ts(epoch(start)),
            "date_end": ts(epoch(end)),
            "is_cancelled": False,
            **place,
        }
        sessions.append(SessionInfo(keys[name], meeting_key, name, facts.SESSION_TYPES[name],
                                    epoch(start), epoch(end), race.circuit.id, item, race))
    sessions.sort(key=lambda info: info.start)
    meeting: Item = {
        "meeting_key": meeting_key,
        "year": facts.YEAR,
        "meeting_name": race.name,
        "meeting_official_name": race.official_name,
        "circuit_type": facts.CIRCUIT_TYPES.get(race.circuit.type, race.circuit.type),
        "date_start": sessions[0].item["date_start"],
        "date_end": sessions[-1].item["date_end"],
        "is_cancelled": False,
        **place,
    }
    return meeting, sessions
