-- An undo marks the run's loads `compensated` first: that waits for a stage still
-- holding its load row, and makes any later stage attempt of the run refuse to write.
ALTER TABLE pipeline.loads DROP CONSTRAINT loads_status_check;
ALTER TABLE pipeline.loads ADD CONSTRAINT loads_status_check
    CHECK (status IN ('fetching', 'landed', 'staged', 'compensated'));
CREATE INDEX loads_run_scope_idx ON pipeline.loads (run_id, scope);
