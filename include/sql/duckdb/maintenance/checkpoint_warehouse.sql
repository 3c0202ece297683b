-- The embedded weekly VACUUM: write the WAL into the file and compact row groups with deleted
-- rows. DuckDB's VACUUM on a table does nothing, CHECKPOINT is the database-wide equivalent.
-- No parameters. Idempotent. Runs outside any transaction, in the warehouse pool (one writer).
checkpoint;
