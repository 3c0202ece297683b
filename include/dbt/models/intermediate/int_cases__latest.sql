with

cases as (

    select * from {{ ref('stg_dpc__y1_cases') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by facility_cd, patient_id, admission_date, admission_seq_no
            order by yyyymm desc, source_file desc
        ) as month_rank,
        count(*) over (
            partition by facility_cd, patient_id, admission_date, admission_seq_no
        ) as n_source_months
    from cases

),

latest as (

    -- contract §3: a case key in the y1 files of several months counts once, from the latest month
    select
        yyyymm,
        facility_cd,
        patient_id,
        admission_date,
        admission_seq_no,
        birth_date,
        sex,
        admission_route,
        admission_type,
        discharge_date,
        discharge_destination,
        discharge_outcome,
        is_death,
        prev_discharge_date,
        readmission_type,
        main_icd10,
        trigger_icd10,
        resource_icd10,
        n_ward_segments,
        source_file,
        cast(n_source_months as integer) as n_source_months
    from ranked
    where month_rank = 1

)

select * from latest
