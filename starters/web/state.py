"""What one server process holds for all requests: settings, keys, the Postgres pool,
the Temporal client, templates, the progress hub and the per-key rate limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg
from fastapi import Request
from fastapi.templating import Jinja2Templates
from temporalio.client import Client

from pipeworks.rate_limit import SharedRateLimit
from pipeworks.registry import Pipeline, WebParts
from pipeworks.settings import Settings
from pipeworks.web_settings import ApiKey, WebSettings
from starters.web.events import ProgressHub

MAX_LIMITS = 10_000


@dataclass
class ServerState:
    settings: Settings
    web: WebSettings
    keys: list[ApiKey]
    pool: asyncpg.Pool
    temporal: Client
    templates: Jinja2Templates
    hub: ProgressHub
    parts: dict[str, WebParts]
    pipelines: list[Pipeline]
    limits: dict[str, SharedRateLimit] = field(default_factory=dict)
    pipelines_document: list[dict[str, Any]] | None = None

    def rate_limit(self, name: str, per_second: float | None = None,
                   burst: int | None = None) -> SharedRateLimit:
        """One limit per key (or other name), shared by every server process through
        Postgres; the settings' rate and burst unless given."""
        limit = self.limits.get(name)
        if limit is None:
            if len(self.limits) >= MAX_LIMITS:  # one per client address: keep it bounded
                self.limits.clear()
            rate = per_second or self.web.api_rate_limit_per_second
            limit = SharedRateLimit(self.pool, f"api:{name}", rate, horizon_seconds=(
                burst or self.web.api_rate_limit_burst) / rate)
            self.limits[name] = limit
        return limit

    @property
    def nav(self) -> list[tuple[str, str]]:
        items = [("Runs", "/")]
        for parts in self.parts.values():
            items.extend(parts.nav)
        items.append(("Health", "/health"))
        return items


def server(request: Request) -> ServerState:
    state = request.app.state.server
    assert isinstance(state, ServerState)
    return state
