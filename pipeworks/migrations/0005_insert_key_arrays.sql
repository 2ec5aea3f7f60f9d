-- A merge logs the rows it inserts as one change holding their keys (`row_keys`), not
-- one change per row: an insert has no before-image, so a row each only cost index
-- entries (three per row). Updates and deletes keep one change per row.
ALTER TABLE pipeline.changes ALTER COLUMN row_key DROP NOT NULL;
ALTER TABLE pipeline.changes ADD COLUMN row_keys text[];
ALTER TABLE pipeline.changes ADD CONSTRAINT changes_one_key_form
    CHECK ((row_key IS NULL) <> (row_keys IS NULL) AND (row_keys IS NULL OR op = 'insert'));

-- One row per changed table row, whichever form logged it: what people (and tests) read.
CREATE VIEW pipeline.changed_rows AS
SELECT c.id, c.run_id, c.scope, c.table_name, coalesce(c.row_key, k.row_key) AS row_key,
       c.op, c.before, c.created_at, c.compensated_at
FROM pipeline.changes c
LEFT JOIN LATERAL unnest(c.row_keys) AS k(row_key) ON true;
