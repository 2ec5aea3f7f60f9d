"""Consensus figures the node reports: block subsidy and halvings, target, work and
difficulty from ``nBits``, median time past, and the BIP30 exceptions of mainnet."""

from __future__ import annotations

from collections.abc import Sequence

COIN = 100_000_000
INITIAL_SUBSIDY = 50 * COIN
NETWORKS = ("main", "test", "testnet4", "signet", "regtest")
# Heights between halvings (btc-rpc.md: 150 on regtest, 210,000 elsewhere).
HALVING_INTERVAL = {"main": 210_000, "test": 210_000, "testnet4": 210_000, "signet": 210_000,
                    "regtest": 150}
POW_LIMIT_BITS = {"main": 0x1D00FFFF, "test": 0x1D00FFFF, "testnet4": 0x1D00FFFF,
                  "signet": 0x1E0377AE, "regtest": 0x207FFFFF}

# Mainnet's duplicate coinbases (BIP30). The earlier two were overwritten: Core's
# coinstatsindex books their subsidy as ``unspendables.bip30`` ...
BIP30_UNSPENDABLE = {
    91_722: "00000000000271a2dc26e7667f8419f2e15416dc6955e5a6c6cdf3f2574dd08e",
    91_812: "00000000000af0aed4792b1acee3d966af36cf5def14935db8de83d6f9306f2f",
}
# ... and getblockstats leaves the repeats' coinbase outputs out of utxo_increase_actual.
BIP30_REPEAT = {
    91_842: "00000000000a4d0a398161ffc163c503763b1f4360639393e0e4c8e300e0caec",
    91_880: "00000000000743f190a18c5577a3c2d2a1f610ae9601ac046a38084ccb7cd721",
}


def check_network(network: str) -> str:
    if network not in NETWORKS:
        raise ValueError(f"unknown network {network!r}; choose from {', '.join(NETWORKS)}")
    return network


def subsidy(height: int, halving_interval: int) -> int:
    """``GetBlockSubsidy``: 50 BTC halved every interval, 0 from the 64th halving."""
    halvings = height // halving_interval
    return 0 if halvings >= 64 else INITIAL_SUBSIDY >> halvings


def target(bits: int) -> int:
    exponent, mantissa = bits >> 24, bits & 0x007FFFFF
    if exponent <= 3:
        return mantissa >> (8 * (3 - exponent))
    return mantissa << (8 * (exponent - 3))


def work(bits: int) -> int:
    """``GetBlockProof``: expected hashes for a block at this target."""
    return (1 << 256) // (target(bits) + 1)


def difficulty(bits: int) -> float:
    """``GetDifficulty``: the same float arithmetic as Core, for the same digits."""
    shift = (bits >> 24) & 0xFF
    value = 0x0000FFFF / (bits & 0x00FFFFFF)
    while shift < 29:
        value *= 256.0
        shift += 1
    while shift > 29:
        value /= 256.0
        shift -= 1
    return value


def median_time_past(times: Sequence[int]) -> int:
    """Median of the last (up to) 11 block times, the block's own included."""
    ordered = sorted(times[-11:])
    return ordered[len(ordered) // 2]
