"""A circuit breaker as a pure state machine: no I/O and no clock of its own.

Callers pass `now` in (a workflow passes `workflow.now()`), so the breaker is
deterministic and replays identically, and it travels as a plain dict through
heartbeat details and continue-as-new inputs (`as_dict` / `from_dict`).

    closed ──(failure rate over the last `window` outcomes reaches `failure_rate`,
              after at least `min_calls` of them)──> open
    open ──(`now` reaches `open_until`)──> half_open
    half_open ──(the one probe succeeds)──> closed, window cleared
    half_open ──(the one probe fails)──> open again, for twice as long (up to the cap)

Every opening spends its whole duration of `budget_seconds`; an opening the budget
cannot pay for gives up instead, for good: from then on `allow` answers GIVE_UP.
A budget of 0 disables the breaker: it never opens and failures just propagate.

`allow` hands out permits (GO or PROBE decisions); each must be settled exactly once
with `record_success`, `record_failure` or `release`, and the breaker refuses what
does not add up (a probe settled twice, a permit it never issued) with `BreakerMisuse`
rather than quietly miscount.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Verdict(StrEnum):
    GO = "go"  # a normal call may go out
    WAIT = "wait"  # nothing may go out before `Decision.until` (None: until the probe ends)
    PROBE = "probe"  # the one trial call of a half-open breaker
    GIVE_UP = "give_up"  # the budget is spent: stop calling


class BreakerMisuse(RuntimeError):
    """A permit settled that the breaker did not issue, or settled twice."""


@dataclass(frozen=True)
class BreakerPolicy:
    # The failure rate is measured over the last `window` settled outcomes, and only
    # once there are `min_calls` of them, so that one early failure does not open it.
    window: int = 10
    min_calls: int = 4
    failure_rate: float = 0.5
    first_open_seconds: float = 60.0
    max_open_seconds: float = 600.0
    # Total time the breaker may stay open in its life; 0: never open.
    budget_seconds: float = 3600.0

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"window must be at least 1, not {self.window}")
        if not 1 <= self.min_calls <= self.window:
            raise ValueError(f"min_calls must be within 1..window ({self.window}), "
                             f"not {self.min_calls}")
        if not 0.0 < self.failure_rate <= 1.0:
            raise ValueError(f"failure_rate must be within (0, 1], not {self.failure_rate}")
        if self.first_open_seconds <= 0:
            raise ValueError(f"first_open_seconds must be positive, "
                             f"not {self.first_open_seconds}")
        if self.max_open_seconds < self.first_open_seconds:
            raise ValueError(f"max_open_seconds ({self.max_open_seconds}) is less than "
                             f"first_open_seconds ({self.first_open_seconds})")
        if self.budget_seconds < 0:
            raise ValueError(f"budget_seconds must not be negative, not {self.budget_seconds}")

    @classmethod
    def on_first_failure(cls, *, first_open_seconds: float = 60.0,
                         max_open_seconds: float = 600.0,
                         budget_seconds: float = 3600.0) -> BreakerPolicy:
        """For a caller whose calls are few and each already retried at length (an
        activity whose own retries are spent): one failure is enough evidence."""
        return cls(window=1, min_calls=1, failure_rate=1.0,
                   first_open_seconds=first_open_seconds, max_open_seconds=max_open_seconds,
                   budget_seconds=budget_seconds)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BreakerPolicy:
        _exact_keys("breaker policy", data, {f.name for f in fields(cls)})
        return cls(**data)


@dataclass(frozen=True)
class Decision:
    """What `allow` answers; a GO or PROBE decision is also the permit to settle."""

    verdict: Verdict
    until: datetime | None = None  # WAIT: ask again then (None: when the probe ends)
    # The breaker's openings when the permit was issued: an outcome settled after the
    # breaker has opened since belongs to an earlier period and changes nothing.
    epoch: int = 0

    @property
    def is_permit(self) -> bool:
        return self.verdict in (Verdict.GO, Verdict.PROBE)


@dataclass
class CircuitBreaker:
    policy: BreakerPolicy = field(default_factory=BreakerPolicy)
    state: BreakerState = BreakerState.CLOSED
    # The settled outcomes of the current closed period, oldest first (True: failure).
    outcomes: list[bool] = field(default_factory=list)
    open_until: datetime | None = None
    since: datetime | None = None  # when the state last changed
    next_open_seconds: float | None = None  # None: the policy's first_open_seconds
    times_opened: int = 0
    seconds_open: float = 0.0  # of the budget, spent by the openings so far
    in_flight: int = 0  # GO permits not yet settled
    probe_in_flight: bool = False
    gave_up: bool = False

    def __post_init__(self) -> None:
        if self.next_open_seconds is None:
            self.next_open_seconds = self.policy.first_open_seconds

    # -- asking -----------------------------------------------------------------------

    def allow(self, now: datetime) -> Decision:
        """May a call go out now? GO and PROBE are permits: settle each exactly once."""
        if self.gave_up:
            return Decision(Verdict.GIVE_UP, epoch=self.times_opened)
        if self.state is BreakerState.OPEN:
            assert self.open_until is not None
            if now < self.open_until:
                return Decision(Verdict.WAIT, self.open_until, self.times_opened)
            self._enter(BreakerState.HALF_OPEN, now)
            self.open_until = None
        if self.state is BreakerState.HALF_OPEN:
            if self.probe_in_flight:
                return Decision(Verdict.WAIT, None, self.times_opened)
            self.probe_in_flight = True
            return Decision(Verdict.PROBE, epoch=self.times_opened)
        self.in_flight += 1
        return Decision(Verdict.GO, epoch=self.times_opened)

    @property
    def failure_rate(self) -> float:
        """Over the current window (0.0 when it is empty)."""
        if not self.outcomes:
            return 0.0
        return sum(self.outcomes) / len(self.outcomes)

    @property
    def disabled(self) -> bool:
        return self.policy.budget_seconds == 0

    def is_current(self, permit: Decision) -> bool:
        """False when the breaker has opened since the permit was issued: its call
        ran into (part of) an outage the breaker has already reacted to."""
        return permit.epoch == self.times_opened

    # -- settling ---------------------------------------------------------------------

    def record_success(self, now: datetime, permit: Decision) -> None:
        if self._settle(permit) is Verdict.PROBE:
            # The upstream answers again: a fresh start, and short openings again.
            self.outcomes.clear()
            self.next_open_seconds = self.policy.first_open_seconds
            self._enter(BreakerState.CLOSED, now)
        elif self.is_current(permit) and not self.gave_up:
            self._note(False)

    def record_failure(self, now: datetime, permit: Decision) -> bool:
        """Returns whether this failure opened the breaker (False also when it gave
        up instead: see `gave_up`)."""
        if self._settle(permit) is Verdict.PROBE:
            assert self.next_open_seconds is not None
            self.next_open_seconds = min(self.next_open_seconds * 2,
                                         self.policy.max_open_seconds)
            return self._open(now)
        if not self.is_current(permit) or self.gave_up:
            return False
        self._note(True)
        if (self.disabled or len(self.outcomes) < self.policy.min_calls
                or self.failure_rate < self.policy.failure_rate):
            return False
        return self._open(now)

    def release(self, now: datetime, permit: Decision) -> None:
        """Settles a permit whose call says nothing about the upstream (cancelled, or
        failed for another reason): no outcome counts, and a probe slot frees up."""
        self._settle(permit)

    def forget_permits(self) -> None:
        """The calls holding permits are gone (the breaker was carried into a new run):
        nobody will settle them, and a probe nobody settles would block all calls."""
        self.in_flight = 0
        self.probe_in_flight = False

    # -- plain-dict form ----------------------------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy.as_dict(),
            "state": self.state.value,
            "outcomes": list(self.outcomes),
            "open_until": _rfc3339(self.open_until),
            "since": _rfc3339(self.since),
            "next_open_seconds": self.next_open_seconds,
            "times_opened": self.times_opened,
            "seconds_open": self.seconds_open,
            "in_flight": self.in_flight,
            "probe_in_flight": self.probe_in_flight,
            "gave_up": self.gave_up,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CircuitBreaker:
        _exact_keys("circuit breaker", data, {f.name for f in fields(cls)})
        breaker = cls(
            policy=BreakerPolicy.from_dict(data["policy"]),
            state=BreakerState(data["state"]),
            outcomes=[bool(o) for o in data["outcomes"]],
            open_until=_parse(data["open_until"]),
            since=_parse(data["since"]),
            next_open_seconds=float(data["next_open_seconds"]),
            times_opened=int(data["times_opened"]),
            seconds_open=float(data["seconds_open"]),
            in_flight=int(data["in_flight"]),
            probe_in_flight=bool(data["probe_in_flight"]),
            gave_up=bool(data["gave_up"]),
        )
        breaker._check()
        return breaker

    def summary(self) -> dict[str, Any]:
        """The short form for a progress document."""
        return {
            "state": self.state.value,
            "opened": self.times_opened,
            "open_until": _rfc3339(self.open_until),
            "failure_rate": round(self.failure_rate, 4),
            "seconds_open": self.seconds_open,
            "gave_up": self.gave_up,
        }

    # -- inside -----------------------------------------------------------------------

    def _settle(self, permit: Decision) -> Verdict:
        if permit.verdict is Verdict.PROBE:
            if not (self.probe_in_flight and self.is_current(permit)):
                raise BreakerMisuse("a probe outcome, but no such probe is in flight")
            self.probe_in_flight = False
        elif permit.verdict is Verdict.GO:
            if self.in_flight < 1 or permit.epoch > self.times_opened:
                raise BreakerMisuse("a call outcome, but no such call is in flight")
            self.in_flight -= 1
        else:
            raise BreakerMisuse(f"a {permit.verdict.value!r} decision is no permit to settle")
        return permit.verdict

    def _note(self, failed: bool) -> None:
        self.outcomes.append(failed)
        del self.outcomes[:-self.policy.window]

    def _open(self, now: datetime) -> bool:
        duration = self.next_open_seconds
        assert duration is not None
        if self.disabled or self.seconds_open + duration > self.policy.budget_seconds:
            # Waiting longer would break the promise the budget makes to the caller.
            self.gave_up = True
            return False
        self.seconds_open += duration
        self.times_opened += 1
        self.open_until = now + timedelta(seconds=duration)
        self._enter(BreakerState.OPEN, now)
        return True

    def _enter(self, state: BreakerState, now: datetime) -> None:
        self.state = state
        self.since = now

    def _check(self) -> None:
        """What a dict from elsewhere must satisfy to be a state this class could reach."""
        problems = []
        if (self.state is BreakerState.OPEN) != (self.open_until is not None):
            problems.append("open_until is set exactly when the breaker is open")
        if self.probe_in_flight and self.state is not BreakerState.HALF_OPEN:
            problems.append("a probe is in flight only when half-open")
        if len(self.outcomes) > self.policy.window:
            problems.append("more outcomes than the window holds")
        if self.in_flight < 0 or self.times_opened < 0 or self.seconds_open < 0:
            problems.append("negative counts")
        if self.seconds_open > self.policy.budget_seconds:
            problems.append("more time open than the budget allows")
        if problems:
            raise ValueError(f"inconsistent circuit breaker: {'; '.join(problems)}")


def _rfc3339(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _parse(text: Any) -> datetime | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise ValueError(f"expected an RFC 3339 timestamp or null, not {text!r}")
    return datetime.fromisoformat(text)


def _exact_keys(what: str, data: Mapping[str, Any], expected: set[str]) -> None:
    # A missing or unknown key is a dict of another version or shape: refuse it
    # rather than quietly default it.
    if set(data) != expected:
        missing, unknown = sorted(expected - set(data)), sorted(set(data) - expected)
        raise ValueError(f"not a {what}: missing {missing}, unknown {unknown}")
