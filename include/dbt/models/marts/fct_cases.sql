{#- Billing rows carry no admission_seq_no. They are matched to cases on (facility_cd,
    patient_id, admission_date) plus:
      * billing with a real discharge date -> the case with that discharge date; if two cases share
        admission and discharge date, the one with the highest admission_seq_no;
      * billing still carrying the discharge sentinel (earlier months of a long stay) -> the case
        with the highest admission_seq_no of that admission_date (an earlier stay on the same day
        was discharged that day, so it cannot be the one still open at a month end). -#}
{%- set open_stay = "cast('9999-12-31' as date)" -%}

with

cases as (

    select * from {{ ref('int_cases__latest') }}

),

billing as (

    select * from {{ ref('int_billing__per_stay') }}

),

cases_ranked as (

    select
        *,
        row_number() over (
            partition by facility_cd, patient_id, admission_date
            order by admission_seq_no desc
        ) as rank_on_admission_date,
        row_number() over (
            partition by facility_cd, patient_id, admission_date, discharge_date
            order by admission_seq_no desc
        ) as rank_on_stay_dates
    from cases

),

closed_billing as (

    select * from billing
    where discharge_key <> {{ open_stay }}

),

open_billing as (

    select * from billing
    where discharge_key = {{ open_stay }}

),

cases_billed as (

    select
        cases_ranked.*,
        cast(
            case
                when closed_billing.facility_cd is null and open_billing.facility_cd is null then null
                else coalesce(closed_billing.d_total_points, 0) + coalesce(open_billing.d_total_points, 0)
            end as bigint
        ) as total_points,
        cast(
            case
                when closed_billing.facility_cd is null and open_billing.facility_cd is null then null
                else coalesce(closed_billing.d_bundled_points, 0) + coalesce(open_billing.d_bundled_points, 0)
            end as bigint
        ) as bundled_points,
        case
            when open_billing.dpc_code is null then closed_billing.dpc_code
            when closed_billing.dpc_code is null then open_billing.dpc_code
            when open_billing.dpc_code_yyyymm > closed_billing.dpc_code_yyyymm then open_billing.dpc_code
            else closed_billing.dpc_code
        end as dpc_code,
        cast(
            coalesce(closed_billing.n_d_rows, 0) + coalesce(open_billing.n_d_rows, 0) as integer
        ) as n_d_rows,
        cast(
            coalesce(closed_billing.n_ef_rows, 0) + coalesce(open_billing.n_ef_rows, 0) as integer
        ) as n_ef_rows
    from cases_ranked
    left join closed_billing
        on cases_ranked.facility_cd = closed_billing.facility_cd
            and cases_ranked.patient_id = closed_billing.patient_id
            and cases_ranked.admission_date = closed_billing.admission_date
            and cases_ranked.discharge_date = closed_billing.discharge_key
            and cases_ranked.rank_on_stay_dates = 1
    left join open_billing
        on cases_ranked.facility_cd = open_billing.facility_cd
            and cases_ranked.patient_id = open_billing.patient_id
            and cases_ranked.admission_date = open_billing.admission_date
            and cases_ranked.rank_on_admission_date = 1

),

final as (

    select
        facility_cd,
        patient_id,
        admission_date,
        admission_seq_no,
        yyyymm,
        discharge_date,
        cast(discharge_date - admission_date + 1 as integer) as length_of_stay_days,
        admission_route,
        admission_type,
        case
            when admission_type = '200' or admission_type like '3%' then true
            else false
        end as is_unplanned,
        readmission_type,
        prev_discharge_date as reported_prev_discharge_date,
        discharge_destination,
        discharge_outcome,
        is_death,
        sex,
        cast({{ dpc_age_years('birth_date', 'admission_date') }} as integer) as age_at_admission,
        main_icd10,
        trigger_icd10,
        resource_icd10,
        dpc_code,
        substring(dpc_code, 1, 2) as mdc,
        total_points,
        bundled_points,
        n_d_rows,
        n_ef_rows,
        n_ward_segments,
        n_source_months
    from cases_billed

)

select
    facility_cd,
    patient_id,
    admission_date,
    admission_seq_no,
    yyyymm,
    discharge_date,
    length_of_stay_days,
    admission_route,
    admission_type,
    is_unplanned,
    readmission_type,
    reported_prev_discharge_date,
    discharge_destination,
    discharge_outcome,
    is_death,
    sex,
    age_at_admission,
    main_icd10,
    trigger_icd10,
    resource_icd10,
    dpc_code,
    mdc,
    total_points,
    bundled_points,
    n_d_rows,
    n_ef_rows,
    n_ward_segments,
    n_source_months
from final
