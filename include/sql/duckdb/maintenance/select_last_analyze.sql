-- The row count of one table at its newest in-batch ANALYZE, or no row if it was never analyzed.
-- Parameters: :schema_name, :table_name. Read-only.
-- Runs after create_analyze_log.sql.
select row_count
from ops.analyze_log
where schema_name = :schema_name and table_name = :table_name
order by analyzed_at desc
limit 1;
