-- Rows of one facility's month in one table (what rollback_stage of a one-facility reload removes).
-- Template values: schema, table (allow-listed).
-- Parameters: :yyyymm, :facility_cd. Read-only.
select count(*) from "{{ schema }}"."{{ table }}" where yyyymm = :yyyymm and facility_cd = :facility_cd;
