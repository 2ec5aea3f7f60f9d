"""Race control messages in the contract's shape and its exact phrases.

Safety car, VSC and red flag have no structured field: clients recognise them from the
message text, so the phrases here are the contract's (`SAFETY CAR DEPLOYED`, `SAFETY
CAR IN THIS LAP`, `VIRTUAL SAFETY CAR DEPLOYED`, `VIRTUAL SAFETY CAR ENDING`, `RED
FLAG`, `CHEQUERED FLAG`). A period ends as interfaces.md reads it: an SC at the end of
the lap named by `SAFETY CAR IN THIS LAP`, a VSC at `VIRTUAL SAFETY CAR ENDING`, a red
flag at the next `SESSION STARTED`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from devstack.f1.records import Item, Row, ts


@dataclass(slots=True)
class Messages:
    """Collects messages of one session; ``lap_at`` gives the leader's lap at a moment."""

    keys: dict[str, int]
    lap_at: Callable[[float], int | None]
    rows: list[Row] = field(default_factory=list)

    def add(
        self,
        at: float,
        message: str,
        *,
        category: str = "Other",
        flag: str | None = None,
        scope: str | None = None,
        sector: int | None = None,
        driver_number: int | None = None,
        qualifying_phase: int | None = None,
        dated: bool = True,
    ) -> None:
        """``dated=False`` serves the row with a null ``date`` (invisible to ``date>=``);
        a live replay still shows it only from ``at`` on."""
        item: Item = {
            **self.keys,
            "date": ts(at) if dated else None,
            "category": category,
            "flag": flag,
            "scope": scope,
            "sector": sector,
            "driver_number": driver_number,
            "lap_number": self.lap_at(at),
            "qualifying_phase": qualifying_phase,
            "message": message,
        }
        self.rows.append(Row(item, at))

    def session_started(self, at: float, phase: int | None = None) -> None:
        self.add(at, "SESSION STARTED", category="SessionStatus", qualifying_phase=phase)

    def session_finished(self, at: float) -> None:
        self.add(at, "SESSION FINISHED", category="SessionStatus")

    def green_light(self, at: float, phase: int | None = None) -> None:
        self.add(at, "GREEN LIGHT - PIT EXIT OPEN", category="Flag", flag="GREEN",
                 scope="Track", qualifying_phase=phase)

    def pit_exit_closed(self, at: float, phase: int | None = None) -> None:
        self.add(at, "PIT EXIT CLOSED", category="Other", qualifying_phase=phase)

    def chequered(self, at: float, phase: int | None = None) -> None:
        self.add(at, "CHEQUERED FLAG", category="Flag", flag="CHEQUERED", scope="Track",
                 qualifying_phase=phase)

    def drs(self, at: float, enabled: bool) -> None:
        self.add(at, "DRS ENABLED" if enabled else "DRS DISABLED", category="Drs")

    def yellow(self, at: float, until: float, sector: int, double: bool = False) -> None:
        flag = "DOUBLE YELLOW" if double else "YELLOW"
        self.add(at, f"{flag} IN TRACK SECTOR {sector}", category="Flag", flag=flag,
                 scope="Sector", sector=sector)
        self.add(until, f"CLEAR IN TRACK SECTOR {sector}", category="Flag", flag="CLEAR",
                 scope="Sector", sector=sector)

    def safety_car(self, deployed: float, in_this_lap: float, restart: float) -> None:
        self.add(deployed, "SAFETY CAR DEPLOYED", category="SafetyCar", scope="Track")
        self.add(in_this_lap, "SAFETY CAR IN THIS LAP", category="SafetyCar", scope="Track")
        self.add(restart, "TRACK CLEAR", category="Flag", flag="CLEAR", scope="Track")

    def virtual_safety_car(self, deployed: float, ending: float) -> None:
        self.add(deployed, "VIRTUAL SAFETY CAR DEPLOYED", category="SafetyCar", scope="Track")
        self.add(ending, "VIRTUAL SAFETY CAR ENDING", category="SafetyCar", scope="Track")

    def red_flag(self, at: float, resumed: float) -> None:
        self.add(at, "RED FLAG", category="Flag", flag="RED", scope="Track")
        # A stewards' note that merely mentions it: clients must not read it as a flag.
        suspended = resumed - at
        self.add(at + 0.25 * suspended, "SESSION WILL RESUME AT " + _clock(resumed),
                 category="Other")
        self.add(at + 0.5 * suspended, "FIA STEWARDS: RED FLAG INFRINGEMENT UNDER INVESTIGATION",
                 category="Other")
        self.session_started(resumed)

    def track_limits(self, at: float, number: int, acronym: str, lap: int, lap_s: float,
                     rng: random.Random) -> None:
        turn = rng.choice((1, 4, 5, 9, 10, 13, 15))
        minutes, rest = divmod(lap_s, 60)
        self.add(at, f"CAR {number} ({acronym}) TIME {int(minutes)}:{rest:06.3f} DELETED - "
                     f"TRACK LIMITS AT TURN {turn} LAP {lap} {_clock(at)}",
                 category="Other", driver_number=number)

    def blue_flags(self, lapped: list[tuple[float, int]], acronyms: dict[int, str]) -> None:
        """A blue flag shortly before each time a car is lapped."""
        for at, number in lapped:
            self.blue_flag(at - 4.0, number, acronyms.get(number, "UNK"))

    def blue_flag(self, at: float, number: int, acronym: str) -> None:
        self.add(at, f"WAVED BLUE FLAG FOR CAR {number} ({acronym}) TIMED AT {_clock(at)}",
                 category="Flag", flag="BLUE", scope="Driver", driver_number=number)


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S")
