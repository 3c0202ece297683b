with

y1 as (

    select
        yyyymm,
        source_file,
        line_no,
        facility_cd,
        patient_id,
        admission_date,
        admission_seq_no,
        summary_no,
        item_code,
        payload_1,
        payload_2,
        payload_3,
        payload_5,
        payload_9
    from {{ source('dpc_raw', 'y1') }}
    where {{ dpc_month_filter() }}

),

ranked_items as (

    -- the first line of each item of the whole stay wins if a file repeats an item
    select
        *,
        row_number() over (
            partition by
                yyyymm, facility_cd, patient_id, admission_date, admission_seq_no,
                summary_no, item_code
            order by source_file, line_no
        ) as item_rank
    from y1

),

pivoted as (

    select
        yyyymm,
        facility_cd,
        patient_id,
        admission_date as admission_date_text,
        admission_seq_no as admission_seq_no_text,
        max(source_file) as source_file,
        {%- for item_code, payload, name in [
            ('A000010', 'payload_1', 'birth_date'),
            ('A000010', 'payload_2', 'sex'),
            ('A000020', 'payload_2', 'admission_route'),
            ('A000020', 'payload_5', 'admission_type'),
            ('A000030', 'payload_1', 'discharge_date'),
            ('A000030', 'payload_2', 'discharge_destination'),
            ('A000030', 'payload_3', 'discharge_outcome'),
            ('A000070', 'payload_1', 'prev_discharge_date'),
            ('A000080', 'payload_2', 'readmission_type'),
            ('A006010', 'payload_2', 'main_icd10'),
            ('A006010', 'payload_9', 'main_diagnosis_name'),
            ('A006020', 'payload_2', 'trigger_icd10'),
            ('A006030', 'payload_2', 'resource_icd10'),
        ] %}
            max(
                case
                    when summary_no = '0' and item_rank = 1 and item_code = '{{ item_code }}'
                        then {{ payload }}
                end
            ) as {{ name }}_text,
        {%- endfor %}
        count(distinct case when summary_no <> '0' then summary_no end) as n_ward_segments,
        sum(case when summary_no = '0' then 1 else 0 end) as n_whole_stay_rows
    from ranked_items
    group by yyyymm, facility_cd, patient_id, admission_date, admission_seq_no

),

cases as (

    select
        yyyymm,
        facility_cd,
        patient_id,
        {{ dpc_date('admission_date_text') }} as admission_date,
        {{ dpc_int('admission_seq_no_text') }} as admission_seq_no,
        {{ dpc_date('birth_date_text') }} as birth_date,
        {{ dpc_text('sex_text') }} as sex,
        {{ dpc_text('admission_route_text') }} as admission_route,
        {{ dpc_text('admission_type_text') }} as admission_type,
        {{ dpc_date('discharge_date_text') }} as discharge_date,
        {{ dpc_text('discharge_destination_text') }} as discharge_destination,
        {{ dpc_text('discharge_outcome_text') }} as discharge_outcome,
        case when trim(discharge_outcome_text) in ('6', '7') then true else false end as is_death,
        {{ dpc_date('prev_discharge_date_text') }} as prev_discharge_date,
        {{ dpc_text('readmission_type_text') }} as readmission_type,
        {{ dpc_text('main_icd10_text') }} as main_icd10,
        {{ dpc_text('main_diagnosis_name_text') }} as main_diagnosis_name,
        {{ dpc_text('trigger_icd10_text') }} as trigger_icd10,
        {{ dpc_text('resource_icd10_text') }} as resource_icd10,
        cast(n_ward_segments as integer) as n_ward_segments,
        source_file
    from pivoted
    -- a case is the whole-stay rows (summary_no 0) of its key; segments alone are no case
    where n_whole_stay_rows > 0

)

select * from cases
