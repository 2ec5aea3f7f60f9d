"""The Bitcoin reconciliation pipeline's activities: a node client to btc-rpc.md, the
ingest of blocks and transactions with `btc.block_calcs`, and the reconciliation of our
figures against the node's, height by height."""

PIPELINE = "btc_reconcile"
