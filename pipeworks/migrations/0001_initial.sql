-- The kernel's tables: runs, dead letters, landing, change log, leases.
CREATE SCHEMA IF NOT EXISTS pipeline;

CREATE TABLE pipeline.runs (
    workflow_id text,
    run_id      text PRIMARY KEY,
    pipeline    text,
    params      jsonb,
    status      text,
    started_at  timestamptz,
    finished_at timestamptz,
    stats       jsonb
);
CREATE INDEX runs_workflow_idx ON pipeline.runs (workflow_id);

CREATE TABLE pipeline.dead_letters (
    run_id     text,
    entity     text,
    payload    jsonb,
    reason     text,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Where the item was landed: makes a re-staged page idempotent.
    load_id    text,
    page_no    int,
    item_index int,
    UNIQUE (load_id, page_no, item_index)
);
CREATE INDEX dead_letters_run_idx ON pipeline.dead_letters (run_id);

-- One row per fetched stream (a "load", as dlt calls it).
CREATE TABLE pipeline.loads (
    load_id      text PRIMARY KEY,
    run_id       text NOT NULL,
    entity       text NOT NULL,
    scope        text,
    source_path  text NOT NULL,
    status       text NOT NULL CHECK (status IN ('fetching', 'landed', 'staged')),
    pages        int NOT NULL DEFAULT 0,
    items        int NOT NULL DEFAULT 0,
    started_at   timestamptz NOT NULL DEFAULT now(),
    landed_at    timestamptz,
    staged_at    timestamptz,
    stage_result jsonb
);
CREATE INDEX loads_run_idx ON pipeline.loads (run_id);

-- Raw upstream pages, bytes as received: landing never fails on content.
CREATE TABLE pipeline.landed_pages (
    load_id     text NOT NULL,
    page_no     int NOT NULL,
    body        bytea NOT NULL,
    item_count  int NOT NULL,
    next_cursor text,
    fetched_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (load_id, page_no)
);

-- Before-image of the first change a run makes to a row: enough to undo it exactly.
CREATE TABLE pipeline.changes (
    id             bigserial PRIMARY KEY,
    run_id         text NOT NULL,
    scope          text NOT NULL,
    table_name     text NOT NULL,
    row_key        text NOT NULL,
    op             text NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
    before         jsonb,
    created_at     timestamptz NOT NULL DEFAULT now(),
    compensated_at timestamptz,
    UNIQUE (run_id, table_name, row_key)
);
CREATE INDEX changes_run_scope_idx ON pipeline.changes (run_id, scope);

-- At most one run writes what a lease key covers at a time (see pipeworks/leases.py).
CREATE TABLE pipeline.leases (
    lease_key   text PRIMARY KEY,
    workflow_id text NOT NULL,
    run_id      text NOT NULL,
    acquired_at timestamptz NOT NULL DEFAULT now()
);
