-- Cases of one month per facility and how many of them are 7- / 30-day readmissions (contract §3:
-- is_readmission_7d / _30d), for the monthly quality report. Aggregates only.
-- Parameters: :yyyymm. Read-only.
select
    facility_cd,
    cast(count(*) as bigint) as cases,
    cast(sum(case when is_readmission_7d then 1 else 0 end) as bigint) as readmissions_7d,
    cast(sum(case when is_readmission_30d then 1 else 0 end) as bigint) as readmissions_30d
from mart.fact_case_summary
where yyyymm = :yyyymm
group by facility_cd
order by facility_cd;
