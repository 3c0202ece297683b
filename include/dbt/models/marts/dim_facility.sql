with

cases as (

    select * from {{ ref('fct_cases') }}

),

y1_months as (

    select distinct
        facility_cd,
        yyyymm,
        'y1' as file_type
    from {{ ref('stg_dpc__y1_cases') }}

),

ef_months as (

    select distinct
        facility_cd,
        yyyymm,
        'ef_in' as file_type
    from {{ ref('stg_dpc__ef_in_stays') }}

),

d_months as (

    select distinct
        facility_cd,
        yyyymm,
        'd' as file_type
    from {{ ref('stg_dpc__d') }}

),

facility_months as (

    select
        facility_cd,
        yyyymm,
        file_type
    from y1_months
    union all
    select
        facility_cd,
        yyyymm,
        file_type
    from ef_months
    union all
    select
        facility_cd,
        yyyymm,
        file_type
    from d_months

),

months_per_facility as (

    select
        facility_cd,
        min(yyyymm) as first_yyyymm,
        max(yyyymm) as last_yyyymm,
        count(distinct yyyymm) as n_months,
        max(case when file_type = 'y1' then 1 else 0 end) as has_y1,
        max(case when file_type = 'ef_in' then 1 else 0 end) as has_ef_in,
        max(case when file_type = 'd' then 1 else 0 end) as has_d
    from facility_months
    group by facility_cd

),

cases_per_facility as (

    select
        facility_cd,
        count(*) as n_cases,
        count(distinct patient_id) as n_patients,
        sum(case when is_death then 1 else 0 end) as n_deaths,
        sum(case when is_unplanned then 1 else 0 end) as n_unplanned,
        min(discharge_date) as first_discharge_date,
        max(discharge_date) as last_discharge_date
    from cases
    group by facility_cd

),

final as (

    select
        months_per_facility.facility_cd,
        months_per_facility.first_yyyymm,
        months_per_facility.last_yyyymm,
        cast(months_per_facility.n_months as integer) as n_months,
        case when months_per_facility.has_y1 = 1 then true else false end as has_y1,
        case when months_per_facility.has_ef_in = 1 then true else false end as has_ef_in,
        case when months_per_facility.has_d = 1 then true else false end as has_d,
        cast(coalesce(cases_per_facility.n_cases, 0) as integer) as n_cases,
        cast(coalesce(cases_per_facility.n_patients, 0) as integer) as n_patients,
        cast(coalesce(cases_per_facility.n_deaths, 0) as integer) as n_deaths,
        cast(coalesce(cases_per_facility.n_unplanned, 0) as integer) as n_unplanned,
        cases_per_facility.first_discharge_date,
        cases_per_facility.last_discharge_date
    from months_per_facility
    left join cases_per_facility
        on months_per_facility.facility_cd = cases_per_facility.facility_cd

)

select
    facility_cd,
    first_yyyymm,
    last_yyyymm,
    n_months,
    has_y1,
    has_ef_in,
    has_d,
    n_cases,
    n_patients,
    n_deaths,
    n_unplanned,
    first_discharge_date,
    last_discharge_date
from final
