{#- EF lines counted per stay and month. The loaded month's raw EF lines are grouped by their text
    keys first and the few groups typed afterwards, so no month is typed line by line; several texts
    that type to one key (the sentinels, say) are summed again. -#}
{%- set open_stay = "cast('9999-12-31' as date)" -%}

with

ef_in as (

    select
        yyyymm,
        facility_cd,
        patient_id,
        admission_date,
        discharge_date,
        detail_no
    from {{ source('dpc_raw', 'ef_in') }}
    where {{ dpc_month_filter() }}

),

per_text_key as (

    select
        yyyymm,
        facility_cd,
        patient_id,
        admission_date as admission_date_text,
        discharge_date as discharge_date_text,
        count(*) as n_ef_rows,
        sum(case when trim(detail_no) = '000' then 1 else 0 end) as n_ef_acts
    from ef_in
    group by yyyymm, facility_cd, patient_id, admission_date, discharge_date

),

typed as (

    select
        yyyymm,
        facility_cd,
        patient_id,
        {{ dpc_date('admission_date_text') }} as admission_date,
        coalesce({{ dpc_date('discharge_date_text') }}, {{ open_stay }}) as discharge_key,
        n_ef_rows,
        n_ef_acts
    from per_text_key

),

stays as (

    select
        yyyymm,
        facility_cd,
        patient_id,
        admission_date,
        discharge_key,
        cast(sum(n_ef_rows) as integer) as n_ef_rows,
        cast(sum(n_ef_acts) as integer) as n_ef_acts
    from typed
    group by yyyymm, facility_cd, patient_id, admission_date, discharge_key

)

select * from stays
