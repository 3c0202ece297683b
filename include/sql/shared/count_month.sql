-- Rows of one month in one table, for the load report and the success notice.
-- Template values: schema, table (allow-listed).
-- Parameters: :yyyymm. Read-only.
select count(*) from "{{ schema }}"."{{ table }}" where yyyymm = :yyyymm;
