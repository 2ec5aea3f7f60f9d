"""The Bitcoin pipeline's pure parts: amounts, a node's block as our rows (against
bitcoin-etl's export of real blocks), the per-height comparison and the batch sizer."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from activities.btc.amounts import btc_to_sat, subsidy_sat
from activities.btc.blocks import block_rows
from activities.btc.compare import Ours, coinbase_findings, compare_height
from pipeworks.errors import DataError
from pipeworks.pagination import RpcPermanentError
from workflows.btc.sizing import BatchSizer

DATA = Path(__file__).parent / "data" / "bitcoin-etl"


def getblock(block_hash_prefix: str) -> dict[str, Any]:
    [path] = DATA.glob(f"rpc_response_getblock_{block_hash_prefix}*_2.json")
    block: dict[str, Any] = json.loads(path.read_text(), parse_float=Decimal)
    return block


def expected_transactions(name: str) -> list[dict[str, Any]]:
    text = (DATA / f"expected_transactions_{name}.json").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_amounts_are_exact_satoshis_and_refuse_sub_satoshi_or_negative() -> None:
    assert btc_to_sat(Decimal("0.00000001"), "x") == 1
    assert btc_to_sat(Decimal("50.00000000"), "x") == 5_000_000_000
    assert btc_to_sat(Decimal("20999999.97690000"), "x") == 2_099_999_997_690_000
    for bad in (Decimal("0.000000001"), Decimal("-1"), Decimal("21000000.00000001"),
                "1", True, None):
        with pytest.raises(DataError):
            btc_to_sat(bad, "x")
    assert subsidy_sat(0, 210_000) == 5_000_000_000
    assert subsidy_sat(210_000, 210_000) == 2_500_000_000
    assert subsidy_sat(150, 150) == 2_500_000_000
    assert subsidy_sat(64 * 210_000, 210_000) == 0


@pytest.mark.parametrize(("prefix", "name"), [
    ("000000000019d6689c", "block_0"), ("00000000839a8e6886", "block_1"),
    ("000000001aeae19580", "block_without_transactions")])
def test_coinbase_only_blocks_become_one_coinbase_row(prefix: str, name: str) -> None:
    rows = block_rows(getblock(prefix))
    [expected] = expected_transactions(name)
    [tx] = rows.transactions
    assert tx[2] == expected["hash"] and tx[3] is True
    assert (tx[4], tx[5]) == (0, expected["output_count"])  # the coinbase input is none
    assert tx[7] == expected["output_value"] and tx[8] is None
    assert rows.block[1] == expected["block_number"]


def test_prevouts_give_exact_input_values_and_fees() -> None:
    """Block 50001 with its spent outputs (verbosity 3's `prevout`, taken from
    bitcoin-etl's enriched export): every row equals bitcoin-etl's."""
    block = getblock("000000001c920d495e")
    expected = {t["hash"]: t for t in expected_transactions("50001_50002")
                if t["block_number"] == 50001}
    for tx in block["tx"][1:]:
        inputs = expected[tx["txid"]]["inputs"]
        for vin, spent in zip(tx["vin"], inputs, strict=True):
            vin["prevout"] = {"value": Decimal(spent["value"]) / 100_000_000,
                              "generated": False, "height": 0}
    rows = block_rows(block)
    assert len(rows.transactions) == 3
    for tx in rows.transactions:
        want = expected[tx[2]]
        assert tx[3] == want["is_coinbase"]
        assert tx[5] == want["output_count"] and tx[7] == want["output_value"]
        if not want["is_coinbase"]:
            assert (tx[4], tx[6], tx[8]) == (want["input_count"], want["input_value"],
                                             want["fee"])


def test_without_prevouts_input_values_and_fees_stay_unknown() -> None:
    rows = block_rows(getblock("000000001c920d495e"))
    assert [tx[8] for tx in rows.transactions] == [None, None, None]
    assert [tx[6] for tx in rows.transactions[1:]] == [None, None]


def test_a_sub_satoshi_output_is_a_data_error_naming_the_output() -> None:
    block = getblock("000000001c920d495e")
    block["tx"][1]["vout"][0]["value"] = Decimal("0.123456789")
    with pytest.raises(DataError, match="output 0"):
        block_rows(block)


STATS = {"height": 10, "blockhash": "h10", "txs": 3, "ins": 2, "outs": 5,
         "total_out": 1000, "totalfee": 50, "subsidy": 5_000_000_000}
CALCS = {"block_hash": "h10", "tx_count": 3, "input_count": 2, "output_count": 5,
         "total_out_sat": 1000, "total_fee_sat": 50, "coinbase_out_sat": 5_000_000_050,
         "subsidy_sat": 5_000_000_000, "unclaimed_sat": 0}


def ours(**changes: Any) -> Ours:
    given = changes.pop("calcs", {})
    calcs = None if given is None else {**CALCS, **given}
    values: dict[str, Any] = {"height": 10, "main_blocks": 1, "block_hash": "h10",
                              "tx_rows": 3, "negative_fees": 0, "calcs": calcs, **changes}
    return Ours(**values)


def categories(found: Any) -> list[tuple[str, str]]:
    return sorted((f.category, f.field) for f in found.findings)


def test_equal_figures_find_nothing() -> None:
    verdict = compare_height(ours(), "h10", STATS)
    assert verdict.findings == [] and not verdict.needs_block and verdict.weight == 3


def test_each_difference_is_its_category() -> None:
    assert categories(compare_height(ours(calcs={"total_fee_sat": 51, "unclaimed_sat": 1}),
                                     "h10", STATS)) == [("value_mismatch", "total_fee_sat")]
    assert categories(compare_height(ours(calcs={"output_count": 4}), "h10", STATS)) == [
        ("count_mismatch", "output_count")]
    assert categories(compare_height(ours(tx_rows=2), "h10", STATS)) == [
        ("partial_block", "rows")]
    assert categories(compare_height(ours(tx_rows=4), "h10", STATS)) == [
        ("duplicate_block", "rows")]
    # Stale: the hash decides, and no figure is compared.
    assert categories(compare_height(ours(block_hash="old", calcs={"tx_count": 9}), "h10",
                                     STATS)) == [("stale_block", "hash")]
    assert categories(compare_height(ours(main_blocks=0, block_hash=None, tx_rows=0,
                                          calcs=None), "h10", STATS)) == [
        ("missing_block", "hash")]
    assert categories(compare_height(ours(negative_fees=1), "h10", STATS)) == [
        ("invariant_violation", "fee_sat")]
    over = compare_height(ours(calcs={"coinbase_out_sat": 5_000_000_051,
                                      "unclaimed_sat": -1}), "h10", STATS)
    assert categories(over) == [("invariant_violation", "coinbase_out_sat")]
    assert over.needs_block  # our coinbase differs from the node's subsidy + fees


def test_answers_that_are_findings() -> None:
    pruned = RpcPermanentError("getblockstats", -1, "Block not available (pruned data)")
    assert categories(compare_height(ours(), "h10", pruned)) == [("unverifiable", "block")]
    beyond = RpcPermanentError("getblockhash", -8, "Block height out of range")
    assert compare_height(ours(), beyond, STATS).beyond_tip


def test_coinbase_drill_down_finds_underclaims_and_our_mistakes() -> None:
    under = {**CALCS, "coinbase_out_sat": 5_000_000_049, "unclaimed_sat": 1}
    block: dict[str, Any] = {"tx": []}
    assert [(f.category, f.severity) for f in coinbase_findings(
        10, under, STATS, block, 5_000_000_049)] == [("underclaim", "info")]
    assert [f.category for f in coinbase_findings(
        10, under, STATS, block, 5_000_000_050)] == ["value_mismatch"]


def test_the_batch_size_adapts_within_bounds() -> None:
    sizer = BatchSizer(100, 1, 5000, 20.0)
    # 100 heights of 10 transactions in 2 s: 2 ms per transaction, 20 s is 10,000
    # transactions, 1,000 heights; but it grows at most twice per step.
    sizer.observe(100, 1000, 2000)
    assert sizer.size == 200
    for _ in range(10):
        sizer.observe(sizer.size, sizer.size * 10, sizer.size * 20)
    assert sizer.size == 1000
    sizer.failed()
    assert sizer.size == 500
    sizer.observe(500, 5000, 100_000)  # suddenly 10x slower: shrinks at once
    assert sizer.size < 500
    for _ in range(20):
        sizer.observe(sizer.size, sizer.size, 1)  # nearly free: capped at max
    assert sizer.size == 5000
    seeded = BatchSizer.seeded(100, 1, 5000, 20.0, ms_per_weight=2.0, weight_per_height=10.0)
    assert seeded.size == 1000
    assert BatchSizer.from_dict(seeded.as_dict()) == seeded
