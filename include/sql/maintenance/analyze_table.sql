-- Refresh the planner statistics of one table: in-batch after copy_raw and after the mart builds.
-- Template values: schema, table (allow-listed in dpc_elt.core.tables). No parameters.
-- Idempotent. Redshift skips a table whose changed rows are under analyze_threshold_percent.
analyze "{{ schema }}"."{{ table }}";
