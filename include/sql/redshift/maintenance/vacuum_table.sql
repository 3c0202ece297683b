-- The weekly VACUUM of one table (Sunday 04:00 JST): reclaims deleted rows and re-sorts.
-- Template values: schema, table (allow-listed in dpc_elt.core.tables). No parameters.
-- VACUUM cannot run inside a transaction: one Data API ExecuteStatement per table, never a batch.
vacuum "{{ schema }}"."{{ table }}";
