{{ config(severity='warn') }}

-- Contract §3: a case key found in the y1 files of more than one loaded month counts from the
-- latest month only. Not an error, but worth a look: lists every such key and its months.

select
    facility_cd,
    patient_id,
    admission_date,
    admission_seq_no,
    count(*) as n_months,
    min(yyyymm) as first_yyyymm,
    max(yyyymm) as last_yyyymm
from {{ ref('stg_dpc__y1_cases') }}
group by facility_cd, patient_id, admission_date, admission_seq_no
having count(*) > 1
