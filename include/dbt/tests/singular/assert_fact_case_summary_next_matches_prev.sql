{{ config(tags=['summary']) }}

-- Within a patient, days_to_next_admission of a case equals days_since_prev_discharge of the
-- next case (both are next.admission_date - discharge_date); the first case has no
-- days_since_prev_discharge and the last none to the next.

with

ordered as (

    select
        facility_cd,
        patient_id,
        admission_date,
        admission_seq_no,
        days_since_prev_discharge,
        days_to_next_admission,
        lead(days_since_prev_discharge) over (
            partition by facility_cd, patient_id order by admission_date, admission_seq_no
        ) as next_days_since_prev_discharge,
        row_number() over (
            partition by facility_cd, patient_id order by admission_date, admission_seq_no
        ) as position_first,
        row_number() over (
            partition by facility_cd, patient_id
            order by admission_date desc, admission_seq_no desc
        ) as position_last
    from {{ source('dpc_mart', 'fact_case_summary') }}

)

select * from ordered
where (position_first = 1 and days_since_prev_discharge is not null)
    or (position_last = 1 and days_to_next_admission is not null)
    or (
        position_last > 1
        and (
            days_to_next_admission is null
            or next_days_since_prev_discharge is null
            or days_to_next_admission <> next_days_since_prev_discharge
        )
    )
