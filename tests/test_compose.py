"""The Docker dev stack (temporal-dev.yml, Dockerfile, .dockerignore), checked by parsing.

There is no Docker engine where the tests run, so these checks are what keep the files in
step with pipeworks' settings: host ports equal the PIPEWORKS_* defaults, the worker only
sets variables pipeworks knows and points them at the compose services, and shutdown has
time to drain. Each check returns a list of problems; the last tests feed it broken copies
to show that it would notice.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import ValidationError

from pipeworks.settings import ENV_PREFIX, Settings, describe_validation_error

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "temporal-dev.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

TEMPORAL = "temporal"
TEMPORAL_UI = "temporal-ui"
PIPEWORKS_DB = "pipeworks-db"
UPSTREAM = "demo-upstream"
WORKER = "worker"
REQUIRED_SERVICES = (TEMPORAL, TEMPORAL_UI, PIPEWORKS_DB, UPSTREAM, WORKER)

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
    UPSTREAM: (8765, lambda s: s.upstream_port),
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


def worker_env_problems(doc: Compose, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    known = services(doc)
    env = environment(known[WORKER])
    problems = [f"worker: {key} is not a pipeworks setting" for key in env
                if not key.startswith(ENV_PREFIX)
                or key.removeprefix(ENV_PREFIX).lower() not in Settings.model_fields]
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
    if settings.sports_api_url is None or settings.database_url is None:
        return [*problems, "worker: PIPEWORKS_SPORTS_API_URL and PIPEWORKS_DATABASE_URL "
                           "must both be set"]
    points_at("PIPEWORKS_SPORTS_API_URL", settings.sports_api_url, UPSTREAM,
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
    return problems


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
            defaults.postgres_port, defaults.upstream_port) == (7233, 8233, 55432, 8765)


def test_upstream_listens_where_it_is_published(compose: Compose) -> None:
    args = command_args(services(compose)[UPSTREAM])
    assert args[:3] == ["python", "-m", "devstack.upstream"]
    assert option(args, "--host") == "0.0.0.0"  # reachable from the other containers
    container_ports = [target for _, _, target in published_ports(services(compose)[UPSTREAM])]
    assert int(option(args, "--port") or 0) in container_ports


def test_depends_on_names_existing_services(compose: Compose) -> None:
    assert dependency_problems(compose) == []


def test_worker_waits_for_what_it_needs(compose: Compose) -> None:
    assert dependencies(services(compose)[WORKER]) == {
        TEMPORAL: "service_healthy", PIPEWORKS_DB: "service_healthy",
        UPSTREAM: "service_started"}


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
            **{UPSTREAM: {"condition": "service_healthy"}}), "depends_on"),
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


@pytest.mark.parametrize("text", [
    'FROM python:3.11-slim\nRUN pip install .\nCMD ["pipeworks", "worker"]\n',
    'FROM python:3.11-slim\nRUN pip install .\nUSER root\nCMD ["pipeworks", "worker"]\n',
    'FROM python:3.11-slim\nRUN pip install .\nUSER app\nCMD pipeworks worker\n',
    'FROM python:3.11-slim\nRUN pip install -e .\nUSER app\nCMD ["pipeworks", "worker"]\n',
    'FROM python:3.12\nRUN pip install .\nUSER app\nCMD ["pipeworks", "worker"]\n',
    'FROM python:3.11-slim AS build\nUSER app\nFROM python:3.11-slim\nRUN pip install .\n'
    'CMD ["pipeworks", "worker"]\n',
])
def test_dockerfile_check_catches_mistakes(text: str) -> None:
    assert dockerfile_problems(text) != []


def test_duration_parsing() -> None:
    assert duration_seconds("45s") == 45
    assert duration_seconds("1m30s") == 90
    assert duration_seconds("1500ms") == 1.5
    with pytest.raises(ValueError):
        duration_seconds("45 seconds")
