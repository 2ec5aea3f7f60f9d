-- Leases are the kernel's, keyed by whatever a pipeline serialises on. Databases created
-- before the pipeline seam have the old table: rename it.
DO $$
BEGIN
    IF to_regclass('pipeline.org_leases') IS NOT NULL THEN
        ALTER TABLE pipeline.org_leases RENAME TO leases;
        ALTER TABLE pipeline.leases RENAME COLUMN org_key TO lease_key;
    END IF;
END $$;
