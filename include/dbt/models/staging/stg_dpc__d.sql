with

d as (

    select * from {{ source('dpc_raw', 'd') }}
    where {{ dpc_month_filter() }}

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
        case when trim(data_category) = '93' then true else false end as is_bundled,
        {{ dpc_int('order_no') }} as order_no,
        {{ dpc_text('hospital_master_code') }} as hospital_master_code,
        {{ dpc_text('receipt_code') }} as receipt_code,
        {{ dpc_text('interpretation_no') }} as interpretation_no,
        {{ dpc_int('act_points') }} as act_points,
        {{ dpc_int('act_drug_cost') }} as act_drug_cost,
        {{ dpc_int('act_material_cost') }} as act_material_cost,
        {{ dpc_text('yen_point_flag') }} as yen_point_flag,
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
        {{ dpc_text('facility_type') }} as facility_type,
        {{ dpc_date('calc_start_date') }} as calc_start_date,
        {{ dpc_date('calc_end_date') }} as calc_end_date,
        {{ dpc_date('calc_base_date') }} as calc_base_date,
        {{ dpc_text('dpc_code') }} as dpc_code,
        substring({{ dpc_text('dpc_code') }}, 1, 2) as mdc,
        {{ dpc_decimal('hospital_coefficient', 10, 5) }} as hospital_coefficient
    from d

)

select * from typed
