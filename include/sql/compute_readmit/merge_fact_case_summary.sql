-- Make mart.fact_case_summary equal contract §3 over ALL of mart.fct_cases: patients with a case or summary
-- row in month :yyyymm (of facility :facility_cd, or every facility for '*'), or whose rows differ from a fresh
-- computation (self-healing), get their rows deleted and inserted again, in ONE transaction after
-- create_fact_case_summary.sql. Parameters: :yyyymm, :facility_cd. Idempotent. The last statement
-- returns every month whose rows were deleted or inserted (to export again).
drop table if exists dpc_readmit_expected;

create temp table dpc_readmit_expected as
select
    yyyymm,
    facility_cd,
    patient_id,
    admission_date,
    admission_seq_no,
    discharge_date,
    admission_type,
    is_unplanned,
    days_since_prev_discharge,
    case when days_since_prev_discharge between 0 and 7 then true else false end as is_readmission_7d,
    case when days_since_prev_discharge between 0 and 30 then true else false end as is_readmission_30d,
    days_to_next_admission,
    case when days_to_next_admission between 0 and 7 then true else false end as readmitted_within_7d,
    case when days_to_next_admission between 0 and 30 then true else false end as readmitted_within_30d,
    length_of_stay_days,
    is_death,
    dpc_code,
    mdc,
    total_points,
    main_icd10
from (
    select
        yyyymm,
        facility_cd,
        patient_id,
        admission_date,
        admission_seq_no,
        discharge_date,
        admission_type,
        coalesce(is_unplanned, false) as is_unplanned,
        cast(
            admission_date - lag(discharge_date) over (
                partition by facility_cd, patient_id
                order by admission_date, admission_seq_no
            ) as integer
        ) as days_since_prev_discharge,
        cast(
            lead(admission_date) over (
                partition by facility_cd, patient_id
                order by admission_date, admission_seq_no
            ) - discharge_date as integer
        ) as days_to_next_admission,
        cast(length_of_stay_days as integer) as length_of_stay_days,
        coalesce(is_death, false) as is_death,
        dpc_code,
        mdc,
        cast(total_points as bigint) as total_points,
        main_icd10
    from mart.fct_cases
) as cases;

drop table if exists dpc_readmit_patients;

create temp table dpc_readmit_patients as
select distinct facility_cd, patient_id
from (
    select facility_cd, patient_id
    from mart.fct_cases
    where yyyymm = :yyyymm and (:facility_cd = '*' or facility_cd = :facility_cd)
    union all
    select facility_cd, patient_id
    from mart.fact_case_summary
    where yyyymm = :yyyymm and (:facility_cd = '*' or facility_cd = :facility_cd)
    union all
    select facility_cd, patient_id
    from (
        select
            yyyymm, facility_cd, patient_id, admission_date, admission_seq_no, discharge_date,
            admission_type, is_unplanned, days_since_prev_discharge, is_readmission_7d,
            is_readmission_30d, days_to_next_admission, readmitted_within_7d, readmitted_within_30d,
            length_of_stay_days, is_death, dpc_code, mdc, total_points, main_icd10
        from dpc_readmit_expected
        except
        select
            yyyymm, facility_cd, patient_id, admission_date, admission_seq_no, discharge_date,
            admission_type, is_unplanned, days_since_prev_discharge, is_readmission_7d,
            is_readmission_30d, days_to_next_admission, readmitted_within_7d, readmitted_within_30d,
            length_of_stay_days, is_death, dpc_code, mdc, total_points, main_icd10
        from mart.fact_case_summary
    ) as missing_or_changed
    union all
    select facility_cd, patient_id
    from (
        select
            yyyymm, facility_cd, patient_id, admission_date, admission_seq_no, discharge_date,
            admission_type, is_unplanned, days_since_prev_discharge, is_readmission_7d,
            is_readmission_30d, days_to_next_admission, readmitted_within_7d, readmitted_within_30d,
            length_of_stay_days, is_death, dpc_code, mdc, total_points, main_icd10
        from mart.fact_case_summary
        except
        select
            yyyymm, facility_cd, patient_id, admission_date, admission_seq_no, discharge_date,
            admission_type, is_unplanned, days_since_prev_discharge, is_readmission_7d,
            is_readmission_30d, days_to_next_admission, readmitted_within_7d, readmitted_within_30d,
            length_of_stay_days, is_death, dpc_code, mdc, total_points, main_icd10
        from dpc_readmit_expected
    ) as extra_or_stale
    union all
    select facility_cd, patient_id
    from mart.fact_case_summary
    group by facility_cd, patient_id, admission_date, admission_seq_no
    having count(*) > 1
) as affected;

drop table if exists dpc_readmit_months;

create temp table dpc_readmit_months as
select distinct yyyymm
from (
    select summary.yyyymm
    from mart.fact_case_summary as summary
    inner join dpc_readmit_patients as patients
        on summary.facility_cd = patients.facility_cd
        and summary.patient_id = patients.patient_id
    union all
    select expected.yyyymm
    from dpc_readmit_expected as expected
    inner join dpc_readmit_patients as patients
        on expected.facility_cd = patients.facility_cd
        and expected.patient_id = patients.patient_id
) as months;

delete from mart.fact_case_summary
using dpc_readmit_patients
where fact_case_summary.facility_cd = dpc_readmit_patients.facility_cd
    and fact_case_summary.patient_id = dpc_readmit_patients.patient_id;

insert into mart.fact_case_summary (
    yyyymm, facility_cd, patient_id, admission_date, admission_seq_no, discharge_date,
    admission_type, is_unplanned, days_since_prev_discharge, is_readmission_7d,
    is_readmission_30d, days_to_next_admission, readmitted_within_7d, readmitted_within_30d,
    length_of_stay_days, is_death, dpc_code, mdc, total_points, main_icd10
)
select
    expected.yyyymm,
    expected.facility_cd,
    expected.patient_id,
    expected.admission_date,
    expected.admission_seq_no,
    expected.discharge_date,
    expected.admission_type,
    expected.is_unplanned,
    expected.days_since_prev_discharge,
    expected.is_readmission_7d,
    expected.is_readmission_30d,
    expected.days_to_next_admission,
    expected.readmitted_within_7d,
    expected.readmitted_within_30d,
    expected.length_of_stay_days,
    expected.is_death,
    expected.dpc_code,
    expected.mdc,
    expected.total_points,
    expected.main_icd10
from dpc_readmit_expected as expected
inner join dpc_readmit_patients as patients
    on expected.facility_cd = patients.facility_cd
    and expected.patient_id = patients.patient_id;

select distinct yyyymm from dpc_readmit_months order by 1;
