-- Rows of the month per source file in one raw table: the loader compares them with the manifest's
-- record counts (every data line must have become one row).
-- Template values: schema, table (allow-listed). Parameters: :yyyymm. Read-only.
select source_file, count(*) as row_count
from "{{ schema }}"."{{ table }}"
where yyyymm = :yyyymm
group by source_file
order by source_file;
