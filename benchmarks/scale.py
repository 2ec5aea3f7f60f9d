"""`make bench-scale`: one run's work shared by two workers on the same task queue.

    python -m benchmarks.scale [--competitions 40] [--latency-ms 200] [--concurrency 8]
        [--worker-slots 4] [--workers 2] [--out FILE]

The same stack as `benchmarks.run` (embedded Postgres, Temporal dev server, demo upstream
at a fixed latency). It syncs association A1 twice into emptied tables: once with one
worker, then with `--workers` workers on the same task queue. Each worker takes at most
`--worker-slots` activities at once (PIPEWORKS_MAX_CONCURRENT_ACTIVITIES), and the run
asks for `--concurrency` competitions at once: with a slow upstream, one worker's slots
are the bottleneck, and a second worker adds its own. Prints wall times and how many
activities each worker ran (from the run's history), and writes JSON.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.table import Table

from benchmarks.run import (
    ORG,
    RESULTS,
    Config,
    console,
    db_state,
    machine,
    run_and_report,
    run_sync,
    running_stack,
    truncate_all,
    versions,
)


async def scale(config: Config, workers: int) -> dict[str, Any]:
    report: dict[str, Any] = {
        "benchmark": "one run, one worker vs several",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {"competitions": config.competitions, "teams_per_competition": config.teams,
                   "games_per_competition": config.games, "latency_ms": config.latency_ms,
                   "concurrency": config.concurrency, "page_size": config.page_size,
                   "worker_slots": config.worker_slots, "workers": workers},
        "machine": machine(), "versions": versions(), "runs": [],
    }
    async with running_stack(config) as stack:
        sums = None
        for count in (1, workers):
            await stack.start_workers(count)
            console.print(f"{count} worker(s); warm-up sync of club C1-1 ...")
            await run_sync(stack, f"bench-warmup-{uuid.uuid4().hex[:6]}", org_kind="club",
                           org_id="C1-1")
            await truncate_all(stack.postgres.dsn)
            console.print(f"sync of {ORG} with {count} worker(s) ...")
            run = await run_sync(stack, f"bench-scale-{count}-{uuid.uuid4().hex[:6]}")
            counts, checksums = await db_state(stack.postgres.dsn)
            sums = sums or checksums
            run.update(workers=count, rows=counts, rows_total=sum(counts.values()),
                       same_rows_as_first=checksums == sums)
            run["rows_per_s"] = run["rows_total"] / run["wall_s"]
            console.print(f"   {run['wall_s']:.2f} s")
            report["runs"].append(run)
            await stack.stop_worker()
            await truncate_all(stack.postgres.dsn)
    one, many = report["runs"]
    report["speedup"] = one["wall_s"] / many["wall_s"]
    report["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return report


def render(report: dict[str, Any]) -> None:
    c = report["config"]
    table = Table(title=(
        f"{c['competitions']} competitions x {c['teams_per_competition']} teams x "
        f"{c['games_per_competition']} games, {c['latency_ms']:g} ms/request, concurrency "
        f"{c['concurrency']}, {c['worker_slots']} activity slots per worker, "
        f"{report['machine']['cpu_count']} CPUs"), title_justify="left")
    for col in ("workers", "wall s", "rows/s", "speedup", "activities per worker",
                "peak RSS MB per worker", "same rows"):
        table.add_column(col, justify="left" if col.startswith("activities") else "right")
    first = report["runs"][0]["wall_s"]
    for run in report["runs"]:
        per_worker = "; ".join(
            f"{worker}: " + ", ".join(f"{n} {name}" for name, n in sorted(
                counts.items(), key=lambda kv: -kv[1]))
            for worker, counts in sorted(run["activities_by_worker"].items()))
        rss = ", ".join(f"{v:.0f}" for v in run["worker_peak_rss_mb_by_worker"].values() if v)
        table.add_row(str(run["workers"]), f"{run['wall_s']:.2f}", f"{run['rows_per_s']:,.0f}",
                      f"{first / run['wall_s']:.2f}x", per_worker, rss,
                      str(run["same_rows_as_first"]))
    console.print(table)


def parse_args(argv: Sequence[str] | None = None) -> tuple[Config, int]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--competitions", type=int, default=40)
    parser.add_argument("--teams", type=int, default=16)
    parser.add_argument("--games", type=int, default=240)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--worker-slots", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.workers < 2 or args.worker_slots < 1:
        parser.error("--workers must be at least 2, --worker-slots at least 1")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or RESULTS / f"{stamp}-scale.json"
    config = Config(args.competitions, args.teams, args.games, args.latency_ms,
                    args.concurrency, args.page_size, skip_naive=True, quick=False, out=out,
                    profile=None, worker_slots=args.worker_slots)
    return config, args.workers


def main(argv: Sequence[str] | None = None) -> int:
    config, workers = parse_args(argv)
    return run_and_report(config, scale(config, workers), render)


if __name__ == "__main__":
    sys.exit(main())
