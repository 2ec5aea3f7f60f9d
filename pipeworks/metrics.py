"""Pipeline metrics, recorded through the Temporal SDK's metric meter so that one
Prometheus endpoint per worker serves both the SDK's runtime metrics and ours.

Exported names (Prometheus, with the SDK's `_total` and `_seconds` suffixes):
see `EXPORTED`. Every series carries `pipeline`; per-stream series carry `stage`.
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import timedelta

from temporalio.common import MetricMeter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

# As the Prometheus exporter names them; the Grafana dashboard and tests use these.
RECORDS_FETCHED = "pipeworks_records_fetched_total"
RECORDS_STAGED = "pipeworks_records_staged_total"
RECORDS_INVALID = "pipeworks_records_invalid_total"
UPSTREAM_REQUESTS = "pipeworks_upstream_requests_total"
UPSTREAM_REQUEST_DURATION = "pipeworks_upstream_request_duration_seconds"
RETRIES = "pipeworks_retries_total"
STAGE_DURATION = "pipeworks_stage_duration_seconds"
RUNS = "pipeworks_runs_total"
# The stream an activity is working on (its entity, e.g. "readings"), so that code
# deep below it (the HTTP client, the error interceptor) labels what it records.
current_stage: ContextVar[str] = ContextVar("pipeworks_stage", default="")

EXPORTED = (RECORDS_FETCHED, RECORDS_STAGED, RECORDS_INVALID, UPSTREAM_REQUESTS,
            UPSTREAM_REQUEST_DURATION, RETRIES, STAGE_DURATION, RUNS)


# The SDK's default buckets (50 ms to 10 s) cannot tell a 5 ms request from a 40 ms one.
HISTOGRAM_BUCKETS = {
    "pipeworks_upstream_request_duration": [
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    "pipeworks_stage_duration": [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
}


def _base(exported: str) -> str:
    return exported.removesuffix("_total").removesuffix("_seconds")


def status_class(status: int | None) -> str:
    """`2xx`..`5xx`, or `error` when no response came back (timeout, reset)."""
    return f"{status // 100}xx" if status is not None else "error"


def metrics_runtime(bind_address: str) -> Runtime:
    """A Temporal runtime whose Prometheus exporter listens on `bind_address`."""
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(
        bind_address=bind_address, counters_total_suffix=True, unit_suffix=True,
        durations_as_seconds=True, histogram_bucket_overrides=HISTOGRAM_BUCKETS)))


class PipelineMetrics:
    """The pipeline's instruments on one meter; a no-op meter when metrics are off."""

    def __init__(self, meter: MetricMeter, pipeline: str) -> None:
        meter = meter.with_additional_attributes({"pipeline": pipeline})
        self._fetched = meter.create_counter(
            _base(RECORDS_FETCHED), "Records landed from the upstream", "records")
        self._staged = meter.create_counter(
            _base(RECORDS_STAGED), "Records merged into typed tables", "records")
        self._invalid = meter.create_counter(
            _base(RECORDS_INVALID), "Records dead-lettered as invalid", "records")
        self._requests = meter.create_counter(
            _base(UPSTREAM_REQUESTS), "Upstream HTTP requests by status class", "requests")
        self._request_duration = meter.create_histogram_timedelta(
            _base(UPSTREAM_REQUEST_DURATION), "Upstream HTTP request latency", "duration")
        self._retries = meter.create_counter(
            _base(RETRIES), "Retried failures by error category", "retries")
        self._stage_duration = meter.create_histogram_timedelta(
            _base(STAGE_DURATION), "Duration of one fetch or stage step", "duration")
        self._runs = meter.create_counter(_base(RUNS), "Finished runs by final status", "runs")

    @classmethod
    def disabled(cls, pipeline: str = "none") -> PipelineMetrics:
        return cls(MetricMeter.noop, pipeline)

    def records_fetched(self, stage: str, n: int) -> None:
        self._fetched.add(n, {"stage": stage})

    def records_staged(self, stage: str, n: int) -> None:
        self._staged.add(n, {"stage": stage})

    def records_invalid(self, stage: str, n: int) -> None:
        self._invalid.add(n, {"stage": stage})

    def upstream_request(self, stage: str, status: int | None, seconds: float) -> None:
        self._requests.add(1, {"stage": stage, "status_class": status_class(status)})
        self._request_duration.record(timedelta(seconds=seconds), {"stage": stage})

    def retry(self, stage: str, category: str) -> None:
        self._retries.add(1, {"stage": stage, "category": category})

    def step_duration(self, stage: str, step: str, seconds: float) -> None:
        self._stage_duration.record(timedelta(seconds=seconds), {"stage": stage, "step": step})

    def run_finished(self, status: str) -> None:
        self._runs.add(1, {"status": status})
