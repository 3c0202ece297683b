-- The pipeline's tables that exist, before counting or rolling back tables that a first, failed run
-- may never have created (one query instead of one table_exists.sql per table).
-- Parameters: :raw_schema, :stage_schema, :mart_schema. Read-only.
select table_schema, table_name
from information_schema.tables
where table_schema in (:raw_schema, :stage_schema, :mart_schema) and table_type = 'BASE TABLE'
order by table_schema, table_name;
