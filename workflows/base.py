"""What every pipeline workflow shares: the `progress` query, the `cancel` signal,
a deadline, activities called by reference with their failures counted by category,
search attributes, alerts, and the saga's compensation (undo from the change log), which
runs to the end whatever is cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import timedelta
from typing import Any, ClassVar, TypeVar

from pydantic import ValidationError
from temporalio import workflow
from temporalio.common import (
    RetryPolicy,
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
)
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.alerts import AlertActivities, RunAlert
    from activities.runs import (
        LeaseRequest,
        RunActivities,
        RunFinished,
        RunStarted,
        UndoRequest,
        UndoResult,
    )
    from pipeworks import search_attributes
    from pipeworks.errors import (
        NON_RETRYABLE_ERROR_TYPES,
        ErrorCategory,
        category_of,
        error_counts_of,
        failure_message,
    )
    from pipeworks.inputs import RunInput, describe_input_error
    from pipeworks.progress import RunProgress
    from workflows.fanout import ItemFailed

T = TypeVar("T")
A = TypeVar("A")
Input = TypeVar("Input", bound="RunInput")

# Transient and system trouble retries with backoff; the categories that can
# never succeed stop at once (the error's own `non_retryable` says so too).
ACTIVITY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30), maximum_attempts=8,
    non_retryable_error_types=NON_RETRYABLE_ERROR_TYPES,
)
# Bookkeeping and compensation must eventually succeed: retry until they do.
PERSISTENT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30), maximum_attempts=0,
)
BOOKKEEPING_TIMEOUT = timedelta(seconds=60)
# A webhook that stays down must not keep a finished run open for long.
ALERT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_attempts=5)
UNDO_TIMEOUT = timedelta(hours=2)


class DeadlineExceeded(Exception):
    pass


class PipelineWorkflow:
    """Subclasses set `self.progress` in their `@workflow.init` and call `guard`.
    `UNDO_TABLES` lists the tables an undo of the pipeline's runs restores, in order."""

    progress: RunProgress
    UNDO_TABLES: ClassVar[Sequence[str]] = ()

    def __init__(self) -> None:
        self._cancel_reason: str | None = None
        self._work: asyncio.Task[Any] | None = None  # the cancellable part of the run
        self._search_attributes: dict[str, str] = {}
        # A run that continues as new: the first run of its chain (its record in
        # `pipeline.runs`), and whether this run goes on in a next one.
        self.chain_run_id: str | None = None
        self.continuing = False

    @workflow.query(name="progress")
    def progress_query(self) -> dict[str, Any]:
        return self.progress.as_dict()

    @workflow.signal(name="cancel")
    def cancel_signal(self, payload: dict[str, Any] | None = None) -> None:
        reason = (payload or {}).get("reason") if isinstance(payload, dict) else None
        if self._cancel_reason is None:
            self._cancel_reason = str(reason) if reason else "cancel signal"
            self.note(f"cancel requested: {self._cancel_reason}")
            if self._work is not None and not self._work.done():
                self._work.cancel()

    @property
    def stopping(self) -> bool:
        return self._cancel_reason is not None

    def note(self, message: str | None = None) -> None:
        self.progress.touch(workflow.now(), message)

    def count_failure(self, err: BaseException) -> ErrorCategory:
        category = category_of(err)
        counts = error_counts_of(err)
        if not counts.get(category.value):  # the failure itself counts at least once
            counts[category.value] = 1
        self.progress.count_errors(counts)
        return category

    async def run_activity(
        self, activity: Callable[[Any, A], Awaitable[T]], arg: A, *, summary: str,
        start_to_close: timedelta, heartbeat_timeout: timedelta | None = None,
        retry_policy: RetryPolicy = ACTIVITY_RETRY,
    ) -> T:
        """Runs an activity (a method of an activity class, called by reference), counting
        its failure by category. Activities that heartbeat are waited for when cancelled,
        so nothing commits after the compensation that follows."""
        cancellation = (ActivityCancellationType.WAIT_CANCELLATION_COMPLETED
                        if heartbeat_timeout else ActivityCancellationType.TRY_CANCEL)
        self.stop_if_cancel_requested()
        try:
            result: T = await workflow.execute_activity_method(
                activity, arg, start_to_close_timeout=start_to_close,
                heartbeat_timeout=heartbeat_timeout, retry_policy=retry_policy,
                summary=summary, cancellation_type=cancellation)
        except Exception as err:
            if not self.is_cancellation(err):
                self.count_failure(err)
            raise
        # What the activity's attempts ran into before succeeding counts too.
        absorbed = getattr(result, "errors", None)
        if isinstance(absorbed, dict):
            self.progress.count_errors(absorbed)
        self.stop_if_cancel_requested()
        return result

    def stop_if_cancel_requested(self) -> None:
        """A cancel (the signal, or Temporal's own) that reaches a task awaiting an
        activity only asks the activity to stop; when the activity finishes anyway, the
        SDK's handle returns its result and the cancellation is gone: the run would go
        on and end `completed`. Checked around every activity and when the work ends,
        it stops the run here instead. Temporal's cancel leaves its mark on the task
        (`cancelling()`); the run's own task is past this point once it compensates."""
        if self._cancel_reason is not None:
            raise asyncio.CancelledError(self._cancel_reason)
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError("cancel request")

    async def guard(self, work: Coroutine[Any, Any, T], deadline_seconds: float | None) -> T:
        """Runs `work` so that a cancel signal or the deadline can stop it."""
        self._work = asyncio.create_task(work)
        if self._cancel_reason is not None:
            self._work.cancel()
        if deadline_seconds is None:
            finished: T = await self._work
            self.stop_if_cancel_requested()
            return finished
        try:
            done, _ = await workflow.wait([self._work], timeout=deadline_seconds)
        except asyncio.CancelledError:
            # Waiting does not pass a cancel on to what it waits for: do it here.
            await self._stop_work()
            raise
        if not done:
            await self._stop_work()
            raise DeadlineExceeded(f"run deadline of {deadline_seconds:g}s exceeded")
        outcome: T = self._work.result()
        self.stop_if_cancel_requested()
        return outcome

    async def _stop_work(self) -> None:
        """Cancel the work and wait until its in-flight activities have ended, so
        that nothing commits after the compensation that follows."""
        assert self._work is not None
        self._work.cancel()
        work = self._work
        await self.shielded(lambda: workflow.wait([work]))

    def is_cancellation(self, err: BaseException) -> bool:
        return self._cancel_reason is not None or is_cancelled_exception(err)

    async def shielded(self, step: Callable[[], Awaitable[T]]) -> T:
        """Compensation and bookkeeping run to the end even if the run is cancelled
        again meanwhile: a half-undone run is worse than a late one."""
        task = asyncio.ensure_future(step())
        while True:
            try:
                return await asyncio.shield(task)
            except asyncio.CancelledError:
                if task.done():
                    return task.result()

    @property
    def record_run_id(self) -> str:
        """The run id of the run's record: a chain of continued runs has one."""
        return self.chain_run_id or workflow.info().run_id

    async def record_started(self, params: dict[str, Any]) -> None:
        info = workflow.info()
        await workflow.execute_activity_method(
            RunActivities.record_run_started,
            RunStarted(info.workflow_id, self.record_run_id, self.progress.pipeline, params),
            start_to_close_timeout=BOOKKEEPING_TIMEOUT, retry_policy=PERSISTENT_RETRY,
            summary="record run start",
        )

    async def record_finished(self, stats: dict[str, Any]) -> None:
        workflow.logger.info("run %s: %s", self.progress.status, self.progress.message or "")
        run = RunFinished(self.record_run_id, self.progress.status,
                          {**self.progress.as_dict(), **stats})
        await self.shielded(lambda: workflow.execute_activity_method(
            RunActivities.record_run_finished, run, start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            retry_policy=PERSISTENT_RETRY, summary=f"record run {self.progress.status}"))

    # -- leases: at most one run writes what a key covers (pipeworks/leases.py) ------

    async def acquire_lease(self, lease: LeaseRequest, summary: str) -> None:
        """Waits until this run holds `lease` (a cancel stops the wait)."""
        await workflow.execute_activity_method(
            RunActivities.acquire_lease, lease,
            start_to_close_timeout=timedelta(hours=24), heartbeat_timeout=timedelta(seconds=30),
            retry_policy=PERSISTENT_RETRY, summary=summary,
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED)

    async def release_lease(self, lease: LeaseRequest, summary: str) -> None:
        """Idempotent, also for a lease never acquired; runs to the end when cancelled."""
        await self.shielded(lambda: workflow.execute_activity_method(
            RunActivities.release_lease, lease,
            start_to_close_timeout=BOOKKEEPING_TIMEOUT, retry_policy=PERSISTENT_RETRY,
            summary=summary))

    # -- search attributes and alerts ------------------------------------------

    def search_attributes_on(self) -> bool:
        """Only runs whose starter set `Pipeline` upsert the others: the starter sets it
        when the namespace has them registered, and upserting an unregistered one would
        fail every workflow task of the run."""
        started_with = workflow.info().typed_search_attributes.get(search_attributes.PIPELINE)
        return started_with is not None

    def set_search_attributes(self, *pairs: tuple[SearchAttributeKey[str], str]) -> None:
        """E.g. `(ORG_ID, "A1")`; unchanged values are not upserted again."""
        changed = [(k, v) for k, v in pairs if self._search_attributes.get(k.name) != v]
        if not changed or not self.search_attributes_on():
            return
        workflow.upsert_search_attributes([key.value_set(value) for key, value in changed])
        self._search_attributes.update({key.name: value for key, value in changed})

    def set_stage(self, stage: str) -> None:
        """The `Stage` search attribute: what the run is doing, then how it ended."""
        self.set_search_attributes((search_attributes.STAGE, stage))

    def child_search_attributes(self, *pairs: tuple[SearchAttributeKey[str], str]
                                ) -> TypedSearchAttributes | None:
        if not self.search_attributes_on():
            return None
        return TypedSearchAttributes([SearchAttributePair(k, v) for k, v in pairs])

    async def alert_if_needed(self, failure: BaseException | None,
                              partly_rolled_back: bool = False) -> None:
        """A failed or rolled-back run posts to the alert webhook (when one is set)."""
        status = self.progress.status
        if not (status in ("failed", "cancelled") or self.progress.rolled_back
                or partly_rolled_back):
            return
        if status == "cancelled":
            category = "cancelled"
        else:
            category = (category_of(failure) if failure is not None
                        else ErrorCategory.PERMANENT).value
        await self.alert(status, category, self.progress.message or "")

    async def alert(self, status: str, category: str, message: str) -> None:
        """Posts to the alert webhook (when one is set): a run that ended badly, or a
        circuit breaker that opened (`status` "breaker_open"). An unreachable webhook
        does not change the run; its message says so."""
        info = workflow.info()
        alert = RunAlert(info.workflow_id, info.run_id, info.workflow_type,
                         self.progress.pipeline, status, self.progress.rolled_back,
                         category, message)
        try:
            await self.shielded(lambda: workflow.execute_activity_method(
                AlertActivities.send_run_alert, alert, start_to_close_timeout=timedelta(seconds=30),
                retry_policy=ALERT_RETRY, summary=f"alert: {status.replace('_', ' ')}"))
        except ActivityError as err:
            # The run's outcome stands and its message keeps the cause; an unreachable
            # webhook is the operator's to see in the worker log and this addition.
            self.progress.message = (f"{self.progress.message or status}; could not post "
                                     f"the alert: {failure_message(err)}")
            self.note()

    # -- the life of a run -------------------------------------------------------

    def validated(self, model: type[Input], params: dict[str, Any]) -> Input:
        """The run's input, or the run fails at once with one message naming the field."""
        try:
            return model.model_validate(params)
        except ValidationError as err:
            raise self.fail_invalid_input(describe_input_error(err)) from None

    async def run_saga(
        self, request: RunInput, work: Callable[[], Coroutine[Any, Any, None]], *,
        undo_runs: Callable[[], Sequence[str]], succeeded: Callable[[], str],
        stats: Callable[[], dict[str, Any]] = dict,
        before_finish: Callable[[], Awaitable[None]] | None = None,
        isolated_cause: Callable[[], BaseException | None] = lambda: None,
    ) -> dict[str, Any]:
        """A run from start to end: recorded in `pipeline.runs`, `work()` under the cancel
        signal and the deadline, then on failure or cancel the changes logged under
        `undo_runs()` undone (newest first), and in every case the `Stage` search
        attribute, the run record and, when it went badly, an alert. `succeeded` sets
        the final status and returns the closing message. Returns the result, or raises
        what ends the run in Temporal's terms."""
        self.progress.status = "running"
        self.note("starting" if self.chain_run_id is None else "going on")
        failure: BaseException | None = None
        try:
            if self.chain_run_id is None:  # a continued run was recorded by the first
                await self.record_started(
                    request.model_dump(mode="json", exclude_none=True,
                                       exclude={"checkpoint"}))
            await self.guard(work(), request.deadline_seconds)
        except (Exception, asyncio.CancelledError) as err:
            self.continuing = False
            # An item's failure ends the run with that failure's category.
            failure = err.cause if isinstance(err, ItemFailed) else err
            runs = list(undo_runs())
            await self.roll_back(err, runs, changed=bool(runs))
        else:
            if not self.continuing:
                self.note(succeeded())
        finally:
            # A run that continues as new leaves its lease (say), the record and the end
            # to the next.
            if before_finish is not None and not self.continuing:
                await before_finish()
            if not self.continuing:
                self.set_stage(self.progress.status)
                await self.record_finished(stats())
                isolated = isolated_cause()
                await self.alert_if_needed(failure or isolated,
                                           partly_rolled_back=isolated is not None)
        if self.continuing:
            return self.progress.as_dict()
        return self.final_outcome(failure)

    # -- the saga: undo from the change log --------------------------------------

    async def undo(self, run_id: str, scope: str | None, reason: str) -> UndoResult:
        """Restores what run `run_id` changed (or only its `scope`) in `UNDO_TABLES`.
        Shielded: it runs to the end even if the run is cancelled meanwhile."""
        request = UndoRequest(run_id, list(self.UNDO_TABLES), scope, reason)
        result: UndoResult = await self.shielded(lambda: workflow.execute_activity_method(
            RunActivities.undo_run_changes, request, start_to_close_timeout=UNDO_TIMEOUT,
            heartbeat_timeout=timedelta(seconds=60), retry_policy=PERSISTENT_RETRY,
            summary=f"undo changes of {'scope ' + scope if scope else 'run ' + run_id}"))
        return result

    async def roll_back(self, err: BaseException, run_ids: Sequence[str], *,
                        changed: bool = True) -> None:
        """The compensation of a failed or cancelled run: undo the changes logged under
        `run_ids` (newest first), mark unfinished stages, and end `failed` or `cancelled`
        with `rolled_back` true. `changed` false: the run changed nothing yet."""
        self.set_stage("compensating")
        self.progress.status = "compensating"
        if self.is_cancellation(err):
            final, reason = "cancelled", f"cancelled: {self._cancel_reason or 'cancel request'}"
            self.note(f"{reason}; undoing changes")
        else:
            # Activity failures were counted where they happened; a deadline is not one.
            if isinstance(err, DeadlineExceeded):
                self.progress.count_error(ErrorCategory.SYSTEM)
            final, reason = "failed", failure_message(err)
            self.note(f"failed: {reason}; undoing changes")
        for stage in self.progress.stages:
            if stage.status in ("running", "pending"):
                stage.status = "failed" if final == "failed" else "skipped"
        for run_id in run_ids:
            await self.undo(run_id, None, reason)
        # Either undone, or nothing had been changed: the tables are as before the run.
        self.progress.rolled_back = True
        self.progress.status = final  # type: ignore[assignment]
        self.note(f"{reason}; " + ("changes rolled back" if changed else "nothing was changed"))

    def fail_invalid_input(self, message: str) -> ApplicationError:
        self.progress.status = "failed"
        self.progress.count_error(ErrorCategory.PERMANENT)
        self.note(message)
        return ApplicationError(message, self.progress.as_dict(), type="InvalidInput",
                                non_retryable=True)

    def final_outcome(self, failure: BaseException | None) -> dict[str, Any]:
        """The result, or the exception that ends the run in Temporal's terms."""
        document = self.progress.as_dict()
        if self.progress.status == "cancelled":
            if self._cancel_reason is None:
                raise asyncio.CancelledError(self.progress.message)
            raise ApplicationError(f"cancelled: {self._cancel_reason}", document,
                                   type="Cancelled", non_retryable=True)
        if self.progress.status == "failed":
            assert failure is not None
            category = category_of(failure)
            raise ApplicationError(self.progress.message or failure_message(failure), document,
                                   type=category.error_type, non_retryable=True)
        return document
