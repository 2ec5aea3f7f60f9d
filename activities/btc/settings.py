"""The Bitcoin pipeline's settings (btc-rpc.md, Settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator

from pipeworks.settings import PipelineSettings, Settings, check_http_url

RPC_URL_VARIABLE = "BTC_RPC_URL"
STACK_URL_KEY = "btc_rpc_url"
# The dev stack's node emulator answers to these (it is local and holds demo data).
DEV_USER = "pipeworks"
DEV_PASSWORD = "pipeworks-dev"  # noqa: S105 - the demo node's, not a secret

Network = Literal["main", "test", "testnet4", "signet", "regtest"]
# Blocks between halvings (btc-rpc.md, getblockstats `subsidy`).
HALVING_INTERVAL: dict[str, int] = {"main": 210_000, "test": 210_000, "testnet4": 210_000,
                                    "signet": 210_000, "regtest": 150}


class BtcSettings(PipelineSettings):
    btc_rpc_url: str | None = None
    btc_rpc_user: str | None = None
    btc_rpc_password: SecretStr | None = None
    btc_rpc_cookie_file: Path | None = None
    btc_network: Network = "main"
    btc_min_confirmations: int = Field(default=6, ge=0, le=10_000)
    # Concurrent HTTP requests to the node at most (its -rpcthreads is 16 by default, 4
    # before Core 29); 503s and timeouts lower it (AIMD), successes raise it back.
    btc_rpc_concurrency: int = Field(default=8, ge=1, le=256)
    # Calls per JSON-RPC batch: a node runs a batch's calls one after another.
    btc_rpc_batch_calls: int = Field(default=25, ge=1, le=1000)
    # The dev stack's node emulator.
    btc_node_port: int = Field(default=8767, ge=1, le=65535)
    btc_node_chain: str = "mainnet-sample"

    @field_validator("btc_rpc_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return check_http_url(value)

    @model_validator(mode="after")
    def _one_kind_of_credentials(self) -> Self:
        if (self.btc_rpc_user is None) != (self.btc_rpc_password is None):
            raise ValueError("set PIPEWORKS_BTC_RPC_USER and PIPEWORKS_BTC_RPC_PASSWORD "
                             "together")
        if self.btc_rpc_cookie_file is not None and self.btc_rpc_user is not None:
            raise ValueError("set either PIPEWORKS_BTC_RPC_COOKIE_FILE or user and "
                             "password, not both")
        return self

    def rpc_url(self, settings: Settings) -> str:
        return settings.from_stack(self.btc_rpc_url, STACK_URL_KEY, RPC_URL_VARIABLE)

    def credentials(self) -> tuple[str, str]:
        """(user, password): configured, read from the cookie file, or the dev node's."""
        if self.btc_rpc_cookie_file is not None:
            return read_cookie(self.btc_rpc_cookie_file)
        if self.btc_rpc_user is not None and self.btc_rpc_password is not None:
            return self.btc_rpc_user, self.btc_rpc_password.get_secret_value()
        return DEV_USER, DEV_PASSWORD

    @property
    def halving_interval(self) -> int:
        return HALVING_INTERVAL[self.btc_network]


def read_cookie(path: Path) -> tuple[str, str]:
    """`__cookie__:<hex>`, split at the first `:`. The content never reaches a message."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise ValueError(f"cannot read the node's cookie file {path}: "
                         f"{err.strerror or type(err).__name__}") from None
    user, sep, password = text.partition(":")
    if not sep or not user:
        raise ValueError(f"the node's cookie file {path} does not hold user:password")
    return user, password
