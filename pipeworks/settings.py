"""Settings from PIPEWORKS_* environment variables (and `.env`).

A bad value stops the program at start with one line naming the variable; the
CLI turns `ConfigError` into exit status 2.
"""

from __future__ import annotations

import ipaddress
import json
import re
from functools import cached_property
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeworks.codec import parse_keyring
from pipeworks.dsn import check_postgres_dsn

ENV_PREFIX = "PIPEWORKS_"
STACK_STATE_FILE = "stack.json"


class ConfigError(Exception):
    """A setting is missing or invalid; the message is one line for the user."""


def _check_url(value: str, schemes: tuple[str, ...], what: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"not a {what} URL (expected {' or '.join(schemes)}://host...)")
    try:
        _ = parts.port
    except ValueError as err:
        raise ValueError(f"bad port in URL: {err}") from None
    return value


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def read_pem(path: Path) -> bytes:
    """A TLS file's bytes, or a one-line error naming it (never its content)."""
    try:
        data = path.expanduser().read_bytes()
    except OSError as err:
        raise ValueError(f"cannot read {path}: {err.strerror or err}") from None
    if b"-----BEGIN " not in data:
        raise ValueError(f"{path} is not a PEM file")
    return data


SETTINGS_CONFIG = SettingsConfigDict(
    env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", frozen=True
)


class PipelineSettings(BaseSettings):
    """Base of a pipeline's own settings class: the same `PIPEWORKS_` variables and
    `.env` file as the kernel's."""

    model_config = SETTINGS_CONFIG


P = TypeVar("P", bound=BaseSettings)


def check_http_url(value: str | None) -> str | None:
    """For a pipeline's upstream URL setting: http(s), no trailing slash."""
    if value is not None:
        _check_url(value, ("http", "https"), "http(s)")
        value = value.rstrip("/")
    return value


