"""Continue-as-new with a checkpoint: a long run goes on in a fresh run (a fresh,
short history) and takes along where it got to (`cursor`), its `progress` document
and any other state (breakers, controllers...), in an optional field of its input.

    checkpoint = checkpoint_of(params)          # None in the first run
    ... work from checkpoint.cursor, batch by batch ...
    if should_continue(EVERY, batches_this_run):
        await continue_with(Checkpoint(cursor, progress.as_dict(), {...}, runs + 1), params)

The input may be a dict, a pydantic model or a dataclass; for the last two it must
declare the field (e.g. `checkpoint: dict[str, Any] | None = None`), so that a
model forbidding extra fields still accepts the next run's input.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from pipeworks.progress import RunProgress

CHECKPOINT_FIELD = "checkpoint"


@dataclass
class Checkpoint:
    """Everything must be JSON-like: it travels as the next run's input."""

    cursor: Any = None
    progress: dict[str, Any] | None = None  # a `RunProgress.as_dict()`
    state: dict[str, Any] = field(default_factory=dict)
    runs: int = 0  # continuations so far: 0 in the first run

    def as_dict(self) -> dict[str, Any]:
        return {"cursor": self.cursor, "progress": self.progress, "state": self.state,
                "runs": self.runs}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Checkpoint:
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"not a checkpoint: unknown {sorted(unknown)}")
        return cls(cursor=data.get("cursor"), progress=data.get("progress"),
                   state=dict(data.get("state") or {}), runs=int(data.get("runs", 0)))

    def restore_progress(self) -> RunProgress | None:
        return None if self.progress is None else RunProgress.from_dict(self.progress)

    def then(self, cursor: Any, progress: RunProgress | None = None,
             state: Mapping[str, Any] | None = None) -> Checkpoint:
        """The checkpoint for the next run: one continuation more."""
        return Checkpoint(cursor=cursor,
                          progress=progress.as_dict() if progress is not None else self.progress,
                          state=dict(state) if state is not None else dict(self.state),
                          runs=self.runs + 1)


def checkpoint_of(params: Any, name: str = CHECKPOINT_FIELD) -> Checkpoint | None:
    """The checkpoint an input carries, whichever form the converter gave it back in."""
    value = params.get(name) if isinstance(params, Mapping) else getattr(params, name, None)
    if value is None or isinstance(value, Checkpoint):
        return value
    if isinstance(value, Mapping):
        return Checkpoint.from_dict(value)
    raise TypeError(f"{name} is a {type(value).__name__}, not a checkpoint")


def should_continue(every: int | None, done: int, *, suggested: bool | None = None) -> bool:
    """True after every `every` units of work (`done` counts them, checked after each
    one), or when Temporal suggests it (the history grows large). `suggested` None
    asks `workflow.info()`: only inside a workflow."""
    if suggested is None:
        suggested = workflow.info().is_continue_as_new_suggested()
    if suggested:
        return True
    return every is not None and every > 0 and done > 0 and done % every == 0


def with_checkpoint(params: Any, checkpoint: Checkpoint, name: str = CHECKPOINT_FIELD) -> Any:
    """The next run's input: `params` with `checkpoint` in its field `name`."""
    if isinstance(params, Mapping):
        return {**params, name: checkpoint.as_dict()}
    if isinstance(params, BaseModel):
        if name not in type(params).model_fields:
            raise TypeError(f"{type(params).__name__} has no field {name!r} for the checkpoint")
        # JSON-ready, so the default data converter carries it and the next run
        # validates it back into the model.
        return {**params.model_dump(mode="json"), name: checkpoint.as_dict()}
    if dataclasses.is_dataclass(params) and not isinstance(params, type):
        declared = {f.name: f.type for f in dataclasses.fields(params)}
        if name not in declared:
            raise TypeError(f"{type(params).__name__} has no field {name!r} for the checkpoint")
        # As declared: a `Checkpoint` field gets one, a dict field the plain dict.
        carried = checkpoint if "Checkpoint" in str(declared[name]) else checkpoint.as_dict()
        return dataclasses.replace(params, **{name: carried})
    raise TypeError(f"cannot carry a checkpoint in a {type(params).__name__} input")


async def continue_with(checkpoint: Checkpoint, params: Any,
                        name: str = CHECKPOINT_FIELD) -> NoReturn:
    """Ends this run and goes on in a new one with `params` + `checkpoint`. Signal and
    update handlers finish first, so that nothing they do is lost."""
    next_input = with_checkpoint(params, checkpoint, name)
    await workflow.wait_condition(workflow.all_handlers_finished)
    workflow.continue_as_new(next_input)


@dataclass
class Restored:
    """What `restore` found in a run's input."""

    checkpoint: Checkpoint  # an empty one in a chain's first run
    progress: RunProgress | None  # the progress carried over, if any
    error: str | None = None  # a malformed checkpoint, for `run` to fail with


def restore(params: Any, read_state: Callable[[Checkpoint], None]) -> Restored:
    """For a workflow's `@workflow.init`: the checkpoint its input carries, with
    `read_state` taking the workflow's own state from it. A malformed checkpoint is not
    raised here (it would fail the workflow task again and again): `error` says what
    is wrong, and `run` fails the run with it."""
    try:
        checkpoint = checkpoint_of(params) if isinstance(params, Mapping) else None
        progress = checkpoint.restore_progress() if checkpoint is not None else None
        if checkpoint is not None:
            read_state(checkpoint)
    except (KeyError, TypeError, ValueError) as err:
        return Restored(Checkpoint(), None, f"invalid input: checkpoint: {err}")
    return Restored(checkpoint or Checkpoint(), progress)
