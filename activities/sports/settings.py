"""The sports pipeline's settings (contracts/interfaces.md, Settings): the same
`PIPEWORKS_*` variables as before the pipeline seam."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from pipeworks.settings import PipelineSettings, Settings, check_http_url

API_URL_VARIABLE = "SPORTS_API_URL"
STACK_URL_KEY = "sports_api_url"


class SportsSettings(PipelineSettings):
    sports_api_url: str | None = None
    sports_api_token: SecretStr | None = None
    # Competitions synced at once by one run (copied into the workflow input).
    competition_concurrency: int = Field(default=4, ge=1, le=64)
    # Requests per second to the sports API, shared by every worker (kept in Postgres).
    upstream_rate_limit: float | None = Field(default=None, gt=0, le=100_000)
    # The dev stack's demo upstream.
    upstream_port: int = Field(default=8765, ge=1, le=65535)
    upstream_latency_ms: int = Field(default=0, ge=0)
    upstream_size: Literal["demo", "small", "bench-100", "bench-1m"] = "demo"

    @field_validator("sports_api_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return check_http_url(value)

    def api_url(self, settings: Settings) -> str:
        return settings.from_stack(self.sports_api_url, STACK_URL_KEY, API_URL_VARIABLE)

    @property
    def token(self) -> str | None:
        return self.sports_api_token.get_secret_value() if self.sports_api_token else None
