"""The Bitcoin pipeline's own instruments (interfaces.md metric definitions live with the
kernel's): heights per second come from the `heights` counter's rate, RPC latency from
the kernel's upstream request histogram, and batch sizes, findings by category here.
The breaker's state is a workflow's, published by it (workflows/btc)."""

from __future__ import annotations

from temporalio.common import MetricMeter


class BtcMetrics:
    def __init__(self, meter: MetricMeter) -> None:
        meter = meter.with_additional_attributes({"pipeline": "btc_reconcile"})
        self._heights = meter.create_counter(
            "pipeworks_btc_heights", "heights ingested or reconciled", "{height}")
        self._batch_heights = meter.create_histogram(
            "pipeworks_btc_batch_heights", "heights per reconciliation batch", "{height}")
        self._batch_weight = meter.create_histogram(
            "pipeworks_btc_batch_weight", "transactions per reconciliation batch", "{tx}")
        self._findings = meter.create_counter(
            "pipeworks_btc_findings", "findings seen by reconciliation batches", "{finding}")

    @classmethod
    def disabled(cls) -> BtcMetrics:
        return cls(MetricMeter.noop)

    def heights(self, stage: str, n: int) -> None:
        self._heights.add(n, {"stage": stage})

    def batch(self, heights: int, weight: int) -> None:
        self._batch_heights.record(heights)
        self._batch_weight.record(weight)

    def findings(self, category: str, n: int) -> None:
        self._findings.add(n, {"category": category})
