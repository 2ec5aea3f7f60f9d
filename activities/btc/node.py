"""The node client (btc-rpc.md): JSON-RPC over the kernel's HTTP client, batched and
concurrent within an AIMD limit, with the contract's classification of answers.

Some answers are findings, not failures: they come back in place of the result as an
`RpcError` (`NodeAnswer.missing`, `.pruned`, `.beyond_tip`) for the caller to report,
never to retry. Everything else raises with its category (transient, permanent, data)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from activities.btc.concurrency import AimdLimit, all_or_none
from activities.btc.settings import read_cookie
from pipeworks.errors import DataError, ErrorCategory, PermanentError, TransientError
from pipeworks.http import ErrorTally, UpstreamClient
from pipeworks.pagination import JsonRpc, RpcError, batch, call

# btc-rpc.md, How a client classifies answers.
_TRANSIENT_CODES = frozenset({-28})
_TRANSIENT_MESSAGES = ("coinstatsindex is still syncing",)
_PRUNED_MESSAGES = ("pruned data", "not found on disk", "Can't read undo data")


def is_pruned(err: RpcError) -> bool:
    return err.code == -1 and any(m in err.rpc_message for m in _PRUNED_MESSAGES)


def is_missing(err: RpcError) -> bool:
    return err.code == -5


def is_beyond_tip(err: RpcError) -> bool:
    return err.code == -8 and ("out of range" in err.rpc_message
                               or "after current tip" in err.rpc_message)


def is_finding(err: RpcError) -> bool:
    """Answers about the data that the reconciliation reports (btc-rpc.md)."""
    return is_pruned(err) or is_missing(err) or is_beyond_tip(err)


class ChainMismatch(PermanentError):
    pass


class NodeSyncing(TransientError):
    pass


@dataclass
class ChainInfo:
    chain: str
    blocks: int
    best_hash: str
    pruned: bool
    prune_height: int | None


class BtcNode:
    """One node. `network` is the chain expected (`PIPEWORKS_BTC_NETWORK`)."""

    def __init__(self, client: UpstreamClient, network: str, *, concurrency: int = 8,
                 batch_calls: int = 25, cookie_file: Path | None = None) -> None:
        self._client = client
        self.network = network
        self.limit = AimdLimit(concurrency)
        self._batch_calls = batch_calls
        self._cookie_file = cookie_file
        self.rpc = JsonRpc(version="1.0", transient_codes=_TRANSIENT_CODES,
                           transient_messages=_TRANSIENT_MESSAGES,
                           refresh_credentials=self._reread_cookie if cookie_file else None)

    def _reread_cookie(self) -> bool:
        """The node writes a new cookie at every start: after a 401, read it once more."""
        assert self._cookie_file is not None
        try:
            user, password = read_cookie(self._cookie_file)
        except ValueError:
            return False
        self._client.set_basic_auth(user, password)
        return True

    async def _exchange(self, send: Any, tally: ErrorTally) -> Any:
        async with self.limit.slot():
            before = tally.counts.get(ErrorCategory.TRANSIENT.value, 0)
            try:
                return await send()
            finally:
                # The client retried 503s and timeouts in place: each was a sign of load.
                if tally.counts.get(ErrorCategory.TRANSIENT.value, 0) > before:
                    self.limit.overloaded()
                else:
                    self.limit.succeeded()

    async def call(self, method: str, params: Sequence[Any], tally: ErrorTally) -> Any:
        return await self._exchange(
            lambda: call(self._client, method, params, tally=tally, rpc=self.rpc), tally)

    async def calls(self, method: str, params: Sequence[Sequence[Any]], tally: ErrorTally,
                    ) -> list[Any]:
        """One call per params, as concurrent batches: results in order, findings as
        `RpcError` values in place."""
        chunks = [params[i:i + self._batch_calls]
                  for i in range(0, len(params), self._batch_calls)]

        async def one(chunk: Sequence[Sequence[Any]]) -> list[Any]:
            replies: list[Any] = await self._exchange(
                lambda: batch(self._client, [(method, p) for p in chunk], tally=tally,
                              rpc=self.rpc, keep_errors=is_finding), tally)
            return replies

        results = await all_or_none(*(one(c) for c in chunks))
        return [r for chunk in results for r in chunk]

    async def chain_info(self, tally: ErrorTally) -> ChainInfo:
        """`getblockchaininfo`, checked: the expected chain, and not still syncing."""
        info = await self.call("getblockchaininfo", [], tally)
        try:
            chain, blocks, best = str(info["chain"]), int(info["blocks"]), info["bestblockhash"]
            pruned = bool(info.get("pruned", False))
            prune_height = int(info["pruneheight"]) if pruned and "pruneheight" in info else None
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"getblockchaininfo: malformed result: {err}") from None
        if chain != self.network:
            raise ChainMismatch(f"the node is on chain {chain!r}, not {self.network!r} "
                                "(PIPEWORKS_BTC_NETWORK)")
        if info.get("initialblockdownload") is True:
            raise NodeSyncing("the node is still in initial block download")
        return ChainInfo(chain, blocks, str(best), pruned, prune_height)

    async def block_hashes(self, heights: Sequence[int], tally: ErrorTally
                           ) -> list[str | RpcError]:
        found = await self.calls("getblockhash", [[h] for h in heights], tally)
        for height, value in zip(heights, found, strict=True):
            if not isinstance(value, (str, RpcError)):
                raise DataError(f"getblockhash {height}: not a hash: {value!r}")
        return found

    async def block_stats(self, heights: Sequence[int], tally: ErrorTally
                          ) -> list[dict[str, Any] | RpcError]:
        found = await self.calls("getblockstats", [[h] for h in heights], tally)
        for height, value in zip(heights, found, strict=True):
            if not isinstance(value, (dict, RpcError)):
                raise DataError(f"getblockstats {height}: not an object: {type(value)}")
        return found

    async def blocks(self, hashes: Sequence[str], verbosity: int, tally: ErrorTally
                     ) -> list[dict[str, Any] | RpcError]:
        found = await self.calls("getblock", [[h, verbosity] for h in hashes], tally)
        for block_hash, value in zip(hashes, found, strict=True):
            if not isinstance(value, (dict, RpcError)):
                raise DataError(f"getblock {block_hash}: not an object: {type(value)}")
        return found
