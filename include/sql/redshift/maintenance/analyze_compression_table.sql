-- The monthly ANALYZE COMPRESSION of one table: recommended encoding and estimated reduction per
-- column (Table, Column, Encoding, Est_reduction_pct). Takes an exclusive lock on the table.
-- Template values: schema, table (allow-listed in dpc_elt.core.tables). No parameters. Read-only.
analyze compression "{{ schema }}"."{{ table }}";
