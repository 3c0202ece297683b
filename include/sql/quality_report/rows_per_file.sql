-- Rows loaded per source file of one month in one raw table, for the monthly quality report.
-- Template values: schema, table (allow-listed raw tables). Parameters: :yyyymm. Read-only.
-- File names carry the facility code only; no row value leaves the warehouse.
select
    source_file,
    cast(count(*) as bigint) as row_count
from "{{ schema }}"."{{ table }}"
where yyyymm = :yyyymm
group by source_file
order by source_file;
