"""Where pipelines plug into the kernel.

A pipeline declares itself once, as a `Pipeline` value, and is found through the Python
entry point group `pipeworks.pipelines` (one line in its package's `pyproject.toml`), or
is registered at run time with `register` (tests do that for their example pipeline).
The worker, the CLI, schedules, the dev stack, migrations and metrics compose whatever is
registered; the kernel itself names no pipeline.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from temporalio.common import SearchAttributeKey

from pipeworks.merge import TableSpec

if TYPE_CHECKING:
    import asyncpg
    from pydantic_settings import BaseSettings
    from temporalio.client import Client
    from temporalio.common import MetricMeter

    from pipeworks.http import UpstreamClient
    from pipeworks.metrics import PipelineMetrics
    from pipeworks.settings import Settings

ENTRY_POINT_GROUP = "pipeworks.pipelines"


@dataclass
class PipelineResources:
    """What the worker opens once per process and hands to every pipeline's activities."""

    settings: Settings
    pool: asyncpg.Pool
    temporal: Client
    meter: MetricMeter
    # Closed in reverse order when the worker stops (e.g. a pipeline's HTTP client).
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def close_later(self, closer: Callable[[], Awaitable[None]]) -> None:
        self.closers.append(closer)

    def http_client(self, base_url: str, metrics: PipelineMetrics, *, token: str | None = None,
                    basic_auth: tuple[str, str] | None = None,
                    rate_limit_per_second: float | None = None,
                    retry_after_default_seconds: float = 1.0) -> UpstreamClient:
        """An upstream's HTTP client with the worker's timeouts, closed with the worker.
        A rate limit is kept per upstream (host and port) and shared by every worker
        through Postgres. `retry_after_default_seconds`: the wait after a 429 that names
        none (an upstream's documented default)."""
        from pipeworks.http import UpstreamClient
        from pipeworks.rate_limit import SharedRateLimit

        limit = None
        if rate_limit_per_second is not None:
            url = urlsplit(base_url)
            # Host and port only: credentials in the URL must not end up in a table.
            limit = SharedRateLimit(self.pool, f"upstream:{url.hostname}:{url.port or url.scheme}",
                                    rate_limit_per_second)
        client = UpstreamClient(
            base_url, token=token, basic_auth=basic_auth,
            timeout_seconds=self.settings.http_timeout_seconds,
            max_attempts=self.settings.http_max_attempts,
            max_connections=self.settings.max_concurrent_activities * 2, metrics=metrics,
            rate_limit=limit, retry_after_default_seconds=retry_after_default_seconds)
        self.close_later(client.aclose)
        return client

    def metrics(self, pipeline: str) -> PipelineMetrics:
        from pipeworks.metrics import PipelineMetrics

        return PipelineMetrics(self.meter, pipeline)


@dataclass(frozen=True)
class DevUpstream:
    """The demo upstream `pipeworks dev up` runs for a pipeline, unless the user points
    the pipeline's URL setting at a real one."""

    name: str                                 # as `dev status` shows it
    process: str                              # its pid and log files under .pipeworks/
    module: str                               # run as `python -m <module> --host --port`
    url_variable: str                         # after PIPEWORKS_, e.g. X_API_URL
    state_key: str                            # its URL in .pipeworks/stack.json
    port: Callable[[Settings], int]
    # True when the user set the URL: then the dev stack runs no demo upstream.
    external: Callable[[Settings], bool]
    extra_args: Callable[[Settings], list[str]] = lambda settings: []


@dataclass(frozen=True)
class ScheduleAction:
    """A command line after `pipeworks schedule create NAME ... --`.

    `command` is a typer command whose return value is the workflow input's fields (from
    its options); `build` validates them into the input the workflow would get now (a
    `StartableInput`); `describe` renders a stored payload of `workflow` back as the
    command line, or None when the workflow is not this action's."""

    name: str
    command: Callable[..., dict[str, Any]]
    build: Callable[[Settings, dict[str, Any]], Any]
    describe: Callable[[str, dict[str, Any]], str | None]
    # Options refused in a schedule, with the reason (e.g. a fixed time reused forever).
    refused: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WebParts:
    """What a pipeline adds to `pipeworks serve`. The routers are FastAPI `APIRouter`s,
    built only when the server starts (the CLI never imports the web stack)."""

    api: Any = None                      # mounted under /api/v1
    pages: Any = None                    # dashboard pages, mounted at /
    templates: Path | None = None        # a folder of Jinja templates (in a folder per pipeline)
    static: Path | None = None           # a folder of assets, served at /static/<pipeline>/
    nav: Sequence[tuple[str, str]] = ()  # (label, path) in the dashboard's menu
    # A run's pages of this pipeline, by workflow id: (label, path) shown on its run page.
    run_links: Callable[[str], Sequence[tuple[str, str]]] = lambda workflow_id: ()


