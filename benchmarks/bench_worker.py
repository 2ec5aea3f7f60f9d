"""The pipeworks worker for experiments: under cProfile, and/or with Temporal's workflow
sandbox switched off. `python -m benchmarks.run --profile DIR` / `--unsandboxed` start
it in place of `python -m starters.cli worker`; nothing here changes pipeline code.

    python -m benchmarks.bench_worker [--profile OUT.prof] [--unsandboxed]

--profile: cProfile in every Python thread (the SDK runs workflow activations on a
thread pool, activities on the event loop), timing CPU per thread (`time.thread_time`),
so idle waits do not show up. Profiling slows Python down: such a run's timings do not
count. The statistics are written to OUT.prof when the worker stops.

--unsandboxed: the same worker (`workers.worker.build_worker`) with
`workflow_runner=UnsandboxedWorkflowRunner()`, to measure what the sandbox costs.

Runs until SIGTERM/SIGINT and drains like the real worker.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any

from temporalio.worker import UnsandboxedWorkflowRunner

from pipeworks.logging import configure_logging
from pipeworks.settings import Settings, load_settings
from workers.worker import build_worker, run_worker, worker_resources

_profiles: list[cProfile.Profile] = []
_lock = threading.Lock()


def _profile_this_thread(frame: FrameType, event: str, arg: Any) -> None:
    """Installed by threading.setprofile: the first event of a new thread swaps this
    hook for a profiler of that thread."""
    sys.setprofile(None)
    profile = cProfile.Profile(time.thread_time)
    with _lock:
        _profiles.append(profile)
    profile.enable()


async def run_unsandboxed(settings: Settings) -> None:
    """`workers.worker.run_worker`, with one override."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with worker_resources(settings) as resources:
        worker = build_worker(settings, resources,
                              workflow_runner=UnsandboxedWorkflowRunner())
        running = asyncio.create_task(worker.run())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({running, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            await worker.shutdown()
        else:
            stopped.cancel()
        await running


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", metavar="OUT")
    parser.add_argument("--unsandboxed", action="store_true")
    args = parser.parse_args()
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    main_profile = cProfile.Profile(time.thread_time)
    if args.profile:
        threading.setprofile(_profile_this_thread)
        _profiles.append(main_profile)
        main_profile.enable()
    try:
        asyncio.run(run_unsandboxed(settings) if args.unsandboxed else run_worker(settings))
    finally:
        if args.profile:
            main_profile.disable()
            with _lock:
                profiles = list(_profiles)
            for profile in profiles:
                profile.create_stats()
            pstats.Stats(*profiles).dump_stats(args.profile)
        sys.stdout.flush()
        sys.stderr.flush()
        # As `pipeworks worker` does: no interpreter finalization with SDK threads alive.
        os._exit(0)


if __name__ == "__main__":
    main()
