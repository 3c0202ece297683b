{{ config(tags=['summary']) }}

-- The four readmission flags agree with the day counts: true exactly when the count is between 0
-- and 7 / 30, false (never NULL) without a previous / next case.

select
    facility_cd,
    patient_id,
    admission_date,
    admission_seq_no,
    days_since_prev_discharge,
    is_readmission_7d,
    is_readmission_30d,
    days_to_next_admission,
    readmitted_within_7d,
    readmitted_within_30d
from {{ source('dpc_mart', 'fact_case_summary') }}
where is_readmission_7d is null
    or is_readmission_30d is null
    or readmitted_within_7d is null
    or readmitted_within_30d is null
    or is_readmission_7d <> (case when days_since_prev_discharge between 0 and 7 then true else false end)
    or is_readmission_30d <> (case when days_since_prev_discharge between 0 and 30 then true else false end)
    or readmitted_within_7d <> (case when days_to_next_admission between 0 and 7 then true else false end)
    or readmitted_within_30d <> (case when days_to_next_admission between 0 and 30 then true else false end)
    or (is_readmission_7d and not is_readmission_30d)
    or (readmitted_within_7d and not readmitted_within_30d)
