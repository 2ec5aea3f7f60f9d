"""Bitcoin amounts: BTC as exact decimals in, integer satoshis out (btc-rpc.md, Units)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from pipeworks.errors import DataError

SATOSHIS_PER_BTC = 100_000_000
MAX_MONEY_SAT = 21_000_000 * SATOSHIS_PER_BTC


def btc_to_sat(value: object, what: str) -> int:
    """A `getblock` / `gettxoutsetinfo` amount (parsed as Decimal, never float) in
    satoshis. Sub-satoshi digits, negative or non-numeric values are data errors."""
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise DataError(f"{what}: amount {value!r} is not a number")
    try:
        sat = Decimal(value) * SATOSHIS_PER_BTC
    except InvalidOperation:
        raise DataError(f"{what}: amount {value!r} is not a number") from None
    if sat != sat.to_integral_value():
        raise DataError(f"{what}: amount {value} has digits below one satoshi")
    if sat < 0 or sat > MAX_MONEY_SAT:
        raise DataError(f"{what}: amount {value} is outside 0..21,000,000 BTC")
    return int(sat)


def subsidy_sat(height: int, halving_interval: int) -> int:
    """The block subsidy at `height`: 50 BTC halved every interval, 0 from the 64th."""
    halvings = height // halving_interval
    return 0 if halvings >= 64 else (50 * SATOSHIS_PER_BTC) >> halvings
