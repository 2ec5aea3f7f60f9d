"""Continue-as-new with a checkpoint, and the breaker guard inside real workflows, on
the time-skipping test server: durable timers pass in virtual time."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    import pytest
    import pytest_asyncio
    from pydantic import BaseModel, ConfigDict
    from temporalio.api.enums.v1 import EventType
    from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Worker

    from pipeworks.breaker import BreakerPolicy, CircuitBreaker
    from pipeworks.errors import ErrorCategory, category_of
    from pipeworks.progress import RunProgress
    from workflows.breaker import BreakerGaveUp, BreakerGuard
    from workflows.checkpoint import (
        Checkpoint,
        checkpoint_of,
        continue_with,
        should_continue,
        with_checkpoint,
    )

T0 = datetime(2030, 1, 1, tzinfo=UTC)

# -- the pieces on their own ------------------------------------------------------------


class ModelInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    total: int
    every: int
    since: datetime | None = None
    checkpoint: dict[str, Any] | None = None


class ModelWithoutField(BaseModel):
    total: int


@dataclass
class DataclassInput:
    total: int
    every: int
    checkpoint: Checkpoint | None = None


@dataclass
class DataclassDictInput:
    total: int
    checkpoint: dict[str, Any] | None = None


def test_should_continue_every_n_units_or_when_temporal_suggests() -> None:
    assert [should_continue(3, n, suggested=False) for n in range(7)] == [
        False, False, False, True, False, False, True]
    assert not should_continue(None, 5, suggested=False)
    assert not should_continue(0, 5, suggested=False)
    assert should_continue(None, 1, suggested=True)


def test_the_checkpoint_travels_in_a_dict_a_model_or_a_dataclass() -> None:
    checkpoint = Checkpoint(cursor={"page": 3}, progress=None, state={"x": 1}, runs=1)
    as_dict = with_checkpoint({"total": 9}, checkpoint)
    assert as_dict == {"total": 9, "checkpoint": checkpoint.as_dict()}
    assert checkpoint_of(as_dict) == checkpoint

    model = ModelInput(total=9, every=2, since=T0)
    carried = with_checkpoint(model, checkpoint)
    assert carried["since"] == "2030-01-01T00:00:00Z"  # JSON-ready for the converter
    assert checkpoint_of(ModelInput.model_validate(carried)) == checkpoint
    assert checkpoint_of(model) is None

    assert checkpoint_of(with_checkpoint(DataclassInput(9, 2), checkpoint)) == checkpoint
    plain = with_checkpoint(DataclassDictInput(9), checkpoint)
    assert plain.checkpoint == checkpoint.as_dict()  # as its field declares
    assert checkpoint_of(plain) == checkpoint


def test_an_input_without_a_checkpoint_field_is_refused_before_continuing() -> None:
    with pytest.raises(TypeError, match="no field"):
        with_checkpoint(ModelWithoutField(total=1), Checkpoint())
    with pytest.raises(TypeError, match="cannot carry"):
        with_checkpoint(["a list"], Checkpoint())
    with pytest.raises(ValueError, match="unknown"):
        Checkpoint.from_dict({"cursor": 1, "curser": 2})
    with pytest.raises(TypeError, match="not a checkpoint"):
        checkpoint_of({"checkpoint": 42})


def test_then_counts_the_continuation_and_takes_the_progress() -> None:
    progress = RunProgress.new("wf", "demo", ["a"], T0)
    progress.stage("a").done = 2
    first = Checkpoint()
    second = first.then(cursor=2, progress=progress, state={"k": "v"})
    assert (second.cursor, second.runs, second.state) == (2, 1, {"k": "v"})
    restored = second.restore_progress()
    assert restored is not None and restored.as_dict() == progress.as_dict()
    assert second.then(cursor=4).progress == second.progress


# -- on a time-skipping server ----------------------------------------------------------

ONCE = RetryPolicy(maximum_attempts=1)  # as if the activity's own retries were spent
FAILURES: dict[str, int] = {}  # per key: how many more calls fail


@activity.defn
async def flaky(key: str) -> str:
    if FAILURES.get(key, 0) > 0:
        FAILURES[key] -= 1
        raise ApplicationError("upstream unavailable", type="TransientError")
    if key.startswith("refuses"):
        raise ApplicationError("no such thing", type="PermanentError", non_retryable=True)
    return "ok"


def transient(err: BaseException) -> bool:
    return category_of(err) is ErrorCategory.TRANSIENT


@dataclass
class GuardedInput:
    key: str
    callers: int = 1
    budget_seconds: float = 3600.0


@workflow.defn
class GuardedWorkflow:
    @workflow.init
    def __init__(self, params: GuardedInput) -> None:
        self.progress = RunProgress.new(workflow.info().workflow_id, "guarded", ["calls"],
                                        workflow.now())
        self.guard = BreakerGuard(
            BreakerPolicy.on_first_failure(budget_seconds=params.budget_seconds),
            publish=lambda snapshot: self.progress.publish("breakers", snapshot))
        self.openings: list[float] = []

    @workflow.query(name="progress")
    def progress_query(self) -> dict[str, Any]:
        return self.progress.as_dict()

    @workflow.run
    async def run(self, params: GuardedInput) -> dict[str, Any]:
        started = workflow.now()

        async def on_open(name: str, breaker: CircuitBreaker) -> None:
            self.openings.append((workflow.now() - started).total_seconds())
            self.progress.touch(workflow.now(), f"{name}: open until {breaker.open_until}")

        async def one() -> str:
            return await self.guard.call(
                "upstream",
                lambda: workflow.execute_activity(
                    flaky, params.key, start_to_close_timeout=timedelta(seconds=10),
                    retry_policy=ONCE),
                is_breaker_failure=transient, on_open=on_open)

        results = await asyncio.gather(*(one() for _ in range(params.callers)))
        return {"results": list(results), "openings": self.openings,
                "waited": (workflow.now() - started).total_seconds(),
                "breakers": self.guard.snapshot()}


class CountInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    total: int
    every: int
    checkpoint: dict[str, Any] | None = None


@workflow.defn
class CountingWorkflow:
    """Counts to `total`, continuing as new every `every` units (input as a dict,
    validated into a pydantic model, as the project's workflows do)."""

    @workflow.run
    async def run(self, params: dict[str, Any]) -> dict[str, Any]:
        return await count(CountInput.model_validate(params))


@workflow.defn
class CountingDataclassWorkflow:
    @workflow.run
    async def run(self, params: DataclassInput) -> dict[str, Any]:
        return await count(params)


async def count(params: CountInput | DataclassInput) -> dict[str, Any]:
    checkpoint = checkpoint_of(params) or Checkpoint()
    progress = checkpoint.restore_progress() or RunProgress.new(
        workflow.info().workflow_id, "counting", ["count"], workflow.now())
    progress.status = "running"
    guard = BreakerGuard()
    guard.restore(checkpoint.state.get("breakers", {}))
    guard.breaker(f"run-{checkpoint.runs}")  # every run leaves a trace in the state
    stage = progress.stage("count")
    stage.status, stage.total = "running", params.total
    cursor: int = checkpoint.cursor or 0
    done_here = 0
    while cursor < params.total:
        cursor += 1
        done_here += 1
        stage.done += 1
        stage.records.add(fetched=10)
        progress.touch(workflow.now(), f"counted to {cursor}")
        if cursor < params.total and should_continue(params.every, done_here):
            await continue_with(checkpoint.then(cursor, progress, {"breakers": guard.as_dict()}),
                                params)
    stage.status, progress.status = "done", "completed"
    return {"cursor": cursor, "runs": checkpoint.runs, "progress": progress.as_dict(),
            "breakers": sorted(guard.as_dict()),
            "continued": workflow.info().run_id != workflow.info().first_execution_run_id}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def client(skipping_env: WorkflowEnvironment) -> AsyncIterator[Client]:
    # One worker for the module: starting one checks every workflow in the sandbox.
    async with Worker(skipping_env.client, task_queue=TASK_QUEUE,
                      workflows=[GuardedWorkflow, CountingWorkflow, CountingDataclassWorkflow],
                      activities=[flaky]):
        yield skipping_env.client


TASK_QUEUE = f"kernel-{uuid.uuid4().hex[:8]}"


async def guarded(client: Client, key: str, failures: int, **options: Any
                  ) -> WorkflowHandle[Any, Any]:
    FAILURES[key] = failures
    return await client.start_workflow(GuardedWorkflow.run, GuardedInput(key, **options),
                                       id=f"guarded-{key}", task_queue=TASK_QUEUE)


async def activity_events(handle: WorkflowHandle[Any, Any]) -> list[str]:
    short = {EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: "scheduled",
             EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "completed",
             EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: "failed",
             EventType.EVENT_TYPE_TIMER_STARTED: "timer"}
    history = await handle.fetch_history()
    return [short[e.event_type] for e in history.events if e.event_type in short]


async def test_an_outage_opens_the_breaker_waits_on_timers_and_a_probe_closes_it(
    client: Client,
) -> None:
    wall = time.monotonic()
    handle = await guarded(client, "outage", failures=2)
    result = await handle.result()
    assert result["results"] == ["ok"]
    # Opened at once (60 s), the first probe failed (120 s), the second succeeded.
    first, second = result["openings"]  # (the activities take a little real time)
    assert first < 5 and 60 <= second - first < 65
    assert result["waited"] >= 180
    assert result["breakers"]["upstream"] == {
        "state": "closed", "opened": 2, "open_until": None, "failure_rate": 0.0,
        "seconds_open": 180.0, "gave_up": False}
    assert await activity_events(handle) == [
        "scheduled", "failed", "timer", "scheduled", "failed", "timer", "scheduled",
        "completed"]
    assert time.monotonic() - wall < 10  # the 3 minutes passed in virtual time
    progress = await handle.query("progress")
    assert progress["breakers"]["upstream"]["state"] == "closed"


async def test_while_half_open_only_one_probe_goes_out(client: Client) -> None:
    # Three callers, all failing at first: the first failure opens the breaker and the
    # others (their calls were already out) wait with it. Then one probe alone; only
    # once it succeeded do the other two go.
    handle = await guarded(client, "crowd", failures=3, callers=3)
    result = await handle.result()
    assert result["results"] == ["ok"] * 3 and len(result["openings"]) == 1
    events = await activity_events(handle)
    assert events.count("timer") == 3  # each waiting caller has its own
    assert [e for e in events if e != "timer"] == ["scheduled"] * 3 + ["failed"] * 3 + [
        "scheduled", "completed", "scheduled", "scheduled", "completed", "completed"]


async def test_past_the_budget_the_last_error_propagates(client: Client) -> None:
    handle = await guarded(client, "down", failures=100, budget_seconds=200)
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    cause = failure.value.cause
    assert isinstance(cause, ActivityError) and not isinstance(cause, BreakerGaveUp)
    assert isinstance(cause.cause, ApplicationError) and cause.cause.type == "TransientError"
    # 60 + 120 s of the 200 s spent; 240 s more would pass it: gave up after 3 calls.
    assert FAILURES["down"] == 97
    assert (await activity_events(handle)).count("timer") == 2
    progress = await handle.query("progress")
    assert progress["breakers"]["upstream"] == {
        "state": "half_open", "opened": 2, "open_until": None, "failure_rate": 1.0,
        "seconds_open": 180.0, "gave_up": True}


async def test_a_failure_that_is_not_the_breakers_propagates_uncounted(client: Client) -> None:
    handle = await guarded(client, "refuses-1", failures=0)
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert category_of(failure.value.cause) is ErrorCategory.PERMANENT
    progress = await handle.query("progress")
    assert progress["breakers"]["upstream"]["opened"] == 0
    assert progress["breakers"]["upstream"]["failure_rate"] == 0.0


@pytest.mark.parametrize("workflow_run", [CountingWorkflow.run, CountingDataclassWorkflow.run])
async def test_continues_as_new_twice_carrying_cursor_progress_and_state(
    client: Client, workflow_run: Any,
) -> None:
    arg: Any = ({"total": 6, "every": 2} if workflow_run is CountingWorkflow.run
                else DataclassInput(total=6, every=2))
    handle = await client.start_workflow(workflow_run, arg, id=f"count-{uuid.uuid4().hex[:8]}",
                                         task_queue=TASK_QUEUE)
    result = await handle.result()  # follows the runs continue-as-new started
    assert result["cursor"] == 6 and result["runs"] == 2 and result["continued"] is True
    progress = result["progress"]
    assert progress["status"] == "completed" and progress["percent"] == 100.0
    assert progress["stages"][0]["done"] == 6 and progress["records"]["fetched"] == 60
    assert progress["workflow_id"] == handle.id
    assert RunProgress.from_dict(progress).as_dict() == progress
    assert result["breakers"] == ["run-0", "run-1", "run-2"]
