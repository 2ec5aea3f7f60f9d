"""Yardstick (c): the same sports sync with dlt (https://dlthub.com), written as a dlt user
would: the declarative rest_api source, a postgres destination, merge on `id`, and the
tuning knobs of dlt's performance guide (https://dlthub.com/docs/reference/performance).
Measured with dlt 1.31.0 (`pip install "dlt[postgres]"`).

For one association: page through its competitions (one resource), and for each
competition page through its teams and its games (two child resources that `resolve` the
competition id, `parallelized=True` so each competition's pages are fetched on dlt's
extract thread pool, `--concurrency` workers). All three are `write_disposition="merge"`
with `primary_key="id"`, into the dataset (Postgres schema) `dlt_sports`, beside
pipeworks' `sports` schema: dlt adds its own columns (`_dlt_id`, `_dlt_load_id`,
`_competitions_id` for the parent id) and tables (`_dlt_loads`, `_dlt_version`, ...).

Differences to yardstick (a): no GET of the association itself (one request fewer); every
field of an item is loaded (games carry `attendance`, which the `sports` tables drop); the
merge is dlt's default `delete-insert` through a staging dataset and does not delete rows a
competition no longer lists (irrelevant here: every run is a full load into empty tables).

Each run starts clean, outside the timed part: a fresh pipeline working dir in a temp dir
(removed at exit, nothing is left in $HOME), dlt's telemetry off, and the schemas
`dlt_sports` and `dlt_sports_staging` dropped. `wall_s` is `pipeline.run()`: from the first
request to the commit of the last load job (extract + normalize + load), with the three
steps' times from the run's trace.

    python -m benchmarks.yardstick_dlt --dsn postgresql://... --url http://127.0.0.1:8765

prints one JSON object: wall time, per-step times, requests, rows per table and the dlt
settings used. Any setting can be overridden from the environment (dlt's own variables,
e.g. `NORMALIZE__WORKERS=2`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import dlt
from dlt.sources.rest_api import rest_api_source
from dlt.sources.rest_api.typing import RESTAPIConfig
from requests import Response

from benchmarks.common import yardstick_parser

DATASET = "dlt_sports"
PIPELINE = "yardstick_dlt"
TABLES = ("competitions", "teams", "games")


class RequestCounter:
    """Counts responses (retries included), from any extract thread."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.count += 1


REQUESTS = RequestCounter()


def count_request(response: Response, *args: Any, **kwargs: Any) -> Response:
    """A rest_api response action (a `requests` response hook). Module-level on purpose:
    rest_api deep-copies its config, which would copy a bound method's counter."""
    REQUESTS.add()
    return response


def settings(concurrency: int) -> dict[str, str]:
    """dlt configuration, as the environment variables dlt reads (SECTION__KEY); the
    choices were measured on a 2-core box with `--concurrency 16 --page-size 100`."""
    return {
        "RUNTIME__DLTHUB_TELEMETRY": "false",
        # Extract: the parallelized child resources run on a thread pool of `workers`
        # threads, with at most `max_parallel_items` deferred items (one competition's teams,
        # or its games, all pages) queued or running: `--concurrency` competitions' requests
        # in flight, as in (a). 32 workers measured no faster than 16 (extract is CPU-bound).
        "EXTRACT__WORKERS": str(concurrency),
        "EXTRACT__MAX_PARALLEL_ITEMS": str(concurrency),
        # The guide: raise the in-memory write buffers from the default 5,000 items (fewer
        # flushes of intermediary files in extract and normalize; within noise here).
        "DATA_WRITER__BUFFER_MAX_ITEMS": "50000",
        # The guide: intermediary and load files are gzipped by default; zlib was the
        # biggest single cost in a profile (~0.7 s of CPU). Off: -0.4 s wall.
        "DATA_WRITER__DISABLE_COMPRESSION": "true",
        # Normalize: 26k rows; a process pool (2 workers with extract file rotation, fork or
        # spawn) measured 0.6-1.9 s slower than normalizing in the main process.
        "NORMALIZE__WORKERS": "1",
        # Load: the default 20 threads (one per file; 3 tables here).
        "LOAD__WORKERS": "20",
    }


