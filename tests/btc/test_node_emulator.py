"""The Bitcoin node emulator (devstack/btc) against contracts/btc-rpc.md, over real HTTP:
Core's own getblockstats on its regtest chain, the real mainnet sample's supply, exact
BTC amounts, the synthetic chain's determinism and consistency, the transport (legacy
and 2.0 replies, batches, statuses, auth, capacity) and the node's events (reorg, prune,
warm-up, outage)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.btc import BtcNodeFaults, BtcNodeServer, SyntheticChain, load_chain
from devstack.btc.chain import Coin
from devstack.btc.codec import display_hex, sha256d
from devstack.btc.consensus import median_time_past
from devstack.btc.script import is_unspendable
from devstack.btc.vendored import regtest_sample
from tests.btc.conftest_node import (
    PASSWORD,
    USER,
    NodeClient,
    mainnet,
    mainnet_server,
    regtest,
    regtest_server,
    synthetic,
    synthetic_chain,
    synthetic_server,
)

__all__ = ["mainnet", "mainnet_server", "regtest", "regtest_server", "synthetic",
           "synthetic_server"]  # fixtures

Node = tuple[BtcNodeServer, NodeClient]
GENESIS = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
SAT = Decimal(100_000_000)
ROOT = Path(__file__).resolve().parents[2]


def sats(amount: Decimal) -> int:
    value = amount * SAT
    assert value == value.to_integral_value(), f"sub-satoshi amount {amount}"
    return int(value)


def subsidy(height: int, interval: int) -> int:
    return 0 if height // interval >= 64 else (50 * 100_000_000) >> (height // interval)


def supply(height: int, interval: int) -> int:
    """Σ subsidy(0..height), era by era."""
    return sum(subsidy(start, interval) * (min(height, start + interval - 1) - start + 1)
               for start in range(0, height + 1, interval))


# What a reconciliation compares: an aggregate-only chain serves them exactly as the built
# block gives them (the other getblockstats fields are estimates there).
COMPARED = ("height", "blockhash", "time", "mediantime", "txs", "ins", "outs", "total_out",
            "totalfee", "avgfee", "subsidy", "utxo_increase", "utxo_increase_actual")


def compared(stats: dict[str, Any]) -> dict[str, Any]:
    return {name: stats[name] for name in COMPARED}


def assert_self_consistent(stats: dict[str, Any]) -> None:
    """getblockstats figures that hold together, estimated or not."""
    n = stats["txs"] - 1
    fee, size, weight = stats["totalfee"], stats["total_size"], stats["total_weight"]
    assert stats["avgfee"] == (fee // n if n else 0)
    assert stats["avgtxsize"] == (size // n if n else 0)
    assert stats["avgfeerate"] == (fee * 4 // weight if weight else 0)
    assert stats["utxo_increase"] == stats["outs"] - stats["ins"]
    assert stats["utxo_increase_actual"] <= stats["utxo_increase"]
    assert stats["utxo_size_inc_actual"] <= stats["utxo_size_inc"]
    if not n:
        assert (fee, size, weight, stats["total_out"], stats["ins"], stats["swtxs"]) == (
            0, 0, 0, 0, 0, 0)
        return
    assert stats["minfee"] <= stats["medianfee"] <= stats["maxfee"] <= fee
    assert stats["minfee"] * n <= fee <= stats["maxfee"] * n
    assert stats["mintxsize"] <= stats["mediantxsize"] <= stats["maxtxsize"] <= size
    assert stats["mintxsize"] * n <= size <= stats["maxtxsize"] * n
    rates = [stats["minfeerate"], *stats["feerate_percentiles"], stats["maxfeerate"]]
    assert rates == sorted(rates)
    assert stats["minfeerate"] <= stats["avgfeerate"] <= stats["maxfeerate"]
    assert 0 <= stats["swtxs"] <= n
    assert stats["swtotal_size"] <= size <= weight <= 4 * size
    assert stats["swtotal_weight"] <= weight


# -- real chains ------------------------------------------------------------------------------


def test_regtest_getblockstats_equal_bitcoin_cores_own(regtest: Node) -> None:
    _, client = regtest
    for expected in regtest_sample().stats:
        height = expected["height"]
        assert client.call("getblockstats", height) == expected
        assert client.call("getblockstats", expected["blockhash"]) == expected
        # A stats list: sorted, only those fields.
        assert client.call("getblockstats", height, ["txs", "totalfee", "ins"]) == {
            "ins": expected["ins"], "totalfee": expected["totalfee"], "txs": expected["txs"]}
    # The contract's example (height 102).
    stats = client.call("getblockstats", 102)
    assert (stats["txs"], stats["ins"], stats["outs"]) == (2, 1, 4)
    assert (stats["total_out"], stats["totalfee"], stats["subsidy"]) == (
        4_999_995_560, 4_440, 5_000_000_000)
    failure = client.error("getblockstats", 102, ["txs", "nonsense"])
    assert (failure.status, failure.code, failure.message) == (
        500, -8, "Invalid selected statistic 'nonsense'")
    assert client.error("getblockstats", -1).message == "Target block height -1 is negative"
    assert client.error("getblockstats", 104).message == \
        "Target block height 104 after current tip 103"
    assert client.error("getblockstats", "00" * 32).code == -5


def test_mainnet_sample_supply_and_genesis(mainnet: Node) -> None:
    _, client = mainnet
    assert client.call("getblockcount") == 438
    assert client.call("getblockhash", 0) == GENESIS
    info = client.call("getblockchaininfo")
    assert (info["chain"], info["blocks"], info["pruned"]) == ("main", 438, False)
    assert info["initialblockdownload"] is False
    genesis = client.call("getblockstats", 0)
    assert (genesis["txs"], genesis["ins"], genesis["outs"], genesis["totalfee"]) == (1, 0, 1, 0)
    assert (genesis["utxo_increase"], genesis["utxo_increase_actual"]) == (1, 0)
    tip = client.call("gettxoutsetinfo", "none")
    assert (tip["height"], tip["txouts"]) == (438, 443)
    assert tip["total_amount"] == Decimal("21900")
    assert tip["total_unspendable_amount"] == Decimal("50")
    assert sum(subsidy(h, 210_000) for h in range(439)) == \
        sats(tip["total_amount"]) + sats(tip["total_unspendable_amount"])
    assert client.call("gettxoutsetinfo", "none", 438) == tip
    at_genesis = client.call("gettxoutsetinfo", "none", 0)
    assert at_genesis["block_info"]["unspendables"]["genesis_block"] == Decimal("50")
    assert (at_genesis["txouts"], at_genesis["total_amount"]) == (0, Decimal(0))
    # Per block: prevout_spent + subsidy = new outputs + coinbase + unspendable.
    for height in (0, 1, 170, 438):
        block = client.call("gettxoutsetinfo", "none", height)["block_info"]
        assert sats(block["prevout_spent"]) + subsidy(height, 210_000) == sats(
            block["new_outputs_ex_coinbase"]) + sats(block["coinbase"]) + sats(
            block["unspendable"])
    # Without the index: a scan of the set at the tip.
    scan = client.call("gettxoutsetinfo")
    assert (scan["txouts"], scan["total_amount"]) == (443, Decimal("21900"))
    assert {"hash_serialized_3", "transactions", "disk_size"} <= scan.keys()
    assert "block_info" not in scan
    # The header hashes to the block hash (real blocks).
    header = client.call("getblockheader", GENESIS, False)
    assert display_hex(sha256d(bytes.fromhex(header))) == GENESIS
    verbose = client.call("getblockheader", GENESIS)
    assert "previousblockhash" not in verbose and verbose["confirmations"] == 439
    assert verbose["chainwork"].endswith("0100010001") and verbose["difficulty"] == 1


def test_getblock_amounts_are_exact_and_agree_with_getblockstats(regtest: Node) -> None:
    _, client = regtest
    raw = client.request("getblock", client.call("getblockhash", 103), 3).text
    # ValueFromAmount: always 8 decimals.
    assert re.search(r'"value":50\.00085560,', raw), raw[:300]
    for height in (101, 102, 103):
        block_hash = client.call("getblockhash", height)
        stats = client.call("getblockstats", height)
        for verbosity in (2, 3):
            block = client.call("getblock", block_hash, verbosity)
            assert block["nTx"] == stats["txs"] == len(block["tx"])
            coinbase, *others = block["tx"]
            assert "fee" not in coinbase
            assert sats(sum(out["value"] for out in coinbase["vout"])) == \
                stats["subsidy"] + stats["totalfee"]
            assert sum(sats(tx["fee"]) for tx in others) == stats["totalfee"]
            assert sum(sats(out["value"]) for tx in others for out in tx["vout"]) == \
                stats["total_out"]
            assert sum(len(tx["vin"]) for tx in others) == stats["ins"]
            assert sum(len(tx["vout"]) for tx in block["tx"]) == stats["outs"]
            if verbosity == 3:
                for tx in others:
                    spent = sum(sats(txin["prevout"]["value"]) for txin in tx["vin"])
                    assert spent - sum(sats(o["value"]) for o in tx["vout"]) == sats(tx["fee"])
            else:
                assert all("prevout" not in txin for tx in others for txin in tx["vin"])
    block = client.call("getblock", client.call("getblockhash", 103), 1)
    assert len(block["tx"]) == 5 and all(isinstance(txid, str) for txid in block["tx"])
    assert {block["size"], block["strippedsize"], block["weight"]} and \
        block["weight"] == 3 * block["strippedsize"] + block["size"]
    nulldata = [out for tx in client.call("getblock", block["hash"], 2)["tx"]
                for out in tx["vout"] if out["scriptPubKey"]["type"] == "nulldata"]
    assert len(nulldata) == 2  # the witness commitment and one OP_RETURN output
    assert client.call("getblock", block["hash"], 0) == \
        client.call("getblock", block["hash"], False) != ""


# -- synthetic chains --------------------------------------------------------------------------


def test_synthetic_is_deterministic_and_seeded() -> None:
    first, second = synthetic_chain(), synthetic_chain()
    other = synthetic_chain(seed=12)
    for height in (0, 1, 50, 150, 259):
        assert first.hash_at(height) == second.hash_at(height) != other.hash_at(height)
        assert first.stats(height) == second.stats(height)
        assert len(first.hash_at(height)) == 64
    assert first.stats(200) != other.stats(200)
    header = first.header(first.hash_at(150))
    assert header.header.prev_hash == first.hash_at(149)


def test_synthetic_replays_to_its_own_totals() -> None:
    """Every prevout exists with the value the block claims; coinstatsindex totals (closed
    form) equal a UTXO replay; aggregate-only stats equal stats of the built blocks on the
    compared fields, and ingested_figures the built block's; mediantime is the median of
    the last 11 headers' times; and the chain has under-claimed coinbases and OP_RETURN
    outputs with value."""
    chain = synthetic_chain(length=200)
    aggregate = synthetic_chain(length=200, aggregate_only=True)
    utxo: dict[tuple[str, int], Coin] = {}
    supply = underclaimed = valued_op_returns = 0
    times: list[int] = []
    for height in range(200):
        block_hash = chain.hash_at(height)
        full = chain.full_block(block_hash)
        times.append(full.block.header.time)
        assert chain.header(block_hash).mediantime == median_time_past(times[-11:])
        for index, tx in enumerate(full.block.txs):
            for txin, coin in zip(tx.inputs, full.undo[index - 1] if index else (),
                                  strict=False):
                assert utxo.pop((txin.prev_txid, txin.prev_index)) == coin
            for n, out in enumerate(tx.outputs):
                if height and not is_unspendable(out.script):
                    utxo[(tx.txid, n)] = Coin(out.value, out.script, height, index == 0)
        stats = chain.block_stats(block_hash)
        estimated = aggregate.block_stats(block_hash)
        assert compared(estimated) == compared(stats)
        assert list(estimated) == list(stats)
        assert_self_consistent(stats)
        assert_self_consistent(estimated)
        ingested = aggregate.ingested_figures(height)
        coinbase, *others = full.block.txs
        assert ingested == chain.ingested_figures(height)
        assert ingested["coinbase_out_sat"] == sum(out.value for out in coinbase.outputs)
        assert ingested["unspendable_sat"] == sum(
            out.value for tx in others for out in tx.outputs if is_unspendable(out.script))
        assert (ingested["tx_count"], ingested["total_fee_sat"]) == (
            stats["txs"], stats["totalfee"])
        supply += subsidy(height, 100)
        index_stats = chain.index_stats(block_hash)
        assert index_stats.txouts == len(utxo)
        assert index_stats.total_amount == sum(coin.value for coin in utxo.values())
        assert supply == index_stats.total_amount + index_stats.total_unspendable_amount
        info = index_stats.block_info
        assert info.prevout_spent + subsidy(height, 100) == \
            info.new_outputs_ex_coinbase + info.coinbase + info.unspendable
        coinbase = sum(out.value for out in full.block.txs[0].outputs)
        assert coinbase <= stats["subsidy"] + stats["totalfee"]
        underclaimed += coinbase < stats["subsidy"] + stats["totalfee"]
        valued_op_returns += info.unspendables.scripts > 0
        assert stats["txs"] == chain.header(block_hash).n_tx == len(full.block.txs)
    assert underclaimed > 0 and valued_op_returns > 0
    assert chain.stats(199)["txs"] > chain.stats(60)["txs"] > 1 == chain.stats(20)["txs"]


def test_aggregate_stats_equal_full_blocks_on_the_compared_fields() -> None:
    """Default block sizes (up to 250 payout-funded transactions): for a sample of heights,
    small to full blocks, on the original chain and after a reorg, the aggregate-only
    chain serves what the built blocks give on the compared fields, and its plan and
    ingested figures agree with the stats."""
    full = SyntheticChain(3_000, seed=5)
    aggregate = SyntheticChain(3_000, seed=5, aggregate_only=True)
    heights = (0, 1, 100, 101, 102, 131, 777, 1_205, 1_999, 2_591, 2_600, 2_998, 2_999)
    sizes = []
    for chain_events in range(2):
        if chain_events:
            assert full.reorg(3, extend=1) == aggregate.reorg(3, extend=1)
            heights = (2_997, 2_998, 2_999, 3_000)
        for height in heights:
            stats, estimated = full.stats(height), aggregate.stats(height)
            assert compared(estimated) == compared(stats), height
            assert_self_consistent(stats)
            assert_self_consistent(estimated)
            sizes.append(stats["txs"])
            ingested, plan = aggregate.ingested_figures(height), full.plan_at(height)
            assert ingested["coinbase_out_sat"] == plan.coinbase_value
            assert ingested["unspendable_sat"] == plan.op_value
            # What a client derives: coinbase - subsidy - fees = -(unclaimed reward).
            assert plan.coinbase_value - stats["subsidy"] - stats["totalfee"] == \
                -ingested["unclaimed_sat"] == -plan.shortfall
            assert (ingested["tx_count"], ingested["input_count"], ingested["output_count"],
                    ingested["total_out_sat"]) == (stats["txs"], stats["ins"], stats["outs"],
                                                   stats["total_out"])
    assert max(sizes) > 250 and min(sizes) == 1 and any(10 < n < 100 for n in sizes)


@pytest.mark.parametrize("max_txs", [2, 250])
def test_aggregate_supply_identity_up_to_a_million(max_txs: int) -> None:
    chain = SyntheticChain(1_000_000, aggregate_only=True, max_txs=max_txs)
    for height in (0, 1, 101, 209_999, 210_000, 420_001, 777_777, 999_999):
        block_hash = chain.hash_at(height)
        index = chain.index_stats(block_hash)
        assert supply(height, 210_000) == index.total_amount + index.total_unspendable_amount
        info = index.block_info
        assert info.prevout_spent + subsidy(height, 210_000) == \
            info.new_outputs_ex_coinbase + info.coinbase + info.unspendable
        stats = chain.stats(height)
        assert_self_consistent(stats)
        assert stats["subsidy"] == subsidy(height, 210_000)
        assert stats["txs"] == chain.header(block_hash).n_tx
        ingested = chain.ingested_figures(height)
        if height:
            assert info.prevout_spent == stats["total_out"] + stats["totalfee"]
            assert info.coinbase == ingested["coinbase_out_sat"]
            assert info.unspendables.scripts == ingested["unspendable_sat"]
            assert ingested["coinbase_out_sat"] - stats["subsidy"] - stats["totalfee"] == \
                -info.unspendables.unclaimed_rewards
    # 1 + max_txs payout-funded transactions + 0..2 more.
    assert max_txs + 1 <= chain.stats(999_999)["txs"] <= max_txs + 3


def test_aggregate_chain_answers_a_millionth_block_quickly() -> None:
    chain = load_chain("synthetic-aggregate:1000000")
    with BtcNodeServer(chain, user=USER, password=PASSWORD,
                       faults=BtcNodeFaults(latency_us_per_tx=0)) as node:
        client = NodeClient(node.url)
        started = time.monotonic()
        block_hash = client.call("getblockhash", 999_999)
        header = client.call("getblockheader", block_hash)
        stats = client.call("getblockstats", 999_999)
        index = client.call("gettxoutsetinfo", "none", 999_999)
        assert time.monotonic() - started < 2.0
        assert header["height"] == stats["height"] == index["height"] == 999_999
        assert header["confirmations"] == 1 and "nextblockhash" not in header
        assert stats["blockhash"] == block_hash and stats["txs"] == header["nTx"] > 250
        assert stats["subsidy"] == subsidy(999_999, 210_000)
        assert supply(999_999, 210_000) == sats(index["total_amount"]) + sats(
            index["total_unspendable_amount"])
        # getblock builds the block from the same plan.
        block = client.call("getblock", block_hash, 2)
        assert sum(sats(tx["fee"]) for tx in block["tx"][1:]) == stats["totalfee"]
        client.close()


def test_synthetic_block_over_http_agrees_with_its_stats(synthetic: Node) -> None:
    node, client = synthetic
    height = 240
    block_hash = client.call("getblockhash", height)
    stats = client.call("getblockstats", block_hash)
    assert stats == node.chain.stats(height)
    block = client.call("getblock", block_hash, 3)
    coinbase, *others = block["tx"]
    assert sum(sats(tx["fee"]) for tx in others) == stats["totalfee"] > 0
    assert sum(sats(o["value"]) for tx in others for o in tx["vout"]) == stats["total_out"]
    assert sum(len(tx["vin"]) for tx in others) == stats["ins"]
    assert sum(1 for tx in others if tx["hash"] != tx["txid"]) == stats["swtxs"]
    assert all(txin["prevout"]["height"] in (height - 20, height) for tx in others
               for txin in tx["vin"])
    # Inputs spend payouts of an older coinbase, and outputs created earlier in the block.
    generated = {txin["prevout"]["generated"] for h in range(height, height + 6)
                 for tx in client.call("getblock", client.call("getblockhash", h), 3)["tx"][1:]
                 for txin in tx["vin"]}
    assert generated == {True, False}
    info = client.call("gettxoutsetinfo", "none", height)
    assert sats(info["block_info"]["coinbase"]) == sats(sum(o["value"]
                                                            for o in coinbase["vout"]))
    assert info["block_info"]["prevout_spent"] == sum(
        txin["prevout"]["value"] for tx in others for txin in tx["vin"])


# -- transport --------------------------------------------------------------------------------


def test_legacy_and_json_rpc_2_replies(mainnet: Node) -> None:
    _, client = mainnet
    ok = client.request("getblockcount")
    assert ok.status == 200 and ok.json() == {"result": 438, "error": None, "id": 1}
    failed = client.request("getblockhash", 439)
    assert failed.status == 500
    assert failed.json() == {"result": None, "id": 1, "error": {
        "code": -8, "message": "Block height out of range"}}
    missing = client.request("getwalletinfo")
    assert missing.status == 404 and missing.json()["error"]["code"] == -32601
    v2 = client.request("getblockhash", 439, version="2.0", request_id="x")
    assert v2.status == 200 and v2.json() == {"jsonrpc": "2.0", "id": "x", "error": {
        "code": -8, "message": "Block height out of range"}}
    assert client.request("getwalletinfo", version="2.0").status == 200
    good = client.request("getblockcount", version="2.0").json()
    assert good == {"jsonrpc": "2.0", "result": 438, "id": 1}
    notification = client.post({"jsonrpc": "2.0", "method": "getblockcount"})
    assert (notification.status, notification.text) == (204, "")
    unsupported = client.request("getblockcount", version="3.0")
    assert unsupported.status == 400 and unsupported.json()["error"]["code"] == -32600
    parse = client.post(content=b'{"method": ')
    assert parse.status == 500 and parse.json() == {
        "result": None, "error": {"code": -32700, "message": "Parse error"}}
    wrong_count = client.request("getblockhash")
    assert wrong_count.status == 500
    error = wrong_count.json()["error"]
    assert error["code"] == -1 and error["message"].startswith("getblockhash height")
    assert client.error("getblockhash", "1").code == -3
    assert client.error("getblockheader", "xyz").message == \
        "hash must be of length 64 (not 3, for 'xyz')"
    named = client.post({"id": 2, "method": "getblockhash", "params": {"height": 1}})
    assert named.json()["result"] == client.call("getblockhash", 1)
    assert client.error("getblockheader", "00" * 32).code == -5


def test_batches_keep_order_and_never_fail_as_a_whole(mainnet: Node) -> None:
    node, client = mainnet
    batch = client.post([
        {"jsonrpc": "2.0", "id": 3, "method": "getblockhash", "params": [439]},
        {"id": 1, "method": "getblockhash", "params": [0]},
        {"jsonrpc": "2.0", "method": "getblockcount"},  # a notification: no reply
        {"id": 2, "method": "nosuchmethod"},
        "not an object",
    ])
    assert batch.status == 200
    replies = batch.json()
    assert [reply.get("id") for reply in replies] == [3, 1, 2, None]
    assert replies[0]["error"]["code"] == -8 and replies[1]["result"] == GENESIS
    assert replies[2]["error"]["code"] == -32601 and replies[3]["error"]["code"] == -32600
    assert client.post([]).json() == []
    log = node.rpc_log.calls()
    assert [entry["method"] for entry in log] == [
        "getblockhash", "getblockhash", "getblockcount", "nosuchmethod"]
    assert node.rpc_log.count("getblockhash") == 2


def test_http_statuses(mainnet: Node) -> None:
    node, client = mainnet
    anonymous = NodeClient(node.url, auth=None)
    missing = anonymous.request("getblockcount")
    assert missing.status == 401 and missing.text == ""
    assert missing.headers["WWW-Authenticate"] == 'Basic realm="jsonrpc"'
    wrong = NodeClient(node.url, auth=(USER, "nope"))
    started = time.monotonic()
    assert wrong.request("getblockcount").status == 401
    assert time.monotonic() - started >= 0.25
    assert client.post({"id": 1, "method": "getblockcount"}, path="wallet/x").status == 404
    not_found = client.post(content=b"", path="other", method="GET")
    assert (not_found.status, not_found.text) == (404, "")
    get = client.post(content=b"", method="GET")
    assert (get.status, get.text) == (405, "JSONRPC server handles only POST requests")
    anonymous.close()
    wrong.close()


def test_whitelist_allowip_and_min_latency() -> None:
    with BtcNodeServer(load_chain("regtest-sample"), user=USER, password=PASSWORD,
                       rpcwhitelist=["getblockcount", "getblockhash"],
                       min_latency=0.2) as node:
        client = NodeClient(node.url)
        started = time.monotonic()
        assert client.call("getblockcount") == 103
        assert time.monotonic() - started >= 0.2
        refused = client.request("getblockstats", 1)
        assert (refused.status, refused.text) == (403, "")
        assert client.post([{"id": 1, "method": "getblockcount"},
                            {"id": 2, "method": "getblock", "params": [GENESIS]}]).status == 403
        client.close()
    with BtcNodeServer(load_chain("regtest-sample"), rpcallowip=["10.0.0.0/8"]) as node:
        assert node.cookie_file is not None and Path(node.cookie_file).exists()
        assert NodeClient(node.url, auth=None).request("getblockcount").status == 403
        cookie_dir = Path(node.cookie_file).parent
    assert not cookie_dir.exists()


def test_cookie_auth_renews_at_every_start(tmp_path: Path) -> None:
    node = BtcNodeServer(load_chain("regtest-sample"), cookie_dir=tmp_path)
    with node:
        cookie_file = tmp_path / ".cookie"
        content = cookie_file.read_text()
        user, _, secret = content.partition(":")
        assert user == "__cookie__" and re.fullmatch(r"[0-9a-f]{64}", secret)
        assert NodeClient(node.url, auth=(user, secret)).call("getblockcount") == 103
        node.rotate_cookie()
        assert NodeClient(node.url, auth=(user, secret)).request("getblockcount").status == 401
        renewed = cookie_file.read_text().partition(":")[2]
        assert renewed != secret
        assert NodeClient(node.url, auth=(user, renewed)).call("getblockcount") == 103
    assert not cookie_file.exists()


def test_work_queue_capacity_and_503_storms() -> None:
    with BtcNodeServer(load_chain("regtest-sample"), user=USER, password=PASSWORD,
                       rpcthreads=1, rpcworkqueue=1,
                       faults=BtcNodeFaults(hold_after=0)) as node:
        results: list[int] = []

        def request() -> None:
            results.append(NodeClient(node.url).request("getblockcount").status)

        workers = [threading.Thread(target=request) for _ in range(2)]
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + 5
        while node.queue.snapshot()["waiting"] + node.queue.snapshot()["running"] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        overflow = NodeClient(node.url).request("getblockcount")
        assert (overflow.status, overflow.text) == (503, "Work queue depth exceeded")
        node.faults.set(hold_after=None)
        for worker in workers:
            worker.join(5)
        assert results == [200, 200]
        node.faults.set(work_queue_rate=1.0)
        storm = NodeClient(node.url).request("getblockcount")
        assert (storm.status, storm.text) == (503, "Work queue depth exceeded")
        assert node.stats.snapshot()["by_route"]["work_queue"] == {"503": 2}


def test_latency_grows_with_the_block(synthetic: Node) -> None:
    node, client = synthetic
    node.faults.set(latency_us_per_tx=5_000)
    small = client.request("getblockstats", 10)  # 1 transaction
    big = client.request("getblockstats", 250)  # 61+ transactions
    assert big.elapsed_s - small.elapsed_s > 0.2
    node.faults.set(latency_us_per_tx=0)


# -- node events ------------------------------------------------------------------------------


def test_warm_up_by_requests_and_by_time(mainnet: Node) -> None:
    node, client = mainnet
    node.warm_up(requests=2)
    for _ in range(2):
        failure = client.error("getblockcount")
        assert (failure.status, failure.code, failure.message) == (
            500, -28, "Loading block index…")
    assert client.call("getblockcount") == 438
    node.warm_up(seconds=0.3, message="Verifying blocks…")
    assert client.request("nosuchmethod", version="2.0").json()["error"]["code"] == -28
    time.sleep(0.35)
    assert client.call("getblockcount") == 438


def test_reorg_leaves_old_blocks_off_the_main_chain(mainnet: Node) -> None:
    node, client = mainnet
    old = [client.call("getblockhash", h) for h in (436, 437, 438)]
    new = node.reorg(3)
    assert [client.call("getblockhash", h) for h in (436, 437, 438)] == new
    assert set(new).isdisjoint(old) and client.call("getblockcount") == 438
    header = client.call("getblockheader", old[0])
    assert header["confirmations"] == -1 and "nextblockhash" not in header
    assert client.call("getblock", old[2])["confirmations"] == -1
    assert client.call("getblockheader", new[0])["previousblockhash"] == \
        client.call("getblockhash", 435)
    assert client.call("getblockheader", client.call("getblockhash", 435))["nextblockhash"] \
        == new[0]
    tips = client.call("getchaintips")
    assert tips[0] == {"height": 438, "hash": new[2], "branchlen": 0, "status": "active"}
    assert {"height": 438, "hash": old[2], "branchlen": 3, "status": "valid-fork"} in tips
    # The old block keeps its own figures; the new ones claim 1000 sat less each.
    assert client.call("getblockstats", old[2])["blockhash"] == old[2]
    index = client.call("gettxoutsetinfo", "none")
    assert sats(index["total_unspendable_amount"]) == 50 * 100_000_000 + 3 * 1000
    assert sats(client.call("gettxoutsetinfo", "none", old[2])["total_amount"]) == \
        2_190_000_000_000
    # Real blocks: the new header hashes to the new hash.
    raw = client.call("getblockheader", new[2], False)
    assert display_hex(sha256d(bytes.fromhex(raw))) == new[2]
    node.extend(2)
    assert client.call("getblockcount") == 440


def test_synthetic_reorg_and_tip_moves(synthetic: Node) -> None:
    node, client = synthetic
    old_tip = client.call("getblockhash", 259)
    new = node.reorg(5, extend=1)
    assert client.call("getblockcount") == 260 and client.call("getblockhash", 260) == new[-1]
    assert client.call("getblockheader", old_tip)["confirmations"] == -1
    assert client.call("getblockstats", 259) != client.call("getblockstats", old_tip)
    info = client.call("gettxoutsetinfo", "none", 260)
    assert sum(subsidy(h, 100) for h in range(261)) == sats(info["total_amount"]) + sats(
        info["total_unspendable_amount"])
    node.set_tip(200)
    assert client.call("getblockcount") == 200
    assert client.error("getblockhash", 201).message == "Block height out of range"
    assert client.error("getblockheader", new[-1]).code == -5


def test_prune_hides_block_data_but_not_headers(mainnet: Node) -> None:
    node, client = mainnet
    node.prune(100)
    info = client.call("getblockchaininfo")
    assert (info["pruned"], info["pruneheight"]) == (True, 100)
    block_hash = client.call("getblockhash", 50)
    for failure in (client.error("getblockstats", 50), client.error("getblock", block_hash)):
        assert (failure.status, failure.code, failure.message) == (
            500, -1, "Block not available (pruned data)")
    assert client.call("getblockheader", block_hash)["height"] == 50
    assert client.call("getblockstats", 100)["height"] == 100
    assert client.call("gettxoutsetinfo", "none", 50)["height"] == 50


def test_disk_and_index_faults(mainnet: Node) -> None:
    node, client = mainnet
    node.faults.set(missing_block_heights=(5,), missing_undo_heights=(170,), index_height=400)
    assert client.error("getblock", client.call("getblockhash", 5)).message == \
        "Block not found on disk"
    assert client.error("getblockstats", 170).message == "Can't read undo data from disk"
    block = client.call("getblock", client.call("getblockhash", 170), 3)
    assert "fee" not in block["tx"][1] and "prevout" not in block["tx"][1]["vin"][0]
    syncing = client.error("gettxoutsetinfo", "none", 438)
    assert (syncing.code, syncing.message) == (
        -32603, "Unable to get data because coinstatsindex is still syncing. Current "
                "height: 400")
    assert client.call("gettxoutsetinfo", "none", 400)["height"] == 400
    node.state.coinstatsindex = False
    assert client.error("gettxoutsetinfo", "none", 10).message == \
        "Querying specific block heights requires coinstatsindex"
    assert "block_info" not in client.call("gettxoutsetinfo", "none")


def test_network_served_is_configurable(mainnet: Node) -> None:
    node, client = mainnet
    node.set_network("test")
    assert client.call("getblockchaininfo")["chain"] == "test"
    node.set_ibd(True)
    info = client.call("getblockchaininfo")
    assert info["initialblockdownload"] is True and info["headers"] > info["blocks"]


def test_outage_refuses_connections_then_the_node_comes_back(regtest: Node) -> None:
    node, _ = regtest
    node.outage(0.6)
    start = node.now()
    with pytest.raises(httpx.ConnectError):
        NodeClient(node.url).request("getblockcount")
    time.sleep(0.8)
    assert NodeClient(node.url).call("getblockcount") == 103
    assert node.requests_between(start, start + 0.55) == []
    assert node.rpc_log.between(start, start + 0.55) == []
    # Through the admin route (its answer gets out before the port closes), ended early.
    admin = httpx.post(node.url + "_admin/outage", json={"seconds": 30})
    assert admin.status_code == 200 and admin.json()["outage"]["mode"] == "refuse"
    time.sleep(0.3)
    with pytest.raises(httpx.ConnectError):
        NodeClient(node.url).request("getblockcount")
    node.end_outage()
    assert NodeClient(node.url).call("getblockcount") == 103


def test_outage_resets_connections_and_logs_nothing_between_requests(regtest: Node) -> None:
    node, client = regtest
    node.outage(0.5, mode="reset")
    with pytest.raises(httpx.TransportError):
        client.request("getblockcount")
    quiet_from = node.now()
    time.sleep(0.6)
    quiet_to = node.now()
    assert client.call("getblockcount") == 103
    log = node.stats.log()
    assert [entry["fault"] for entry in log] == ["outage", None]
    assert log[0]["status"] is None  # dropped
    assert node.requests_between(quiet_from, quiet_to) == []


def test_admin_routes(synthetic: Node) -> None:
    node, client = synthetic
    admin = httpx.Client(base_url=node.url.rstrip("/"), timeout=10)
    assert admin.get("/_admin/health").json() == {"status": "ok"}
    reorged = admin.post("/_admin/reorg", json={"depth": 2}).json()
    assert reorged["tip"] == 259 and len(reorged["hashes"]) == 2
    assert client.call("getblockhash", 259) == reorged["hashes"][-1]
    assert admin.post("/_admin/prune", json={"below": 10}).json()["prune_height"] == 10
    assert admin.post("/_admin/warmup", json={"requests": 1}).status_code == 200
    assert client.error("getblockcount").code == -28
    assert admin.post("/_admin/network", json={"chain": "signet"}).status_code == 200
    assert client.call("getblockchaininfo")["chain"] == "signet"
    assert admin.post("/_admin/network", json={"chain": "mars"}).status_code == 422
    calls = admin.get("/_admin/rpc").json()
    assert calls["by_method"]["getblockcount"] == {"calls": 1, "errors": 1}
    assert admin.patch("/_admin/faults", json={"work_queue_rate": 0.5}).json()[
        "work_queue_rate"] == 0.5
    assert admin.post("/_admin/reset", json={}).status_code == 200
    assert admin.get("/_admin/chain").json()["tip"] == 259
    assert admin.get("/_admin/stats").json()["total"] == 0
    admin.close()


def test_cli_prints_its_url_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.btc", "--port", "0", "--chain", "synthetic:300",
         "--user", USER, "--password", PASSWORD, "--latency-us-per-tx", "0",
         "--max-txs", "3", "--tx-growth", "1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        assert found, line
        client = NodeClient(found.group(1))
        assert client.call("getblockcount") == 299
        # Block sizes as asked: at most 3 payout-funded transactions (+ 2, + the coinbase).
        expected = SyntheticChain(300, max_txs=3, tx_growth=1)
        assert [client.call("getblockstats", h)["txs"] for h in (100, 101, 103, 299)] == [
            expected.stats(h)["txs"] for h in (100, 101, 103, 299)]
        assert 4 <= expected.stats(299)["txs"] <= 6
        client.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_amount_json_is_core_like() -> None:
    from devstack.btc.jsonout import btc, double, dumps

    text = dumps({"a": btc(2_190_000_000_000), "b": btc(1), "c": btc(-50), "d": double(1.0),
                  "e": [btc(0)]})
    assert text == ('{"a":21900.00000000,"b":0.00000001,"c":-0.00000050,"d":1,'
                    '"e":[0.00000000]}')
    parsed: Any = json.loads(text, parse_float=Decimal)
    assert parsed["b"] * SAT == 1


def test_synthetic_chain_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        SyntheticChain(0)
    with pytest.raises(ValueError):
        SyntheticChain(10, network="mars")
    with pytest.raises(ValueError):
        load_chain("synthetic:x")
    with pytest.raises(ValueError):
        load_chain("mainnet-sample", max_txs=3)
    with pytest.raises(ValueError):
        SyntheticChain(10, max_txs=0)
    chain = load_chain("synthetic-aggregate:10", max_txs=3, tx_growth=2)
    assert chain.describe()["max_txs"] == 3 and chain.describe()["tx_growth"] == 2
