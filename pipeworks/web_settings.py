"""The settings of `pipeworks serve` (interfaces.md, "HTTP API and dashboard")."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from pipeworks.settings import PipelineSettings

Role = Literal["viewer", "operator"]
ROLES: tuple[Role, ...] = ("viewer", "operator")
_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
# Keys shorter than this are guessable within a rate limit's patience.
MIN_KEY_LENGTH = 16


def role_allows(held: Role, needed: Role) -> bool:
    """An operator may do what a viewer may, and more."""
    return needed == "viewer" or held == "operator"


@dataclass(frozen=True)
class ApiKey:
    name: str
    role: Role
    # Only the digest is kept: comparing digests of equal length in constant time says
    # nothing about a key's length or prefix.
    digest: bytes

    def can(self, role: Role) -> bool:
        return role_allows(self.role, role)


def key_digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def parse_api_keys(value: str) -> list[ApiKey]:
    """`name:role:key,...`; a message never contains a key."""
    keys: list[ApiKey] = []
    for position, entry in enumerate((e.strip() for e in value.split(",")), start=1):
        if not entry:
            continue
        name, _, rest = entry.partition(":")
        role, _, key = rest.partition(":")
        if not _NAME.fullmatch(name):
            raise ValueError(f"entry {position}: expected name:role:key with a name of "
                             "letters, digits, _ . @ -")
        if role not in ROLES:
            raise ValueError(f"entry {position} ({name}): role must be viewer or operator")
        if len(key) < MIN_KEY_LENGTH or any(c in key for c in " \t"):
            raise ValueError(f"entry {position} ({name}): the key must be at least "
                             f"{MIN_KEY_LENGTH} characters without spaces")
        if any(k.name == name for k in keys):
            raise ValueError(f"entry {position}: the name {name!r} is used twice")
        keys.append(ApiKey(name, role, key_digest(key)))
    return keys


def find_key(keys: list[ApiKey], presented: str) -> ApiKey | None:
    """The key whose digest matches, comparing with every key so that the time taken
    does not tell which one (or whether any) matched."""
    digest = key_digest(presented)
    found = None
    for key in keys:
        if hmac.compare_digest(key.digest, digest):
            found = key
    return found


class WebSettings(PipelineSettings):
    api_keys: SecretStr | None = None
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8080, ge=1, le=65535)
    # Requests per second per key, and how many may come at once above that rate.
    api_rate_limit_per_second: float = Field(default=20.0, gt=0)
    api_rate_limit_burst: int = Field(default=100, ge=1)
    # Workers' health endpoints the dashboard asks (comma-separated host:port; empty:
    # PIPEWORKS_HEALTH_ADDRESS, the dev stack's worker).
    api_worker_health: str = ""
    # How often the server asks a running run for its progress for SSE clients.
    api_progress_poll_seconds: float = Field(default=0.5, ge=0.05, le=60)

    @field_validator("api_keys")
    @classmethod
    def _keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        parse_api_keys(value.get_secret_value())
        return value

    @field_validator("api_worker_health")
    @classmethod
    def _addresses(cls, value: str) -> str:
        for address in (a.strip() for a in value.split(",") if a.strip()):
            if not re.fullmatch(r"[A-Za-z0-9.\-_\[\]:]+:\d{1,5}", address):
                raise ValueError(f"{address!r}: expected host:port")
        return value

    def parsed_keys(self) -> list[ApiKey]:
        return parse_api_keys(self.api_keys.get_secret_value()) if self.api_keys else []

    def worker_health_addresses(self, default: str) -> list[str]:
        listed = [a.strip() for a in self.api_worker_health.split(",") if a.strip()]
        return listed or ([default] if default else [])
