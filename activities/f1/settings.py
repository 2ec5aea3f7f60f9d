"""The F1 pipeline's settings (interfaces.md, Settings)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from pipeworks.settings import PipelineSettings, Settings, check_http_url

API_URL_VARIABLE = "F1_API_URL"
STACK_URL_KEY = "f1_api_url"


class F1Settings(PipelineSettings):
    f1_api_url: str | None = None
    f1_api_token: SecretStr | None = None
    # f1-api.md: 30 requests per 10 s per client, kept across every worker (Postgres).
    # Evenly spaced slots at 3/s would put 31 in a closed 10 s window: 2.9/s keeps 30.
    f1_rate_limit: float = Field(default=2.9, gt=0, le=100_000)
    # The wait after a 429 without Retry-After (f1-api.md: 60 s).
    f1_retry_after_seconds: float = Field(default=60.0, ge=0, le=3600)
    # The dev stack's demo F1 upstream.
    f1_upstream_port: int = Field(default=8766, ge=1, le=65535)
    f1_upstream_speed: float = Field(default=60.0, gt=0)

    @field_validator("f1_api_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return check_http_url(value)

    def api_url(self, settings: Settings) -> str:
        return settings.from_stack(self.f1_api_url, STACK_URL_KEY, API_URL_VARIABLE)

    @property
    def token(self) -> str | None:
        return self.f1_api_token.get_secret_value() if self.f1_api_token else None
