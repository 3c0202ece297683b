-- Cases of one month per MDC (first two characters of the DPC code; NULL when the case has none)
-- and how many are 7- / 30-day readmissions, for the monthly quality report. Aggregates only.
-- Parameters: :yyyymm. Read-only.
select
    mdc,
    cast(count(*) as bigint) as cases,
    cast(sum(case when is_readmission_7d then 1 else 0 end) as bigint) as readmissions_7d,
    cast(sum(case when is_readmission_30d then 1 else 0 end) as bigint) as readmissions_30d
from mart.fact_case_summary
where yyyymm = :yyyymm
group by mdc
order by mdc;
