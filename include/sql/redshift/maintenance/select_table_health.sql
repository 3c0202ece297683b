-- Table health for the weekly checks, from SVV_TABLE_INFO (works on Serverless, unlike STV_/STL_):
-- unsorted share, rows incl. deleted vs visible rows, slice skew and stale statistics per table.
-- Parameters: :raw_schema, :stage_schema, :mart_schema. Read-only.
select
    "schema" as schema_name,
    "table" as table_name,
    tbl_rows,
    estimated_visible_rows,
    unsorted,
    skew_rows,
    stats_off
from svv_table_info
where "schema" in (:raw_schema, :stage_schema, :mart_schema)
order by schema_name, table_name;