def rest_api_config(url: str, org_id: str, page_size: int) -> RESTAPIConfig:
    org = quote(org_id, safe="")
    competition = {"type": "resolve", "resource": "competitions", "field": "id"}
    return {
        "client": {
            "base_url": url.rstrip("/") + "/v1/",
            "paginator": {"type": "cursor", "cursor_path": "next_cursor",
                          "cursor_param": "cursor"},
        },
        "resource_defaults": {
            "primary_key": "id",
            "write_disposition": "merge",
            "endpoint": {"data_selector": "items", "params": {"limit": page_size},
                         "response_actions": [count_request]},
        },
        "resources": [
            {
                "name": "competitions",
                "endpoint": {"path": f"associations/{org}/competitions"},
                "columns": {"starts_on": {"data_type": "date"},
                            "ends_on": {"data_type": "date", "nullable": True}},
            },
            {
                "name": "teams",
                "parallelized": True,
                "endpoint": {"path": "competitions/{competition_id}/teams",
                             "params": {"competition_id": competition}},
                "include_from_parent": ["id"],
                "columns": {"club_id": {"data_type": "text", "nullable": True}},
            },
            {
                "name": "games",
                "parallelized": True,
                "endpoint": {"path": "competitions/{competition_id}/games",
                             "params": {"competition_id": competition}},
                "include_from_parent": ["id"],
                "columns": {"scheduled_at": {"data_type": "timestamp"},
                            "updated_at": {"data_type": "timestamp"},
                            "round": {"data_type": "text", "nullable": True},
                            "venue": {"data_type": "text", "nullable": True},
                            "home_score": {"data_type": "bigint", "nullable": True},
                            "away_score": {"data_type": "bigint", "nullable": True}},
            },
        ],
    }


def dlt_credentials(dsn: str) -> str:
    """The DSN, with a password: dlt's PostgresCredentials require one even where the server
    does not (the benchmark's embedded Postgres trusts local connections). PGPASSWORD if
    set, else a placeholder that trust authentication ignores."""
    parts = urlsplit(dsn)
    if parts.password or "@" not in parts.netloc:
        return dsn
    user, host = parts.netloc.rsplit("@", 1)
    password = quote(os.environ.get("PGPASSWORD", "unused"), safe="")
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


def step_seconds(pipeline: dlt.Pipeline) -> dict[str, float]:
    """Seconds per step of the last run (their sum is within ~0.05 s of `wall_s`)."""
    trace = pipeline.last_trace
    times: dict[str, float] = {}
    for step in trace.steps if trace is not None else []:
        if step.step in ("extract", "normalize", "load") and step.finished_at is not None:
            times[f"{step.step}_s"] = (step.finished_at - step.started_at).total_seconds()
    return times


def run(args: argparse.Namespace, workdir: str) -> dict[str, Any]:
    pipeline = dlt.pipeline(
        pipeline_name=PIPELINE, pipelines_dir=workdir, dataset_name=DATASET,
        destination=dlt.destinations.postgres(credentials=dlt_credentials(args.dsn)))
    with pipeline.sql_client() as client:
        for schema in (DATASET, f"{DATASET}_staging"):
            client.execute_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")

    source = rest_api_source(rest_api_config(args.url, args.org, args.page_size), name="sports")

    started = time.perf_counter()
    pipeline.run(source, loader_file_format=args.loader_file_format)
    wall = time.perf_counter() - started

    rows: dict[str, int] = {}
    with pipeline.sql_client() as client:
        for table in TABLES:
            found = client.execute_sql(f"SELECT count(*) FROM {DATASET}.{table}")
            rows[f"{DATASET}.{table}"] = int(found[0][0]) if found else 0
    return {"wall_s": wall, **step_seconds(pipeline), "requests": REQUESTS.count,
            "rows": rows, "rows_total": sum(rows.values())}


def main(args: argparse.Namespace) -> dict[str, Any]:
    for key, value in settings(args.concurrency).items():
        os.environ.setdefault(key, value)  # an explicit environment wins
    with tempfile.TemporaryDirectory(prefix="yardstick-dlt-") as workdir:
        os.environ["DLT_DATA_DIR"] = workdir  # dlt's global dir: not ~/.dlt
        result = run(args, workdir)
    used = {k: os.environ[k] for k in sorted(settings(args.concurrency))}
    return {**result, "dlt_version": dlt.__version__,
            "loader_file_format": args.loader_file_format, "settings": used}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = yardstick_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--loader-file-format", default="csv",
                        choices=["csv", "insert_values"],
                        help="what normalize writes and load sends to Postgres: csv is"
                        " COPY (load 0.25 s), insert_values dlt's default (0.6 s)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    json.dump(main(parse_args()), sys.stdout)
    sys.stdout.write("\n")
