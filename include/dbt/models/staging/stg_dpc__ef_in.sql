{#- A view: the typed lines are read from raw when asked for (by analysts, tests, ad hoc queries);
    no month is stored twice. What the marts need of EF is stg_dpc__ef_in_stays. -#}
{{ config(materialized='view', bind=false) }}

with

ef_in as (

    select * from {{ source('dpc_raw', 'ef_in') }}

),

typed as (

    select
        yyyymm,
        source_file,
        line_no,
        facility_cd,
        patient_id,
        {{ dpc_date('discharge_date') }} as discharge_date,
        {{ dpc_date('admission_date') }} as admission_date,
        {{ dpc_text('data_category') }} as data_category,
        {{ dpc_int('order_no') }} as order_no,
        {{ dpc_text('detail_no') }} as detail_no,
        case when trim(detail_no) = '000' then true else false end as is_act_row,
        {{ dpc_text('hospital_master_code') }} as hospital_master_code,
        {{ dpc_text('receipt_code') }} as receipt_code,
        {{ dpc_text('interpretation_no') }} as interpretation_no,
        {{ dpc_decimal('quantity') }} as quantity,
        {{ dpc_text('unit_code') }} as unit_code,
        {{ dpc_decimal('detail_points', 18, 2) }} as detail_points,
        {{ dpc_text('yen_point_flag') }} as yen_point_flag,
        {{ dpc_int('ffs_points') }} as ffs_points,
        {{ dpc_text('detail_type') }} as detail_type,
        {{ dpc_int('act_points') }} as act_points,
        {{ dpc_int('act_drug_cost') }} as act_drug_cost,
        {{ dpc_int('act_material_cost') }} as act_material_cost,
        {{ dpc_int('act_count') }} as act_count,
        {{ dpc_text('insurer_no') }} as insurer_no,
        {{ dpc_text('receipt_type') }} as receipt_type,
        {{ dpc_date('performed_date') }} as performed_date,
        {{ dpc_text('receipt_dept') }} as receipt_dept,
        {{ dpc_text('clinical_dept') }} as clinical_dept,
        {{ dpc_text('doctor_code') }} as doctor_code,
        {{ dpc_text('ward_code') }} as ward_code,
        {{ dpc_text('ward_type') }} as ward_type,
        {{ dpc_text('inout_flag') }} as inout_flag,
        {{ dpc_text('facility_type') }} as facility_type
    from ef_in

)

select * from typed