class Settings(BaseSettings):
    model_config = SETTINGS_CONFIG
    # Each pipeline's settings, by class (see `of`).
    _pipelines: dict[type, BaseSettings] = PrivateAttr(default_factory=dict)

    # The contract's settings.
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = Field(default="default", min_length=1)
    task_queue: str = Field(default="pipeworks", min_length=1)
    database_url: SecretStr | None = None

    # Where the embedded dev stack keeps its state, logs and pid files.
    home: Path = Path(".pipeworks")
    postgres_port: int = Field(default=55432, ge=1, le=65535)
    temporal_ui_port: int = Field(default=8233, ge=1, le=65535)

    # Run behaviour; the starters copy these into the workflow input so that
    # workflow code stays deterministic and does not read the environment.
    page_size: int = Field(default=100, ge=1, le=500)
    heartbeat_timeout_seconds: float = Field(default=30.0, gt=0)
    run_deadline_seconds: float | None = Field(default=None, gt=0)

    # Worker process. `pipelines`: the registered pipelines this worker serves, comma-
    # separated (empty: all of them), e.g. to give one pipeline workers of its own.
    pipelines: str = ""
    http_timeout_seconds: float = Field(default=10.0, gt=0)
    http_max_attempts: int = Field(default=4, ge=1, le=20)
    graceful_shutdown_seconds: float = Field(default=30.0, ge=0)
    max_concurrent_activities: int = Field(default=16, ge=1)
    db_pool_size: int = Field(default=8, ge=1, le=200)
    # `pipeworks worker` runs this many worker processes (workers/supervisor.py).
    worker_processes: int = Field(default=1, ge=1, le=64)
    keep_landed_pages: bool = False
    log_format: Literal["console", "json"] = "console"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    # Operations. An empty address turns that endpoint off; several workers on one
    # host each need their own ports.
    metrics_address: str = "127.0.0.1:9464"
    health_address: str = "127.0.0.1:9465"
    alert_webhook_url: SecretStr | None = None

    # Payload encryption and secure connections to Temporal. Encryption is off until
    # keys are set: `id:base64key,...`, 256-bit keys, the last one encrypts and every
    # one decrypts (rotate by adding a key at the end).
    encryption_keys: SecretStr | None = None
    # TLS is on when this is true, or when a CA, client certificate or API key is set.
    temporal_tls: bool = False
    temporal_tls_ca: Path | None = None
    temporal_tls_cert: Path | None = None
    # Validated even when unset, so that a certificate without its key is an error.
    temporal_tls_key: Path | None = Field(default=None, validate_default=True)
    temporal_tls_server_name: str | None = None
    temporal_api_key: SecretStr | None = None
    codec_server_address: str = "127.0.0.1:8081"
    # Browser origins allowed to call the codec server; empty means the dev Web UI.
    codec_cors_origins: str = ""

    @field_validator("temporal_address")
    @classmethod
    def _host_port(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9.\-_\[\]:]+:\d{1,5}", value):
            raise ValueError("expected host:port, e.g. localhost:7233")
        return value

    @field_validator("metrics_address", "health_address")
    @classmethod
    def _optional_bind(cls, value: str) -> str:
        if not value:
            return value
        host, _, port = value.rpartition(":")
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            # The SDK's Prometheus exporter takes a socket address, not a host name.
            raise ValueError("expected ip:port, e.g. 127.0.0.1:9464 or 0.0.0.0:9464 "
                             "(or empty for off)") from None
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"bad port {port!r}")
        return value

    @field_validator("alert_webhook_url")
    @classmethod
    def _webhook_url(cls, value: SecretStr | None) -> SecretStr | None:
        # A Slack webhook URL's path is its secret: a SecretStr, never shown.
        if value is not None and value.get_secret_value():
            _check_url(value.get_secret_value(), ("http", "https"), "http(s)")
            return value
        return None

    @field_validator("database_url")
    @classmethod
    def _postgres_dsn(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            # Whatever libpq and asyncpg accept, Unix sockets included (pipeworks/dsn.py).
            check_postgres_dsn(value.get_secret_value())
        return value

    @field_validator("encryption_keys")
    @classmethod
    def _keyring(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None  # set but empty: encryption off, like unset
        parse_keyring(value.get_secret_value())  # its messages never contain a key
        return value

    @field_validator("temporal_tls_ca", "temporal_tls_cert", "temporal_tls_key")
    @classmethod
    def _pem_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if info.field_name == "temporal_tls_key" and (
                (value is None) != (info.data.get("temporal_tls_cert") is None)):
            raise ValueError(f"{ENV_PREFIX}TEMPORAL_TLS_CERT and {ENV_PREFIX}TEMPORAL_TLS_KEY "
                             "go together (mTLS): set both or neither")
        if value is not None:
            read_pem(value)
        return value

    @field_validator("temporal_api_key")
    @classmethod
    def _api_key(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value().strip() else None

    @field_validator("codec_server_address")
    @classmethod
    def _codec_bind(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9.\-_\[\]:]+:\d{1,5}", value):
            raise ValueError("expected host:port, e.g. 127.0.0.1:8081")
        return value

    @field_validator("codec_cors_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        for origin in _split(value):
            parts = urlsplit(origin)
            if (parts.scheme not in ("http", "https") or not parts.hostname
                    or parts.path not in ("", "/") or parts.query or parts.fragment):
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port])")
        return value

    @property
    def temporal_tls_enabled(self) -> bool:
        return bool(self.temporal_tls or self.temporal_tls_ca or self.temporal_tls_cert
                    or self.temporal_api_key)

    @property
    def codec_allowed_origins(self) -> tuple[str, ...]:
        """Origins (no trailing slash, as browsers send them) the codec server answers."""
        configured = tuple(o.rstrip("/") for o in _split(self.codec_cors_origins))
        if configured:
            return configured
        return (self.temporal_ui_url, f"http://127.0.0.1:{self.temporal_ui_port}")

    @property
    def codec_endpoint(self) -> str | None:
        """Where a browser on this host finds `pipeworks codec-server` (for the dev
        server's `--ui-codec-endpoint`); None while encryption is off."""
        if self.encryption_keys is None:
            return None
        host, _, port = self.codec_server_address.rpartition(":")
        if host in ("0.0.0.0", "::", "[::]", ""):  # noqa: S104 - a bind-all, not a bind
            host = "localhost"
        return f"http://{host}:{port}"

    @cached_property
    def stack_state(self) -> dict[str, str]:
        """What `pipeworks dev up` wrote: the embedded services' addresses."""
        path = self.home / STACK_STATE_FILE
        try:
            loaded = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}

    def resolved_database_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        if dsn := self.stack_state.get("database_url"):
            return dsn
        raise ConfigError(
            f"{ENV_PREFIX}DATABASE_URL is not set and no dev stack is running "
            "(start one with `pipeworks dev up`)"
        )

    def from_stack(self, configured: str | None, state_key: str, variable: str) -> str:
        """A pipeline's upstream URL: as configured, else the dev stack's demo upstream."""
        if configured is not None:
            return configured
        if url := self.stack_state.get(state_key):
            return url
        raise ConfigError(
            f"{ENV_PREFIX}{variable} is not set and no dev stack is running "
            "(start one with `pipeworks dev up`)"
        )

    def of(self, settings_class: type[P]) -> P:
        """A pipeline's own settings: given with `with_pipeline`, else read from the
        environment (and `.env`) the first time they are asked for."""
        found = self._pipelines.get(settings_class)
        if found is None:
            found = load_pipeline_settings(settings_class)
            self._pipelines[settings_class] = found
        assert isinstance(found, settings_class)
        return found

    def with_pipeline(self, *configured: BaseSettings) -> Settings:
        """A copy whose pipelines' settings are these (tests, embedded starters)."""
        copy = self.model_copy()
        copy._pipelines = {**self._pipelines, **{type(c): c for c in configured}}
        return copy

    @property
    def temporal_ui_url(self) -> str:
        host = self.temporal_address.rsplit(":", 1)[0]
        if host in ("localhost", "127.0.0.1", "0.0.0.0"):  # noqa: S104 - a name, not a bind
            return f"http://localhost:{self.temporal_ui_port}"
        return f"http://{host}:{self.temporal_ui_port}"


def describe_validation_error(err: ValidationError) -> str:
    """One line naming the variable, never echoing a secret value."""
    first = err.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "?"
    message = first["msg"].removeprefix("Value error, ")
    return f"{ENV_PREFIX}{field.upper()}: {message}"


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as err:
        raise ConfigError(describe_validation_error(err)) from None


def load_pipeline_settings(settings_class: type[P]) -> P:
    try:
        return settings_class()
    except ValidationError as err:
        raise ConfigError(describe_validation_error(err)) from None
