-- Load warnings of one month that the warehouse keeps: cases whose key is in the y1 files of more
-- than one loaded month (the dbt warn test warn_case_keys_in_several_months; the later month counts).
-- Parameters: :yyyymm. Read-only.
select cast(count(*) as bigint) as cases_in_several_months
from mart.fct_cases
where yyyymm = :yyyymm and n_source_months > 1;
