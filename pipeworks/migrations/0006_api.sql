-- `pipeworks serve`: every request that starts or cancels a run (who, what, when,
-- outcome), kept append-only; and the index behind the API's newest-first run lists.
CREATE TABLE pipeline.api_audit (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    key_name    text,                -- null: no valid key was presented
    role        text,
    action      text NOT NULL,       -- 'start' | 'cancel'
    pipeline    text,
    workflow_id text,
    run_id      text,
    request     jsonb,
    status      int NOT NULL,        -- the HTTP status answered
    outcome     text NOT NULL,       -- 'started' | 'attached' | 'cancel_sent' | 'refused'
    detail      text,
    client      text
);
CREATE INDEX api_audit_at_idx ON pipeline.api_audit (at DESC);

CREATE INDEX runs_newest_idx ON pipeline.runs (started_at DESC, run_id DESC);
CREATE INDEX runs_pipeline_newest_idx ON pipeline.runs (pipeline, started_at DESC, run_id DESC);
