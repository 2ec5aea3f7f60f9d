"""The circuit breaker state machine, without Temporal: transitions, doubling, the
budget, the plain-dict form, and refusal of permits it did not issue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeworks.breaker import (
    BreakerMisuse,
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    Decision,
    Verdict,
)

T0 = datetime(2030, 1, 1, tzinfo=UTC)
RATE = BreakerPolicy(window=10, min_calls=4, failure_rate=0.5, first_open_seconds=60,
                     max_open_seconds=600, budget_seconds=3600)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def outcome(breaker: CircuitBreaker, failed: bool, when: datetime = T0) -> bool:
    """One whole call: ask, then settle. Returns whether it opened the breaker."""
    permit = breaker.allow(when)
    assert permit.verdict is Verdict.GO, permit
    if failed:
        return breaker.record_failure(when, permit)
    breaker.record_success(when, permit)
    return False


def trip(breaker: CircuitBreaker, when: datetime = T0) -> None:
    while not outcome(breaker, True, when):
        pass
    assert breaker.state is BreakerState.OPEN


def fail_probe(breaker: CircuitBreaker) -> None:
    when = breaker.open_until
    assert when is not None
    probe = breaker.allow(when)
    assert probe.verdict is Verdict.PROBE, probe
    breaker.record_failure(when, probe)


def test_opens_on_the_failure_rate_only_after_min_calls() -> None:
    breaker = CircuitBreaker(RATE)
    assert [outcome(breaker, True) for _ in range(3)] == [False, False, False]
    assert breaker.state is BreakerState.CLOSED  # 100% failures, but only 3 calls
    assert outcome(breaker, True) is True
    assert breaker.summary()["state"] == "open"
    assert breaker.open_until == at(60) and breaker.times_opened == 1
    assert breaker.seconds_open == 60


def test_a_failure_rate_below_the_threshold_keeps_it_closed() -> None:
    breaker = CircuitBreaker(RATE)
    for failed in [False, False, True, False, False, True, False, False, True, False]:
        assert outcome(breaker, failed) is False
    assert breaker.state is BreakerState.CLOSED and breaker.failure_rate == 0.3
    # The window slides: the old successes leave it as failures come in.
    opened = [outcome(breaker, True) for _ in range(2)]
    assert opened == [False, True] and breaker.failure_rate == 0.5


def test_the_window_holds_only_the_last_outcomes() -> None:
    breaker = CircuitBreaker(BreakerPolicy(window=3, min_calls=3, failure_rate=1.0))
    for failed in [True, True, False, True, True]:
        outcome(breaker, failed)
    assert breaker.outcomes == [False, True, True]
    assert outcome(breaker, True) is True


def test_open_waits_until_open_until_then_lets_exactly_one_probe_through() -> None:
    breaker = CircuitBreaker(RATE)
    trip(breaker)
    assert breaker.allow(at(59.999)) == Decision(Verdict.WAIT, at(60), 1)
    probe = breaker.allow(at(60))
    assert probe.verdict is Verdict.PROBE and breaker.state is BreakerState.HALF_OPEN
    # Everyone else waits for the probe's outcome (no time given: it is not a timer).
    assert breaker.allow(at(61)) == Decision(Verdict.WAIT, None, 1)
    assert breaker.allow(at(9999)).verdict is Verdict.WAIT


def test_a_successful_probe_closes_with_a_fresh_window_and_short_openings() -> None:
    breaker = CircuitBreaker(RATE)
    trip(breaker)
    fail_probe(breaker)  # the next opening would now last 240 s
    probe = breaker.allow(at(60 + 120))
    breaker.record_success(at(180), probe)
    assert breaker.state is BreakerState.CLOSED and breaker.outcomes == []
    assert breaker.next_open_seconds == 60 and breaker.since == at(180)
    assert breaker.allow(at(180)).verdict is Verdict.GO


def test_a_failed_probe_reopens_for_twice_as_long_up_to_the_cap() -> None:
    breaker = CircuitBreaker(RATE)
    trip(breaker)
    durations = []
    for _ in range(5):
        start = breaker.open_until
        fail_probe(breaker)
        assert start is not None and breaker.open_until is not None
        durations.append((breaker.open_until - start).total_seconds())
    assert durations == [120, 240, 480, 600, 600]
    assert breaker.times_opened == 6 and breaker.seconds_open == 60 + 2040


def test_the_budget_spent_means_give_up_for_every_caller() -> None:
    breaker = CircuitBreaker(BreakerPolicy.on_first_failure(budget_seconds=200))
    trip(breaker)  # 60 s
    fail_probe(breaker)  # 120 s: 180 of 200 spent
    assert not breaker.gave_up
    fail_probe(breaker)  # 240 s more would pass the budget
    assert breaker.gave_up and breaker.seconds_open == 180
    assert breaker.allow(at(10_000)).verdict is Verdict.GIVE_UP


def test_a_zero_budget_never_opens_and_failures_just_count() -> None:
    breaker = CircuitBreaker(BreakerPolicy.on_first_failure(budget_seconds=0))
    assert [outcome(breaker, True) for _ in range(5)] == [False] * 5
    assert breaker.state is BreakerState.CLOSED and not breaker.gave_up
    assert breaker.allow(T0).verdict is Verdict.GO


def test_one_failure_opens_an_on_first_failure_breaker() -> None:
    breaker = CircuitBreaker(BreakerPolicy.on_first_failure())
    assert outcome(breaker, False) is False
    assert outcome(breaker, True) is True


def test_outcomes_of_calls_issued_before_an_opening_change_nothing() -> None:
    breaker = CircuitBreaker(RATE)
    early = [breaker.allow(T0) for _ in range(6)]
    for permit in early[:4]:
        breaker.record_failure(T0, permit)
    assert breaker.state is BreakerState.OPEN
    # Stale: they ran into the outage the breaker already reacted to.
    assert breaker.record_failure(at(1), early[4]) is False
    breaker.record_success(at(1), early[5])
    assert breaker.state is BreakerState.OPEN and breaker.in_flight == 0
    assert not breaker.is_current(early[4])


def test_misuse_is_refused() -> None:
    breaker = CircuitBreaker(RATE)
    with pytest.raises(BreakerMisuse):  # no call in flight
        breaker.record_success(T0, Decision(Verdict.GO))
    trip(breaker)
    wait = breaker.allow(T0)
    with pytest.raises(BreakerMisuse):
        breaker.record_failure(T0, wait)
    with pytest.raises(BreakerMisuse):  # no probe in flight
        breaker.record_success(T0, Decision(Verdict.PROBE, epoch=1))
    probe = breaker.allow(at(60))
    breaker.record_success(at(60), probe)
    with pytest.raises(BreakerMisuse):  # settled twice
        breaker.record_failure(at(60), probe)
    go = breaker.allow(at(60))
    with pytest.raises(BreakerMisuse):  # from an epoch that never was
        breaker.release(at(60), Decision(Verdict.GO, epoch=7))
    breaker.release(at(60), go)
    assert breaker.in_flight == 0


def test_a_released_probe_frees_the_slot_for_another() -> None:
    breaker = CircuitBreaker(RATE)
    trip(breaker)
    probe = breaker.allow(at(60))
    breaker.release(at(61), probe)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow(at(61)).verdict is Verdict.PROBE


@pytest.mark.parametrize("kwargs", [
    {"window": 0}, {"min_calls": 0}, {"min_calls": 11}, {"failure_rate": 0.0},
    {"failure_rate": 1.5}, {"first_open_seconds": 0}, {"max_open_seconds": 30},
    {"budget_seconds": -1},
])
def test_a_policy_that_makes_no_sense_is_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        BreakerPolicy(**kwargs)


def test_the_plain_dict_form_round_trips_mid_state() -> None:
    breaker = CircuitBreaker(RATE)
    states = [breaker.as_dict()]
    outcome(breaker, False)
    trip(breaker)
    states.append(breaker.as_dict())
    breaker.allow(at(60))  # half-open, probe in flight
    states.append(breaker.as_dict())
    for state in states:
        again = CircuitBreaker.from_dict(state)
        assert again.as_dict() == state
    half_open = CircuitBreaker.from_dict(states[-1])
    assert half_open == breaker
    assert states[1]["open_until"] == "2030-01-01T00:01:00Z"
    assert half_open.allow(at(70)).verdict is Verdict.WAIT  # its probe is still out


def test_a_dict_of_another_shape_or_an_impossible_state_is_refused() -> None:
    state = CircuitBreaker(RATE).as_dict()
    with pytest.raises(ValueError, match="missing"):
        CircuitBreaker.from_dict({k: v for k, v in state.items() if k != "outcomes"})
    with pytest.raises(ValueError, match="unknown"):
        CircuitBreaker.from_dict({**state, "colour": "red"})
    with pytest.raises(ValueError, match="open_until"):
        CircuitBreaker.from_dict({**state, "state": "open"})
    with pytest.raises(ValueError, match="budget"):
        CircuitBreaker.from_dict({**state, "seconds_open": 99_999.0})


def test_the_summary_has_what_the_progress_document_shows() -> None:
    breaker = CircuitBreaker(RATE)
    trip(breaker)
    assert breaker.summary() == {"state": "open", "opened": 1,
                                 "open_until": "2030-01-01T00:01:00Z", "failure_rate": 1.0,
                                 "seconds_open": 60.0, "gave_up": False}


# -- properties ------------------------------------------------------------------------

policies = st.builds(
    lambda window, min_frac, rate, first, cap, budget: BreakerPolicy(
        window=window, min_calls=max(1, round(window * min_frac)), failure_rate=rate,
        first_open_seconds=first, max_open_seconds=first * cap, budget_seconds=budget),
    st.integers(1, 6), st.floats(0, 1), st.sampled_from([0.25, 0.5, 1.0]),
    st.sampled_from([1.0, 60.0]), st.sampled_from([1, 4, 10]),
    st.sampled_from([0.0, 100.0, 3600.0]))
steps = st.lists(st.tuples(st.sampled_from(["ask", "success", "failure", "release"]),
                           st.integers(0, 7), st.floats(0, 200)), max_size=60)


@settings(max_examples=150, deadline=None)
@given(policies, steps)
def test_never_more_than_one_probe_and_the_dict_form_always_round_trips(
    policy: BreakerPolicy, script: list[tuple[str, int, float]],
) -> None:
    breaker = CircuitBreaker(policy)
    now = T0
    held: list[Decision] = []  # permits handed out, not yet settled
    opened = 0
    for action, pick, advance in script:
        now += timedelta(seconds=advance)
        if action == "ask" or not held:
            decision = breaker.allow(now)
            if decision.verdict is Verdict.WAIT and decision.until is not None:
                assert decision.until > now
            if decision.is_permit:
                held.append(decision)
        else:
            permit = held.pop(pick % len(held))
            if action == "success":
                breaker.record_success(now, permit)
            elif action == "failure":
                breaker.record_failure(now, permit)
            else:
                breaker.release(now, permit)
        probes = sum(p.verdict is Verdict.PROBE for p in held)
        assert probes <= 1 and probes == int(breaker.probe_in_flight)
        assert len(held) - probes == breaker.in_flight
        assert breaker.seconds_open <= policy.budget_seconds
        assert (breaker.state is BreakerState.OPEN) == (breaker.open_until is not None)
        assert breaker.times_opened >= opened
        opened = breaker.times_opened
        if policy.budget_seconds == 0:
            assert breaker.state is BreakerState.CLOSED and not breaker.gave_up
        state = breaker.as_dict()
        assert CircuitBreaker.from_dict(state) == breaker
        assert CircuitBreaker.from_dict(state).as_dict() == state
