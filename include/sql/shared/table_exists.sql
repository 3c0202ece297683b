-- Whether a table exists (1) or not (0), before counting or rolling back a table that a first,
-- failed run may never have created.
-- Parameters: :schema, :table. Read-only.
select count(*) from information_schema.tables where table_schema = :schema and table_name = :table;
