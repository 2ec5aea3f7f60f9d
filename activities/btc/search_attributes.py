"""The Bitcoin pipeline's search attributes, besides the kernel's `Pipeline` and `Stage`:
`temporal workflow list --query "BtcNetwork='main' AND BtcBreaker='open'"`."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

BTC_NETWORK = SearchAttributeKey.for_keyword("BtcNetwork")
# closed, open or half_open: the reconciliation's circuit breaker on the node.
BTC_BREAKER = SearchAttributeKey.for_keyword("BtcBreaker")

ALL = (BTC_NETWORK, BTC_BREAKER)
