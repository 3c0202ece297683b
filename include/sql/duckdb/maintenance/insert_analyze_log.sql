-- Note one in-batch ANALYZE of one table with its row count at that moment.
-- Parameters: :schema_name, :table_name, :row_count. Appends one row (not idempotent, by design:
-- the newest row per table counts).
insert into ops.analyze_log (schema_name, table_name, analyzed_at, row_count)
values (:schema_name, :table_name, current_timestamp, :row_count);
