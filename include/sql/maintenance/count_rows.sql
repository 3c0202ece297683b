-- All rows of one table, for the in-batch ANALYZE log and the weekly health check.
-- Template values: schema, table (allow-listed in dpc_elt.core.tables). No parameters.
-- Read-only.
select count(*) from "{{ schema }}"."{{ table }}";
