-- One month of mart.fact_case_summary in a stable order, so an export of unchanged data is
-- byte-for-byte the same file.
-- Parameters: :yyyymm. Read-only.
select *
from mart.fact_case_summary
where yyyymm = :yyyymm
order by facility_cd, patient_id, admission_date, admission_seq_no;
