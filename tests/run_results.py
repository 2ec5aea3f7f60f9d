"""What every pipeline's tests ask of a finished run."""

from __future__ import annotations

from typing import Any

from temporalio.client import WorkflowFailureError, WorkflowHandle


async def failure_of(handle: WorkflowHandle[Any, Any]) -> BaseException:
    """The cause of a run that must not succeed."""
    try:
        result = await handle.result()
    except WorkflowFailureError as err:
        assert err.cause is not None
        return err.cause
    raise AssertionError(f"the run should not have succeeded: {result}")
