"""The F1 upstream's dataset: the calendar and every session's rows, indexed for serving.

Deterministic from its seed. Build a season (``F1Dataset.build``), or start empty and
add sessions (e.g. a generated race with known truth: ``add_generated``). Corrections
change a record in place ("latest version" semantics); ``reset`` undoes them.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from typing import Any

from devstack.f1.calendar import Calendar, SessionInfo
from devstack.f1.generator import GeneratedRace
from devstack.f1.records import (
    CALENDAR_ENDPOINTS,
    ENDPOINTS,
    SESSION_ENDPOINTS,
    Item,
    Row,
    SessionData,
)
from devstack.f1.store import Table
from devstack.f1.vendored import season
from devstack.f1.weekend import Density, build_round

ALWAYS = float("-inf")


class F1Dataset:
    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.calendar = Calendar()
        self._tables: dict[tuple[str, int], Table] = {}
        self._finished: dict[int, float] = {}
        self._lock = threading.Lock()
        self._tables[("meetings", 0)] = Table(ENDPOINTS["meetings"], [])
        self._tables[("sessions", 0)] = Table(ENDPOINTS["sessions"], [])

    @classmethod
    def build(cls, *, seed: int = 7, rounds: Collection[int] | None = None,
              session_names: Collection[str] | None = None,
              density: Density = Density()) -> F1Dataset:
        """The 2024 season (``rounds``: only these rounds; ``session_names``: only these
        sessions of each)."""
        dataset = cls(seed)
        for race in season():
            if rounds is not None and race.round not in rounds:
                continue
            meeting, sessions = build_round(race, seed=seed, density=density,
                                            names=session_names)
            for info, data in sessions:
                dataset.add_session(meeting, info, data)
        return dataset

    def add_session(self, meeting: Item, info: SessionInfo, data: SessionData) -> None:
        with self._lock:
            known = {m["meeting_key"] for m in self.calendar.meetings}
            self.calendar.add(meeting, [info])
            if meeting["meeting_key"] not in known:
                self._tables[("meetings", 0)].add_built(Row(meeting, ALWAYS))
            else:
                self._widen_meeting(meeting["meeting_key"], info)
            self._tables[("sessions", 0)].add_built(Row(info.item, ALWAYS))
            for endpoint in SESSION_ENDPOINTS:
                self._tables[(endpoint, info.key)] = Table(ENDPOINTS[endpoint],
                                                           data.rows.get(endpoint, []))
            self._finished[info.key] = data.finished

    def add_generated(self, race: GeneratedRace) -> None:
        self.add_session(race.meeting, race.session, race.data)

    def _widen_meeting(self, meeting_key: int, info: SessionInfo) -> None:
        """A meeting spans its sessions (a generated session may extend it)."""
        row = self._tables[("meetings", 0)].find({"meeting_key": meeting_key})
        item = row.item
        if info.item["date_start"] < item["date_start"]:
            item["date_start"] = info.item["date_start"]
        if info.item["date_end"] > item["date_end"]:
            item["date_end"] = info.item["date_end"]

    def table(self, endpoint: str, session_key: int = 0) -> Table | None:
        key = (endpoint, 0 if endpoint in CALENDAR_ENDPOINTS else session_key)
        return self._tables.get(key)

    def session(self, session_key: int) -> SessionInfo:
        return self.calendar.session(session_key)

    def finished(self, session_key: int) -> float:
        """When the session's data are complete (live replays serve it whole after)."""
        return self._finished[session_key]

    def items(self, endpoint: str, session_key: int = 0) -> list[Item]:
        """Every item as built or corrected (no clock, no faults): the ground truth."""
        table = self.table(endpoint, session_key)
        return [] if table is None else [dict(row.item) for row in table.rows()]

    def correct(self, endpoint: str, session_key: int, key: Mapping[str, Any],
                changes: Mapping[str, Any]) -> Item:
        """Change the record with this natural key (e.g. ``{"driver_number": 1,
        "lap_number": 5}``) to carry ``changes``; returns it as now served."""
        table = self.table(endpoint, session_key)
        if table is None:
            raise KeyError(f"no {endpoint} for session {session_key}")
        return table.correct(key, changes)

    def add_item(self, endpoint: str, session_key: int, item: Item,
                 appears: float = ALWAYS) -> None:
        """Add a record (a backfill); ``reset`` removes it again."""
        table = self.table(endpoint, session_key)
        if table is None:
            raise KeyError(f"no {endpoint} for session {session_key}")
        table.add(Row(item, appears))

    def reset(self) -> None:
        for table in self._tables.values():
            table.reset()

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(ENDPOINTS, 0)
        for (endpoint, _), table in self._tables.items():
            counts[endpoint] += len(table)
        return counts

    def session_keys(self) -> list[int]:
        return [info.key for info in self.calendar.sessions]
