-- Delete one month of one table: copy_raw before reloading a raw table, rollback_stage after a
-- failed stage build. Always DELETE inside the caller's transaction, never TRUNCATE (Redshift
-- commits on TRUNCATE, and it would empty every month).
-- Template values: schema, table (allow-listed). Parameters: :yyyymm. Idempotent.
delete from "{{ schema }}"."{{ table }}" where yyyymm = :yyyymm;
