-- Delete one facility's rows of one month of one table: copy_raw of a one-facility reload before
-- loading that facility's files, rollback_stage after its failed stage build. DELETE inside the
-- caller's transaction, as shared/delete_month.sql.
-- Template values: schema, table (allow-listed). Parameters: :yyyymm, :facility_cd. Idempotent.
delete from "{{ schema }}"."{{ table }}" where yyyymm = :yyyymm and facility_cd = :facility_cd;
