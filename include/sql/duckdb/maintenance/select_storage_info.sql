-- The embedded monthly ANALYZE COMPRESSION: per column of one table, the compression DuckDB chose
-- for its stored segments and how many rows each holds (validity masks left out).
-- Parameters: :qualified_name (schema.table, allow-listed in dpc_elt.core.tables). Read-only.
select column_name, compression, count(*) as segments, sum("count") as row_count
from pragma_storage_info(:qualified_name)
where segment_type <> 'VALIDITY'
group by column_name, compression
order by column_name, compression;
