"""Where a worker's CPU goes: py-spy samples the worker processes during a run, and each
sample is put in one category by the frames on its stack.

py-spy (a benchmark extra) samples a running process from outside, at `RATE` samples
per second, without slowing it down the way cProfile does: the timings of a sampled run
still count. Only samples of a thread that is running count (py-spy leaves idle ones
out), so `samples / RATE` is CPU seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

RATE = 250  # samples per second

# (category, pattern on one frame "function (file:line)"). A sample goes to the category
# of the frame nearest its leaf that matches a rule of the first list; failing that, to
# the first rule of the second list that any of its frames matches (what the code was
# doing, when the leaf is a library several parts use, e.g. asyncpg under landing).
LEAF_RULES: list[tuple[str, str]] = [
    ("JSON parsing", r"json/decoder|orjson|\bloads \(json|msgspec"),
    ("validation (pydantic)", r"pydantic"),
    ("logging", r"structlog|/logging/__init__|pipeworks/logging"),
    ("metrics", r"prometheus|opentelemetry|pipeworks/metrics"),
    ("workflow tasks (sandbox, replay)", r"temporalio/worker/workflow_sandbox"),
]
CONTEXT_RULES: list[tuple[str, str]] = [
    ("landing pages", r"land_page \(|begin_load|finish_load"),
    ("reading landed pages back", r"landed_load|landed_bodies"),
    ("merge + change log (SQL, client side)", r"merge_rows|pipeworks/merge"),
    ("staging (dedup, verdicts, bookkeeping)", r"stage_load|pipeworks/staging|stagers"),
    ("run bookkeeping (runs, leases)", r"pipeworks/(runs|leases)|activities/run"),
    ("HTTP client (httpx)", r"httpx|httpcore|h11|pipeworks/http|pagination"),
    ("workflow tasks (sandbox, replay)", r"temporalio/worker/_workflow|temporalio/workflow"),
    ("activity overhead (Temporal SDK)", r"temporalio/"),
    ("Postgres client (asyncpg, other)", r"asyncpg"),
    ("event loop", r"asyncio/|selectors|uvloop"),
]
OTHER = "other"


def available() -> str | None:
    """The py-spy executable, or None when it is not installed (`pip install .[bench]`)."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


@contextlib.asynccontextmanager
async def sampled(pids: Sequence[int], out_dir: Path, name: str) -> AsyncIterator[list[Path]]:
    """py-spy records each of `pids` (and its subprocesses) while the block runs; yields
    the raw (collapsed stack) files, written when the block ends."""
    executable = available()
    if executable is None:
        raise RuntimeError("py-spy is not installed: pip install -e '.[bench]'")
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    files = [out_dir / f"{name}-{pid}.txt" for pid in pids]
    recorders = [
        await asyncio.create_subprocess_exec(
            executable, "record", "--pid", str(pid), "--rate", str(RATE), "--format", "raw",
            "--output", str(path), "--nonblocking", "--subprocesses",
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for pid, path in zip(pids, files, strict=True)]
    await asyncio.sleep(0.5)  # py-spy attaches before the run starts
    try:
        yield files
    finally:
        for recorder in recorders:
            with contextlib.suppress(ProcessLookupError):
                recorder.send_signal(signal.SIGINT)  # py-spy writes its file and exits
        for recorder in recorders:
            try:
                await asyncio.wait_for(recorder.wait(), 30)
            except TimeoutError:
                recorder.kill()
                await recorder.wait()


NATIVE = "no Python frame (native threads: Temporal's Rust core)"


def _category(frames: list[str]) -> str:
    if not frames:  # a thread py-spy saw running with no Python frame on it
        return NATIVE
    for frame in reversed(frames):
        for category, pattern in LEAF_RULES:
            if re.search(pattern, frame):
                return category
    for category, pattern in CONTEXT_RULES:  # in the list's order: the first rule wins
        if any(re.search(pattern, frame) for frame in frames):
            return category
    return OTHER


def categorised(files: Sequence[Path]) -> dict[str, float]:
    """CPU seconds per category over the raw py-spy files, largest first."""
    samples: Counter[str] = Counter()
    for path in files:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            # py-spy's raw format: "thread;frame;frame;...;leaf count", root first.
            samples[_category(stack.split(";")[1:])] += int(count)
    return {category: n / RATE for category, n in samples.most_common()}


def top_frames(files: Sequence[Path], limit: int = 25) -> list[tuple[str, float]]:
    """The leaf frames that took the most CPU seconds (what to look at next)."""
    leaves: Counter[str] = Counter()
    for path in files:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if count.isdigit():
                leaves[stack.split(";")[-1]] += int(count)
    return [(frame, n / RATE) for frame, n in leaves.most_common(limit)]
