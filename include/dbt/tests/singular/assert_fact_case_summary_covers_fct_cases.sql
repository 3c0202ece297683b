{{ config(tags=['summary']) }}

-- Every case of mart.fct_cases has exactly one row in mart.fact_case_summary and vice versa,
-- with the same month and dates. Returns the offending case keys.

with

cases as (

    select
        facility_cd,
        patient_id,
        admission_date,
        admission_seq_no,
        yyyymm,
        discharge_date
    from {{ ref('fct_cases') }}

),

summary as (

    select
        facility_cd,
        patient_id,
        admission_date,
        admission_seq_no,
        max(yyyymm) as yyyymm,
        max(discharge_date) as discharge_date,
        count(*) as n_rows
    from {{ source('dpc_mart', 'fact_case_summary') }}
    group by facility_cd, patient_id, admission_date, admission_seq_no

),

compared as (

    select
        coalesce(cases.facility_cd, summary.facility_cd) as facility_cd,
        coalesce(cases.patient_id, summary.patient_id) as patient_id,
        coalesce(cases.admission_date, summary.admission_date) as admission_date,
        coalesce(cases.admission_seq_no, summary.admission_seq_no) as admission_seq_no,
        case
            when summary.facility_cd is null then 'missing from fact_case_summary'
            when cases.facility_cd is null then 'not in fct_cases'
            when summary.n_rows > 1 then 'several rows in fact_case_summary'
            when cases.yyyymm <> summary.yyyymm then 'different yyyymm'
            when cases.discharge_date <> summary.discharge_date
                or (cases.discharge_date is null and summary.discharge_date is not null)
                or (cases.discharge_date is not null and summary.discharge_date is null)
                then 'different discharge_date'
        end as problem
    from cases
    full outer join summary
        on cases.facility_cd = summary.facility_cd
            and cases.patient_id = summary.patient_id
            and cases.admission_date = summary.admission_date
            and cases.admission_seq_no = summary.admission_seq_no

)

select * from compared
where problem is not null
