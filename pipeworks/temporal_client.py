"""The one way every process (worker, CLI, dev stack) connects to Temporal, so that
TLS, API keys and the payload codec are settings, not code paths."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client
from temporalio.runtime import Runtime

from pipeworks.settings import ConfigError, Settings


def connect_options(settings: Settings) -> dict[str, Any]:
    return {"namespace": settings.temporal_namespace}


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
