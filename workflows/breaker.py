"""Circuit breakers for workflow code: one `CircuitBreaker` per upstream, waited out on
durable timers, so an upstream that is down gets no calls at all from the run while
it is open, and the run outlasts outages up to a time budget.

Deterministic: the only clock is `workflow.now()`, the only waiting `workflow.sleep`
and `workflow.wait_condition`.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from pipeworks.breaker import (
        BreakerPolicy,
        BreakerState,
        CircuitBreaker,
        Decision,
        Verdict,
    )
    from pipeworks.errors import ErrorCategory, failure_message

T = TypeVar("T")


class BreakerGaveUp(ApplicationError):
    """A call refused without being tried: its breaker has spent its budget. Typed as
    a transient error, as an upstream that stayed down is transient trouble."""

    def __init__(self, name: str, last_error: BaseException | None) -> None:
        cause = f": {failure_message(last_error)}" if last_error is not None else ""
        super().__init__(f"gave up on {name}: unavailable longer than its budget{cause}",
                         {"breaker": name}, type=ErrorCategory.TRANSIENT.error_type,
                         non_retryable=True)


class BreakerGuard:
    """Runs idempotent steps through per-name circuit breakers.

    A step failure for which `is_breaker_failure` is true (e.g. a transient error
    after the activity's own retries are spent) is an outcome the breaker counts.
    When the breaker is open after it (this failure opened it, or others did while
    the step ran) the failure is put down to an outage: the step is tried again once
    the breaker lets calls through, and the caller never sees it. A counted failure
    that leaves the breaker closed (the upstream works for the other calls) propagates,
    as does the failure that would open it beyond its budget. Other failures propagate
    without counting; cancellation never counts.
    """

    def __init__(self, policy: BreakerPolicy | None = None, *,
                 policies: Mapping[str, BreakerPolicy] | None = None,
                 publish: Callable[[dict[str, Any]], None] | None = None) -> None:
        """`policies` per name, `policy` for the others; `publish` gets `snapshot()`
        after every change (e.g. into the progress document's extra sections)."""
        self._policy = policy or BreakerPolicy()
        self._policies = dict(policies or {})
        self._publish = publish
        self._breakers: dict[str, CircuitBreaker] = {}
        self._last_error: dict[str, BaseException] = {}
        self._calls = 0  # calls under way: restoring under them would strand their permits

    def breaker(self, name: str) -> CircuitBreaker:
        found = self._breakers.get(name)
        if found is None:
            found = CircuitBreaker(self._policies.get(name, self._policy))
            self._breakers[name] = found
        return found

    async def call(
        self, name: str, step: Callable[[], Awaitable[T]], *,
        is_breaker_failure: Callable[[BaseException], bool],
        on_open: Callable[[str, CircuitBreaker], Awaitable[None]] | None = None,
    ) -> T:
        """`step` must be safe to run again: an outage makes it run more than once."""
        breaker = self.breaker(name)
        self._calls += 1
        try:
            while True:
                permit = await self._permit(name, breaker)
                try:
                    result = await step()
                except BaseException as err:
                    if not self._counts(err, is_breaker_failure):
                        breaker.release(workflow.now(), permit)
                        self._changed()
                        raise
                    opened = breaker.record_failure(workflow.now(), permit)
                    self._last_error[name] = err
                    self._changed()
                    if opened and on_open is not None:
                        await on_open(name, breaker)
                    if breaker.gave_up or not self._outage(breaker, permit):
                        raise
                    continue
                breaker.record_success(workflow.now(), permit)
                self._changed()
                return result
        finally:
            self._calls -= 1

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Per name: state, times opened, open_until (RFC 3339 or None), failure rate,
        seconds of the budget spent, whether it gave up. For the progress document."""
        return {name: self._breakers[name].summary() for name in sorted(self._breakers)}

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """The whole state, for continue-as-new (`restore` takes it back)."""
        return {name: self._breakers[name].as_dict() for name in sorted(self._breakers)}

    def restore(self, state: Mapping[str, Mapping[str, Any]]) -> None:
        """Takes back `as_dict()` from an earlier run. Each breaker keeps the policy it
        was carried with (its counts were made under it)."""
        if self._calls:
            raise RuntimeError("restore a breaker guard before its first call, not during one")
        restored = {name: CircuitBreaker.from_dict(data) for name, data in state.items()}
        for breaker in restored.values():
            breaker.forget_permits()  # their calls ended with the earlier run
        self._breakers = restored
        self._last_error.clear()
        self._changed()

    # -- inside -----------------------------------------------------------------------

    async def _permit(self, name: str, breaker: CircuitBreaker) -> Decision:
        while True:
            decision = breaker.allow(workflow.now())
            self._changed()  # `allow` may turn an open breaker half-open
            if decision.is_permit:
                return decision
            if decision.verdict is Verdict.GIVE_UP:
                raise BreakerGaveUp(name, self._last_error.get(name))
            if decision.until is None:
                # Half-open: one probe is out; the others learn its outcome first.
                await workflow.wait_condition(lambda: not breaker.probe_in_flight)
                continue
            delay = (decision.until - workflow.now()).total_seconds()
            # A durable timer: the run holds no worker while it waits. Whole
            # milliseconds, as Temporal's timers have no finer resolution.
            await workflow.sleep(math.ceil(delay * 1000) / 1000,
                                 summary=f"{name}: circuit open")

    @staticmethod
    def _counts(err: BaseException, is_breaker_failure: Callable[[BaseException], bool]
                ) -> bool:
        if not isinstance(err, Exception) or is_cancelled_exception(err):
            return False
        return is_breaker_failure(err)

    @staticmethod
    def _outage(breaker: CircuitBreaker, permit: Decision) -> bool:
        """Is the failure put down to an outage? Yes when the breaker is not closed, or
        when it opened while the step ran (the step met that outage, even if the
        breaker has recovered since)."""
        return breaker.state is not BreakerState.CLOSED or not breaker.is_current(permit)

    def _changed(self) -> None:
        if self._publish is not None:
            self._publish(self.snapshot())
