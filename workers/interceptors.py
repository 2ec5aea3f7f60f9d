"""What the worker does around every activity: bind the log context (workflow id, run
id, activity), keep the health state's in-flight count, count retried failures."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError, is_cancelled_exception
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from pipeworks.errors import category_of
from pipeworks.metrics import PipelineMetrics, current_stage
from workers.health import WorkerState


class ActivityObserver(Interceptor):
    """`metrics_by_activity` labels an activity's retries with its pipeline; the kernel's
    own activities (run records, undo, alerts) count under `kernel_metrics`."""

    def __init__(self, state: WorkerState, metrics_by_activity: Mapping[str, PipelineMetrics],
                 kernel_metrics: PipelineMetrics) -> None:
        self._state = state
        self._metrics_by_activity = metrics_by_activity
        self._kernel_metrics = kernel_metrics

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ObservedActivity(next, self._state, self._metrics_by_activity,
                                 self._kernel_metrics)


class _ObservedActivity(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, state: WorkerState,
                 metrics_by_activity: Mapping[str, PipelineMetrics],
                 kernel_metrics: PipelineMetrics) -> None:
        super().__init__(next)
        self._state = state
        self._metrics_by_activity = metrics_by_activity
        self._kernel_metrics = kernel_metrics

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        structlog.contextvars.bind_contextvars(
            workflow_id=info.workflow_id, run_id=info.workflow_run_id,
            activity=info.activity_type, attempt=info.attempt)
        self._state.activity_started()
        try:
            return await self.next.execute_activity(input)
        except ApplicationError as err:
            if will_be_retried(info, err):
                metrics = self._metrics_by_activity.get(info.activity_type, self._kernel_metrics)
                metrics.retry(current_stage.get() or info.activity_type,
                                    category_of(err).value)
            raise
        finally:
            self._state.activity_finished()


def will_be_retried(info: activity.Info, err: ApplicationError) -> bool:
    """Whether Temporal schedules another attempt after this failure (timeouts, which
    the worker never sees, are not counted here)."""
    if err.non_retryable or is_cancelled_exception(err):
        return False
    policy = info.retry_policy
    if policy is not None and err.type in (policy.non_retryable_error_types or ()):
        return False
    return policy is None or not policy.maximum_attempts or \
        info.attempt < policy.maximum_attempts