@dataclass(frozen=True)
class Pipeline:
    name: str
    workflows: Sequence[type]
    # Builds the pipeline's activities from the worker's resources.
    activities: Callable[[PipelineResources], Sequence[Callable[..., Any]]]
    settings: type[BaseSettings] | None = None
    # A package of `NNNN_name.sql` files, applied in order after the kernel's.
    migrations: str | None = None
    # Its schemas (tests empty them) and the tables an undo may touch, in undo order.
    schemas: Sequence[str] = ()
    undo_tables: Sequence[TableSpec] = ()
    search_attributes: Sequence[SearchAttributeKey[Any]] = ()
    # A typer app: its commands go under `pipeworks <cli_name>`, or at the top level
    # when `cli_name` is None.
    cli: Any = None
    cli_name: str | None = None
    schedule_actions: Sequence[ScheduleAction] = ()
    dev_upstream: DevUpstream | None = None
    # The settings users point at their upstream (shown by `pipeworks pipelines`).
    upstream_settings: Sequence[str] = ()
    description: str = ""
    # `pipeworks demo`'s part for this pipeline: returns an exit status.
    demo: Callable[[Settings, Any], int] | None = None
    # The inputs (`pipeworks.inputs.RunInput` classes) its runs may be started with over
    # the HTTP API, one per startable workflow.
    inputs: Sequence[type] = ()
    # Its routes and pages in `pipeworks serve`, built on demand.
    web: Callable[[], WebParts] | None = None

    @property
    def workflow_names(self) -> list[str]:
        names = []
        for workflow_class in self.workflows:
            definition = getattr(workflow_class, "__temporal_workflow_definition", None)
            names.append(definition.name if definition is not None else workflow_class.__name__)
        return names


_registered: dict[str, Pipeline] = {}
_loaded = False


class RegistryError(Exception):
    pass


def register(pipeline: Pipeline) -> Pipeline:
    """Adds a pipeline (idempotent for the same value); a clash of names is an error."""
    _load_entry_points()
    existing = _registered.get(pipeline.name)
    if existing is not None and existing is not pipeline:
        raise RegistryError(f"two pipelines are named {pipeline.name!r}")
    _registered[pipeline.name] = pipeline
    return pipeline


def unregister(name: str) -> None:
    _registered.pop(name, None)


def _load_entry_points() -> None:
    global _loaded
    if _loaded:
        return
    found = []
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name):
        pipeline = point.load()
        if not isinstance(pipeline, Pipeline):
            raise RegistryError(f"entry point {point.name} ({point.value}) is not a Pipeline")
        found.append(pipeline)
    # Only a complete load counts: a failed one is tried again, never half-used.
    for pipeline in found:
        _registered.setdefault(pipeline.name, pipeline)
    _loaded = True


def installed() -> list[Pipeline]:
    """Every registered pipeline, in registration order."""
    _load_entry_points()
    return list(_registered.values())


def selected(names: str) -> list[Pipeline]:
    """The pipelines named in `names` (comma-separated; empty: every one installed)."""
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    return [get(name) for name in wanted] if wanted else installed()


def get(name: str) -> Pipeline:
    for pipeline in installed():
        if pipeline.name == name:
            return pipeline
    raise RegistryError(f"no pipeline named {name!r} (installed: "
                        f"{', '.join(p.name for p in installed()) or 'none'})")


def search_attribute_keys() -> list[SearchAttributeKey[Any]]:
    """The kernel's keys, then every pipeline's (each name once)."""
    from pipeworks import search_attributes

    keys: dict[str, SearchAttributeKey[Any]] = {k.name: k for k in search_attributes.KERNEL}
    for pipeline in installed():
        for key in pipeline.search_attributes:
            keys.setdefault(key.name, key)
    return list(keys.values())


def undo_tables() -> list[TableSpec]:
    tables: list[TableSpec] = []
    for pipeline in installed():
        tables.extend(pipeline.undo_tables)
    return tables


def migration_packages() -> list[tuple[str, str]]:
    """(source, package) of every pipeline's migrations, after the kernel's."""
    return [(p.name, p.migrations) for p in installed() if p.migrations]


@contextlib.contextmanager
def registered(pipeline: Pipeline) -> Any:
    """`with registered(EXAMPLE): ...`: a pipeline registered for a block (tests)."""
    register(pipeline)
    try:
        yield pipeline
    finally:
        unregister(pipeline.name)
