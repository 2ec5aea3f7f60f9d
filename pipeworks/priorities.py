"""Task-queue priorities: lower keys are matched first (Temporal's range is 1-5,
default 3), and a run's activities and children inherit its priority. A person waiting
for one account's sync goes ahead of batch and scheduled work in the same queue."""

from __future__ import annotations

from temporalio.common import Priority

ON_DEMAND = Priority(priority_key=1)
BATCH = Priority(priority_key=4)
