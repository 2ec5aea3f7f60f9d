-- One row per rate-limited resource (e.g. an upstream host), shared by every worker:
-- `next_slot` is the earliest moment the next request may go (GCRA).
CREATE TABLE pipeline.rate_limits (
    name      text PRIMARY KEY,
    next_slot timestamptz NOT NULL
);
