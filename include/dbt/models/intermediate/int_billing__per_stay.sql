{#- Stays are keyed by discharge_key = the discharge date, or 9999-12-31 while the billing rows
    still carry the sentinel (patient not yet discharged at the end of that month), so every join
    below is a plain equi-join (no OR / null-safe joins, which Redshift runs as nested loops). -#}
{%- set open_stay = "cast('9999-12-31' as date)" -%}

with

d_rows as (

    select
        *,
        coalesce(discharge_date, {{ open_stay }}) as discharge_key
    from {{ ref('stg_dpc__d') }}

),

ef_stays as (

    select * from {{ ref('stg_dpc__ef_in_stays') }}

),

d_per_stay as (

    select
        facility_cd,
        patient_id,
        admission_date,
        discharge_key,
        count(*) as n_d_rows,
        sum(act_points * coalesce(act_count, 1)) as d_total_points,
        sum(
            case when is_bundled then act_points * coalesce(act_count, 1) else 0 end
        ) as d_bundled_points,
        min(yyyymm) as d_first_yyyymm,
        max(yyyymm) as d_last_yyyymm
    from d_rows
    group by facility_cd, patient_id, admission_date, discharge_key

),

ranked_bundled as (

    -- the DPC code of a stay is that of its latest bundled (data_category 93) row
    select
        facility_cd,
        patient_id,
        admission_date,
        discharge_key,
        yyyymm as dpc_code_yyyymm,
        dpc_code,
        mdc,
        row_number() over (
            partition by facility_cd, patient_id, admission_date, discharge_key
            order by
                yyyymm desc,
                coalesce(calc_start_date, cast('1900-01-01' as date)) desc,
                source_file desc,
                line_no desc
        ) as bundled_rank
    from d_rows
    where is_bundled
        and dpc_code is not null

),

latest_bundled as (

    select * from ranked_bundled
    where bundled_rank = 1

),

ef_per_stay as (

    select
        facility_cd,
        patient_id,
        admission_date,
        discharge_key,
        sum(n_ef_rows) as n_ef_rows,
        sum(n_ef_acts) as n_ef_acts,
        min(yyyymm) as ef_first_yyyymm,
        max(yyyymm) as ef_last_yyyymm
    from ef_stays
    group by facility_cd, patient_id, admission_date, discharge_key

),

stays as (

    select
        facility_cd,
        patient_id,
        admission_date,
        discharge_key
    from d_per_stay
    union
    select
        facility_cd,
        patient_id,
        admission_date,
        discharge_key
    from ef_per_stay

),

per_stay as (

    select
        stays.facility_cd,
        stays.patient_id,
        stays.admission_date,
        case
            when stays.discharge_key <> {{ open_stay }} then stays.discharge_key
        end as discharge_date,
        stays.discharge_key,
        latest_bundled.dpc_code,
        latest_bundled.mdc,
        latest_bundled.dpc_code_yyyymm,
        cast(coalesce(d_per_stay.d_total_points, 0) as bigint) as d_total_points,
        cast(coalesce(d_per_stay.d_bundled_points, 0) as bigint) as d_bundled_points,
        cast(coalesce(d_per_stay.n_d_rows, 0) as integer) as n_d_rows,
        cast(coalesce(ef_per_stay.n_ef_rows, 0) as integer) as n_ef_rows,
        cast(coalesce(ef_per_stay.n_ef_acts, 0) as integer) as n_ef_acts,
        case
            when d_per_stay.d_first_yyyymm is null then ef_per_stay.ef_first_yyyymm
            when ef_per_stay.ef_first_yyyymm is null then d_per_stay.d_first_yyyymm
            when d_per_stay.d_first_yyyymm < ef_per_stay.ef_first_yyyymm then d_per_stay.d_first_yyyymm
            else ef_per_stay.ef_first_yyyymm
        end as first_billing_yyyymm,
        case
            when d_per_stay.d_last_yyyymm is null then ef_per_stay.ef_last_yyyymm
            when ef_per_stay.ef_last_yyyymm is null then d_per_stay.d_last_yyyymm
            when d_per_stay.d_last_yyyymm > ef_per_stay.ef_last_yyyymm then d_per_stay.d_last_yyyymm
            else ef_per_stay.ef_last_yyyymm
        end as last_billing_yyyymm
    from stays
    left join d_per_stay
        on stays.facility_cd = d_per_stay.facility_cd
            and stays.patient_id = d_per_stay.patient_id
            and stays.admission_date = d_per_stay.admission_date
            and stays.discharge_key = d_per_stay.discharge_key
    left join ef_per_stay
        on stays.facility_cd = ef_per_stay.facility_cd
            and stays.patient_id = ef_per_stay.patient_id
            and stays.admission_date = ef_per_stay.admission_date
            and stays.discharge_key = ef_per_stay.discharge_key
    left join latest_bundled
        on stays.facility_cd = latest_bundled.facility_cd
            and stays.patient_id = latest_bundled.patient_id
            and stays.admission_date = latest_bundled.admission_date
            and stays.discharge_key = latest_bundled.discharge_key

)

select * from per_stay
