-- The Bitcoin reconciliation pipeline's tables (interfaces.md, "Bitcoin reconciliation
-- pipeline"). Amounts are integer satoshis. `load_id` names the ingest batch that last
-- wrote a row (`<run id>/<lo>-<hi>`). Blocks, transactions and calcs are written through
-- the kernel's merge (change-logged, undone with a failed ingest); findings and batch
-- records are append-only audit rows, kept whatever happens to the run.
CREATE SCHEMA IF NOT EXISTS btc;

CREATE TABLE btc.blocks (
    hash      text PRIMARY KEY,
    height    int NOT NULL,
    prev_hash text,
    time      timestamptz,
    n_tx      int NOT NULL,
    size      int,
    weight    int,
    is_main   boolean NOT NULL,
    load_id   text
);
-- At most one main-chain block per height (a reorg flips the old one first).
CREATE UNIQUE INDEX blocks_main_height ON btc.blocks (height) WHERE is_main;
CREATE INDEX blocks_height ON btc.blocks (height);

CREATE TABLE btc.transactions (
    block_hash       text NOT NULL,
    tx_index         int NOT NULL,
    txid             text NOT NULL,           -- not unique (BIP30)
    is_coinbase      boolean NOT NULL,
    input_count      int NOT NULL,
    output_count     int NOT NULL,
    input_value_sat  bigint,                  -- null: the node gave no prevouts
    output_value_sat bigint NOT NULL,
    fee_sat          bigint,                  -- null for the coinbase and without prevouts
    -- Outputs that never enter the UTXO set (OP_RETURN and other unspendable scripts).
    unspendable_outputs   int NOT NULL DEFAULT 0,
    unspendable_value_sat bigint NOT NULL DEFAULT 0,
    load_id          text,
    PRIMARY KEY (block_hash, tx_index)
);

CREATE TABLE btc.block_calcs (
    height           int PRIMARY KEY,
    block_hash       text NOT NULL,
    tx_count         int NOT NULL,
    input_count      int NOT NULL,
    output_count     int NOT NULL,
    total_out_sat    bigint NOT NULL,
    total_fee_sat    bigint,
    coinbase_out_sat bigint,
    subsidy_sat      bigint NOT NULL,
    unclaimed_sat    bigint,
    unspendable_sat  bigint NOT NULL DEFAULT 0,
    calc_version     text NOT NULL,
    computed_at      timestamptz NOT NULL DEFAULT now(),
    load_id          text
);

CREATE TABLE btc.discrepancies (
    id            bigserial PRIMARY KEY,
    height        int NOT NULL,
    "check"       text NOT NULL,
    field         text NOT NULL,
    ours          numeric,
    theirs        numeric,
    category      text NOT NULL,
    severity      text NOT NULL CHECK (severity IN ('error', 'warning', 'info')),
    detail        jsonb NOT NULL DEFAULT '{}',
    first_run_id  text NOT NULL,
    last_run_id   text NOT NULL,
    first_seen_at timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    resolved_at   timestamptz,
    resolved_run_id text
);
-- At most one open finding per (height, check, field): a retried batch or a later run
-- that sees it again updates it instead of adding one.
CREATE UNIQUE INDEX discrepancies_open ON btc.discrepancies (height, "check", field)
    WHERE resolved_at IS NULL;
CREATE INDEX discrepancies_run ON btc.discrepancies (last_run_id);

CREATE TABLE btc.recon_batches (
    run_id    text NOT NULL,   -- the first run id of the continue-as-new chain
    lo        int NOT NULL,
    hi        int NOT NULL,
    weight    int NOT NULL,
    attempt   int NOT NULL,
    wall_ms   int NOT NULL,
    rpc_ms    int NOT NULL,
    db_ms     int NOT NULL,
    outcome   text NOT NULL CHECK (outcome IN ('ok', 'failed')),
    findings  int NOT NULL DEFAULT 0,
    network   text NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, lo, attempt)
);
-- Each height is reconciled once per run: one committed batch covers it.
CREATE UNIQUE INDEX recon_batches_ok ON btc.recon_batches (run_id, lo) WHERE outcome = 'ok';
