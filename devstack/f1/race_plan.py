"""What a generated race is asked for: its cars, planned pit cycles and
neutralisations, and the neutralisation periods the simulation produced."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from devstack.f1.vendored import Entrant

Kind = Literal["undercut", "overcut"]
NeutralisationKind = Literal["SC", "VSC", "RED"]


@dataclass(frozen=True, slots=True)
class Car:
    """A car of a generated race. ``pace_s``: seconds a lap slower than the fastest car;
    ``grid``: start slot (None: in the order given); ``retire_after``: laps completed
    before it stops (None: runs to the flag)."""

    number: int
    pace_s: float | None = None
    grid: int | None = None
    retire_after: int | None = None
    dns: bool = False
    entrant: Entrant | None = None


@dataclass(frozen=True, slots=True)
class PitCycle:
    """Car ``first`` stops on ``first_lap``, car ``second`` on ``second_lap`` (later, at
    most 3 laps). ``kind``: who is behind before the cycle (undercut: ``first``; overcut:
    ``second``); ``succeeds``: whether that car is ahead after it (interfaces.md: order
    at the end of laps first_lap - 1 and second_lap + 1)."""

    first: int
    first_lap: int
    second: int
    second_lap: int
    kind: Kind
    succeeds: bool = True

    @property
    def attacker(self) -> int:
        return self.first if self.kind == "undercut" else self.second

    @property
    def defender(self) -> int:
        return self.second if self.kind == "undercut" else self.first


@dataclass(frozen=True, slots=True)
class Neutralisation:
    """Laps ``from_lap``..``to_lap`` of the leader run under a safety car (SC) or a VSC;
    a red flag (RED) suspends the race for ``suspension_s`` during ``from_lap``."""

    kind: NeutralisationKind
    from_lap: int
    to_lap: int
    suspension_s: float = 1800.0


@dataclass(frozen=True, slots=True)
class Period:
    kind: NeutralisationKind
    start: float
    end: float
    # SC: when "SAFETY CAR IN THIS LAP" is shown (during the leader's last SC lap).
    in_this_lap: float | None = None
