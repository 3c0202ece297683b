{{ config(tags=['summary']) }}

-- Recomputes the readmission columns of contract §3 from mart.fct_cases and returns every row
-- that differs from mart.fact_case_summary, in either direction (EXCEPT compares NULLs as equal).

with

cases as (

    select
        facility_cd,
        patient_id,
        admission_date,
        admission_seq_no,
        yyyymm,
        discharge_date,
        admission_type,
        is_unplanned,
        lag(discharge_date) over (
            partition by facility_cd, patient_id order by admission_date, admission_seq_no
        ) as prev_discharge_date,
        lead(admission_date) over (
            partition by facility_cd, patient_id order by admission_date, admission_seq_no
        ) as next_admission_date
    from {{ ref('fct_cases') }}

),

days as (

    select
        *,
        admission_date - prev_discharge_date as days_since_prev_discharge,
        next_admission_date - discharge_date as days_to_next_admission
    from cases

),

expected as (

    select
        yyyymm,
        facility_cd,
        patient_id,
        admission_date,
        admission_seq_no,
        discharge_date,
        admission_type,
        is_unplanned,
        cast(days_since_prev_discharge as integer) as days_since_prev_discharge,
        case when days_since_prev_discharge between 0 and 7 then true else false end as is_readmission_7d,
        case when days_since_prev_discharge between 0 and 30 then true else false end as is_readmission_30d,
        cast(days_to_next_admission as integer) as days_to_next_admission,
        case when days_to_next_admission between 0 and 7 then true else false end as readmitted_within_7d,
        case when days_to_next_admission between 0 and 30 then true else false end as readmitted_within_30d
    from days

),

actual as (

    select
        yyyymm,
        facility_cd,
        patient_id,
        admission_date,
        admission_seq_no,
        discharge_date,
        admission_type,
        is_unplanned,
        cast(days_since_prev_discharge as integer) as days_since_prev_discharge,
        is_readmission_7d,
        is_readmission_30d,
        cast(days_to_next_admission as integer) as days_to_next_admission,
        readmitted_within_7d,
        readmitted_within_30d
    from {{ source('dpc_mart', 'fact_case_summary') }}

),

missing as (

    select
        'expected, not in fact_case_summary' as problem,
        expected.*
    from expected
    except
    select
        'expected, not in fact_case_summary' as problem,
        actual.*
    from actual

),

unexpected as (

    select
        'in fact_case_summary, not expected' as problem,
        actual.*
    from actual
    except
    select
        'in fact_case_summary, not expected' as problem,
        expected.*
    from expected

)

select * from missing
union all
select * from unexpected
