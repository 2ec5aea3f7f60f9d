"""The one way every process (worker, CLI, dev stack) connects to Temporal, so that
TLS, API keys and the payload codec are settings, not code paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from pipeworks.codec import encrypting_data_converter, parse_keyring
from pipeworks.settings import ConfigError, Settings, read_pem


def connect_options(settings: Settings) -> dict[str, Any]:
    """`Client.connect` keyword arguments; what is unset keeps the SDK's default."""
    options: dict[str, Any] = {"namespace": settings.temporal_namespace}
    if settings.temporal_tls_enabled:
        options["tls"] = tls_config(settings)
    if settings.temporal_api_key is not None:
        options["api_key"] = settings.temporal_api_key.get_secret_value()
    if (converter := data_converter(settings)) is not None:
        options["data_converter"] = converter
    return options


def tls_config(settings: Settings) -> TLSConfig:
    """The server is verified against the CA file when given, else the system roots."""
    return TLSConfig(
        server_root_ca_cert=_pem(settings.temporal_tls_ca, "TEMPORAL_TLS_CA"),
        client_cert=_pem(settings.temporal_tls_cert, "TEMPORAL_TLS_CERT"),
        client_private_key=_pem(settings.temporal_tls_key, "TEMPORAL_TLS_KEY"),
        domain=settings.temporal_tls_server_name or None)


def data_converter(settings: Settings) -> DataConverter | None:
    """The encrypting converter when keys are configured, else None (SDK default)."""
    if settings.encryption_keys is None:
        return None
    return encrypting_data_converter(parse_keyring(settings.encryption_keys.get_secret_value()))


def _pem(path: Path | None, variable: str) -> bytes | None:
    # Settings checked the file at start; it may have gone since (a rotated cert).
    if path is None:
        return None
    try:
        return read_pem(path)
    except ValueError as err:
        raise ConfigError(f"PIPEWORKS_{variable}: {err}") from None


async def connect_temporal(settings: Settings, runtime: Runtime | None = None) -> Client:
    options = connect_options(settings)
    if runtime is not None:
        options["runtime"] = runtime
    try:
        return await Client.connect(settings.temporal_address, **options)
    except RuntimeError as err:
        raise ConfigError(
            f"cannot reach Temporal at {settings.temporal_address} "
            f"(PIPEWORKS_TEMPORAL_ADDRESS; `pipeworks dev up` starts one): {err}") from None
